// The reference scenario over loopback HTTP: the Pipedrive-shaped source sandbox served in the
// Pipedrive dialect, the HubSpot-shaped destination in the HubSpot dialect, the real connectors in
// between and examples/reference-http/migration.json as the config. The outcome must be the one
// the in-process run pins (README, tests/pipeline/reference_scenario_test.cpp).
//
// CI runs it with a higher declared HubSpot limit (1,900 requests / 10 s, on the server and in the
// config) so it stays short; tests/bench/http_bench.cpp runs it under the real 190 / 10 s.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "crmmigrate/sandbox/serve.hpp"
#include "pipeline/scenario_util.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

constexpr int kCiBurst = 1900;

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) s.replace(pos, from.size(), to);
  return s;
}

std::string http_config_text(std::uint16_t pd_port, std::uint16_t hs_port, int burst, bool with_on_hold) {
  std::string text = read_text(std::string(CMG_SOURCE_DIR) + "/examples/reference-http/migration.json");
  text = replace_all(text, "@PIPEDRIVE_URL@", "http://127.0.0.1:" + std::to_string(pd_port));
  text = replace_all(text, "@HUBSPOT_URL@", "http://127.0.0.1:" + std::to_string(hs_port));
  text = replace_all(text, "\"burst_requests\": 190", "\"burst_requests\": " + std::to_string(burst));
  if (with_on_hold) {
    const std::string anchor = R"("2/8": [)";
    auto pos = text.find(anchor);
    REQUIRE(pos != std::string::npos);
    auto close = text.find(']', pos);
    text.insert(close + 1, R"(, "2/9": ["partnerships", "partner_paused"])");
  }
  return text;
}

std::int64_t queued_with(Migration& m, const std::string& object, const std::string& reason) {
  QueueFilter f;
  f.object = object;
  f.reason = reason;
  auto items = m.queue_list(f);
  REQUIRE(items.is_ok());
  return static_cast<std::int64_t>(items->size());
}

}  // namespace

TEST_CASE("reference scenario over HTTP: Pipedrive dialect -> HubSpot dialect, same outcome as in-process") {
  Scenario sc;
  auto src = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/source"));
  auto dst = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/destination"));
  REQUIRE(src.is_ok());
  REQUIRE(dst.is_ok());
  ::setenv("PIPEDRIVE_TOKEN", "pd-reference-token", 1);
  ::setenv("HUBSPOT_TOKEN", "hs-reference-token", 1);
  sandbox::SandboxServeOptions pso;
  pso.token = "pd-reference-token";
  auto pd_server = sandbox::serve_sandbox(*src, sandbox::Dialect::kPipedrive, pso);
  REQUIRE_MESSAGE(pd_server.is_ok(), pd_server.status().to_string());
  sandbox::SandboxServeOptions hso;
  hso.token = "hs-reference-token";
  Quota hq = (*dst)->quota();
  hq.burst_requests = kCiBurst;
  hq.burst_window_ms = 10000;
  hso.limits = hq;
  auto hs_server = sandbox::serve_sandbox(*dst, sandbox::Dialect::kHubSpot, hso);
  REQUIRE_MESSAGE(hs_server.is_ok(), hs_server.status().to_string());
  const auto pd_port = (*pd_server)->port();
  const auto hs_port = (*hs_server)->port();

  auto open = [&](bool on_hold) {
    auto cfg = parse_config(http_config_text(pd_port, hs_port, kCiBurst, on_hold), sc.dir.sub("migration.json"),
                            sc.dir.path());
    REQUIRE_MESSAGE(cfg.is_ok(), cfg.status().to_string());
    auto mig = Migration::open(std::move(*cfg));
    REQUIRE_MESSAGE(mig.is_ok(), mig.status().to_string());
    return std::move(*mig);
  };

  auto m = open(false);
  auto plan = m->plan(false, "");
  REQUIRE_MESSAGE(plan.is_ok(), plan.status().to_string());
  CHECK(plan->at("blocking").as_array().empty());
  const auto& deals_plan = plan->at("objects").at("deals").as_object();
  REQUIRE(deals_plan.at("untranslated_values").as_array().size() == 1);
  CHECK(deals_plan.at("untranslated_values").at(0).at("value").as_string() == "2/9");
  CHECK(deals_plan.at("untranslated_values").at(0).at("count").to_number<std::int64_t>() == 140);
  REQUIRE(m->plan(true, "Avery").is_ok());

  RunOptions ro;
  auto r = m->run(ro);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->state == "incomplete");
  check_against_manifest(*r, sc.manifest);
  CHECK(counts_of(*r, "contacts").written == 3716);
  CHECK(counts_of(*r, "contacts").merged == 450);
  CHECK(counts_of(*r, "companies").merged == 40);
  CHECK(counts_of(*r, "deals").written == 1640);
  CHECK(counts_of(*r, "notes").written == 5721);
  CHECK(counts_of(*r, "activities").written == 370);
  CHECK(queued_with(*m, "deals", "unmapped_value") == 140);
  CHECK(queued_with(*m, "contacts", "owner_unprovisioned") == 34);
  CHECK(queued_with(*m, "notes", "orphan_reference") == 12);
  m.reset();

  auto m2 = open(true);
  REQUIRE(m2->plan(true, "Avery").is_ok());
  QueueFilter owners;
  owners.reason = "owner_unprovisioned";
  owners.object = "contacts";
  auto fixed = m2->queue_fix(owners, json::object{{"hubspot_owner_id", sc.manifest.reassign_owner_id}}, "Sam", "reassigned");
  REQUIRE(fixed.is_ok());
  CHECK(*fixed == 34);
  QueueFilter orphans;
  orphans.reason = "orphan_reference";
  auto skipped = m2->queue_skip(orphans, "Sam", "person deleted in the source");
  REQUIRE(skipped.is_ok());
  CHECK(*skipped == 12);
  auto rr = m2->reprocess(ro);
  REQUIRE_MESSAGE(rr.is_ok(), rr.status().to_string());
  CHECK(rr->queue_open == 0);
  CHECK(counts_of(*rr, "deals").written == 1800);
  CHECK(counts_of(*rr, "contacts").written == 3750);
  CHECK(counts_of(*rr, "notes").written == 5988);
  CHECK(counts_of(*rr, "notes").skipped == 12);
  CHECK(counts_of(*rr, "activities").written == 400);

  auto rec = m2->reconcile();
  REQUIRE_MESSAGE(rec.is_ok(), rec.status().to_string());
  CHECK(rec->readback_mismatches == 0);
  CHECK(rec->complete);
  CHECK(rec->state == "complete");

  // 0 duplicates in the destination: every idempotency key appears once.
  for (const char* obj : {"contacts", "companies", "deals", "notes", "calls", "meetings", "tasks", "emails"}) {
    std::map<std::string, int> seen;
    auto reader = (*dst)->list(obj, ReadOptions{});
    REQUIRE(reader.is_ok());
    RecordBatch b;
    for (;;) {
      auto more = (*reader)->next(b);
      REQUIRE(more.is_ok());
      if (!*more) break;
      for (const auto& x : b)
        if (const auto* k = x.fields.if_contains("crm_source_id"); k && !value_is_blank(*k)) ++seen[value_to_text(*k)];
    }
    int dups = 0;
    for (const auto& entry : seen) dups += entry.second > 1 ? 1 : 0;
    CAPTURE(obj);
    CHECK(dups == 0);
  }
  m2.reset();
  (*hs_server)->stop();
  (*pd_server)->stop();
  ::unsetenv("PIPEDRIVE_TOKEN");
  ::unsetenv("HUBSPOT_TOKEN");
}
