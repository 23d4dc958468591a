#include <doctest/doctest.h>

#include <map>
#include <string>

#include "crmmigrate/store/lmdb_env.hpp"
#include "scenario_util.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

// Each record's decision in the state at `dir`: "<status> <primary>" plus the queue reason. A
// written, merged or skipped record counts as "planned": a dry run stops before writing.
std::map<std::string, std::string> decisions(const std::string& dir, const std::string& object) {
  std::map<std::string, std::string> out;
  auto env = store::Env::open(dir);
  REQUIRE(env.is_ok());
  const std::string prefix = store::key_of({object, ""});
  REQUIRE((*env)->read([&](store::Txn& t) {
    CMG_RETURN_IF_ERROR(t.scan("records", prefix, [&](std::string_view k, std::string_view v) {
      auto o = json::parse(v).as_object();
      std::string s(o.at("s").as_string());
      if (s == "written" || s == "merged" || s == "skipped") s = "planned";
      std::string p = o.contains("p") ? std::string(o.at("p").as_string()) : "";
      out[std::string(k)] = s + " " + p;
      return true;
    }));
    return t.scan("queue", prefix, [&](std::string_view k, std::string_view v) {
      auto o = json::parse(v).as_object();
      out[std::string(k)] += " " + std::string(o.at("reason").as_string());
      return true;
    });
  }).is_ok());
  return out;
}

}  // namespace

// Companies have no parent, so a dry run decides every one of them; contacts whose company is
// only planned (not written) wait for it, as they would in a real run before the company write.
TEST_CASE("a dry run decides companies as the real run does and leaves the state untouched") {
  Scenario sc;
  auto cfg = sc.config();
  const std::string state = cfg.state_dir;
  auto mig = Migration::open(std::move(cfg));
  REQUIRE(mig.is_ok());
  REQUIRE((*mig)->plan(true, "Avery").is_ok());

  RunOptions dry;
  dry.dry_run = true;
  auto dr = (*mig)->run(dry);
  REQUIRE_MESSAGE(dr.is_ok(), dr.status().to_string());
  const auto& contacts = counts_of(*dr, "contacts");
  CHECK(contacts.source == 4200);
  CHECK(contacts.written + contacts.merged + contacts.skipped == 0);
  CHECK(contacts.queued + contacts.pending == 4200);
  const auto& companies = counts_of(*dr, "companies");
  CHECK(companies.source == 600);
  CHECK(companies.pending == 600);  // planned, not written
  // The scratch state stays on disk until the next dry run (its Env is closed once run returns).
  auto dry_companies = decisions(state + "/dry-run", "companies");
  REQUIRE(dry_companies.size() == 600);
  std::size_t planned = 0;
  for (const auto& kv : dry_companies) planned += kv.second.rfind("planned ", 0) == 0 ? 1 : 0;
  CHECK(planned == 600);

  // The real state holds no record: the dry run worked in its scratch state only.
  {
    std::uint64_t n = 1;
    REQUIRE((*mig)->state_env().read([&](store::Txn& t) -> Status {
      CMG_ASSIGN_OR_RETURN(n, t.count("records"));
      return Status::ok();
    }).is_ok());
    CHECK(n == 0);
  }

  RunOptions ro;
  auto rr = (*mig)->run(ro);
  REQUIRE_MESSAGE(rr.is_ok(), rr.status().to_string());
  mig->reset();
  check_against_manifest(*rr, sc.manifest);
  auto real = decisions(state, "companies");
  REQUIRE(real.size() == dry_companies.size());
  std::size_t differ = 0;
  for (const auto& kv : real) {
    auto it = dry_companies.find(kv.first);
    if (it == dry_companies.end() || it->second != kv.second) {
      if (differ < 5) MESSAGE(kv.first << ": real " << kv.second << " vs dry " << (it == dry_companies.end() ? "-" : it->second));
      ++differ;
    }
  }
  CHECK(differ == 0);
}
