// The reference scenario with its destination behind HTTP: the HubSpot connector talks to the
// destination sandbox served in the HubSpot dialect on 127.0.0.1. Same counts as in-process.
#include <doctest/doctest.h>

#include <cstdlib>

#include "crmmigrate/sandbox/serve.hpp"
#include "pipeline/scenario_util.hpp"

using namespace cmg;

TEST_CASE("hubspot connector: the reference scenario's destination side over HTTP") {
  Scenario sc;
  auto dst = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/destination"));
  REQUIRE(dst.is_ok());
  sandbox::SandboxServeOptions so;
  so.token = "pat-na1-reference-token";
  so.enforce_limits = true;
  so.server.threads = 4;
  // The preset's 190 per 10 s would make this a 3-minute test; the pacing is the same at 400 per s.
  Quota limits;
  limits.burst_requests = 400;
  limits.burst_window_ms = 1000;
  so.limits = limits;
  auto server = sandbox::serve_sandbox(*dst, sandbox::Dialect::kHubSpot, so);
  REQUIRE(server.is_ok());
  ::setenv("CMG_TEST_HS_REF_TOKEN", "pat-na1-reference-token", 1);

  std::string text = reference_config_text();
  const std::string local = R"("destination": {"connector": "sandbox", "options": {"path": "sandbox/destination"}})";
  auto pos = text.find(local);
  REQUIRE(pos != std::string::npos);
  text.replace(pos, local.size(),
               R"("destination": {"connector": "hubspot", "options": {"base_url": "http://127.0.0.1:)" +
                   std::to_string((*server)->port()) +
                   R"(", "token_env": "CMG_TEST_HS_REF_TOKEN", "limits": {"burst_requests": 400, "burst_window_ms": 1000}}})");
  auto cfg = parse_config(text, "migration.json", sc.dir.path());
  REQUIRE_MESSAGE(cfg.is_ok(), cfg.status().to_string());
  auto mig = Migration::open(std::move(*cfg));
  REQUIRE_MESSAGE(mig.is_ok(), mig.status().to_string());
  Migration& m = **mig;

  auto plan = m.plan(true, "Avery");
  REQUIRE_MESSAGE(plan.is_ok(), plan.status().to_string());
  CHECK(plan->at("blocking").as_array().empty());
  CHECK(plan->at("projected").at("eta_seconds").to_number<std::int64_t>() >= 0);

  RunOptions ro;
  auto r = m.run(ro);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->state == "incomplete");
  check_against_manifest(*r, sc.manifest);
  auto rec = m.reconcile(ro);
  REQUIRE_MESSAGE(rec.is_ok(), rec.status().to_string());
  // Read back over HTTP (batch read + v4 associations): what was sent is what is there.
  for (const auto& d : rec->discrepancies) MESSAGE(boost::json::serialize(d));
  CHECK(rec->discrepancies.empty());
  ::unsetenv("CMG_TEST_HS_REF_TOKEN");
}

TEST_CASE("hubspot connector: plan checks access first; a refused token is kPermissionDenied (exit 6)") {
  Scenario sc;
  auto dst = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/destination"));
  REQUIRE(dst.is_ok());
  sandbox::SandboxServeOptions so;
  so.token = "pat-na1-the-right-one";
  auto server = sandbox::serve_sandbox(*dst, sandbox::Dialect::kHubSpot, so);
  REQUIRE(server.is_ok());
  ::setenv("CMG_TEST_HS_WRONG_TOKEN", "pat-na1-a-wrong-one", 1);
  std::string text = reference_config_text();
  const std::string local = R"("destination": {"connector": "sandbox", "options": {"path": "sandbox/destination"}})";
  auto pos = text.find(local);
  REQUIRE(pos != std::string::npos);
  text.replace(pos, local.size(),
               R"("destination": {"connector": "hubspot", "options": {"base_url": "http://127.0.0.1:)" +
                   std::to_string((*server)->port()) + R"(", "token_env": "CMG_TEST_HS_WRONG_TOKEN"}})");
  auto cfg = parse_config(text, "migration.json", sc.dir.path());
  REQUIRE_MESSAGE(cfg.is_ok(), cfg.status().to_string());
  auto mig = Migration::open(std::move(*cfg));
  REQUIRE_MESSAGE(mig.is_ok(), mig.status().to_string());
  auto plan = (*mig)->plan(false, "");
  REQUIRE_FALSE(plan.is_ok());
  CHECK(plan.status().code() == Code::kPermissionDenied);
  CHECK(plan.status().message().find("destination") != std::string::npos);
  CHECK(plan.status().message().find("CMG_TEST_HS_WRONG_TOKEN") != std::string::npos);
  CHECK(plan.status().message().find("pat-na1-a-wrong-one") == std::string::npos);
  ::unsetenv("CMG_TEST_HS_WRONG_TOKEN");
}
