// consumer_cpp <dir>: links the installed static crmmigrate::core (and, through it, LMDB, utf8proc,
// libphonenumber, OpenSSL, Boost.JSON, fmt), then runs the migration in <dir> (a copy of
// tests/consumer/same_report) with the C++ API and checks its report.
#include <cstdio>
#include <string>

#include <boost/json.hpp>

#include "crmmigrate/core/normalize.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "crmmigrate/pipeline/stages.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  int failures = 0;
  auto expect = [&](bool ok, const char* what) {
    std::printf("%-50s %s\n", what, ok ? "ok" : "FAILED");
    failures += ok ? 0 : 1;
  };
  expect(std::string(CMG_VERSION_STRING).rfind("0.", 0) == 0, "CMG_VERSION_STRING is 0.x");
  // libphonenumber (a UK number takes the slow path) and utf8proc (NFKC + case fold).
  expect(cmg::PhoneNormalizer("US").to_e164("+44 20 7946 0958") == std::optional<std::string>("+442079460958"),
         "phone normalised through libphonenumber");
  expect(cmg::normalize_text("\xEF\xAC\x81LE") == std::optional<std::string>("file"), "text normalised through utf8proc");
  expect(std::string(cmg::stages::action_name(cmg::stages::Action::kFolded)) == "folded", "stages linked");

  auto cfg = cmg::load_config(std::string(argv[1]) + "/migration.json");
  if (!cfg.is_ok()) return std::fprintf(stderr, "%s\n", cfg.status().to_string().c_str()), 1;
  auto m = cmg::Migration::open(std::move(*cfg));
  if (!m.is_ok()) return std::fprintf(stderr, "%s\n", m.status().to_string().c_str()), 1;
  auto plan = (*m)->plan(true, "Consumer");
  auto report = (*m)->run({});
  if (!plan.is_ok() || !report.is_ok()) return std::fprintf(stderr, "plan or run failed\n"), 1;
  std::printf("report: %s\n", boost::json::serialize(report->to_json()).c_str());
  const auto& c = report->objects.at(0).second;
  expect(c.source == 5 && c.written == 3 && c.merged == 1 && c.queued == 1, "migration: 5 = 3 + 1 + 1");
  return failures == 0 ? 0 : 1;
}
