// same_report_cpp: runs the migration of <dir>/migration.json through the C++ API (Migration: plan
// sign-off, then run) and prints the run report, then the reconcile report (one line each), for the cross-face test (same_report.cmake).
#include <cstdio>
#include <string>

#include <boost/json.hpp>

#include "crmmigrate/pipeline/migration.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <dir holding migration.json>\n", argv[0]);
    return 2;
  }
  auto fail = [](const cmg::Status& st) {
    std::fprintf(stderr, "same_report_cpp: %s\n", st.to_string().c_str());
    return 1;
  };
  auto cfg = cmg::load_config(std::string(argv[1]) + "/migration.json");
  if (!cfg.is_ok()) return fail(cfg.status());
  auto m = cmg::Migration::open(std::move(*cfg));
  if (!m.is_ok()) return fail(m.status());
  auto plan = (*m)->plan(true, "Cross-face Test");
  if (!plan.is_ok()) return fail(plan.status());
  auto report = (*m)->run(cmg::RunOptions{});
  if (!report.is_ok()) return fail(report.status());
  std::printf("%s\n", boost::json::serialize(report->to_json()).c_str());
  auto reconciled = (*m)->reconcile();
  if (!reconciled.is_ok()) return fail(reconciled.status());
  std::printf("%s\n", boost::json::serialize(reconciled->to_json()).c_str());
  return 0;
}
