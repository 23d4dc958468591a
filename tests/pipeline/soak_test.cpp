#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <set>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "fault_util.hpp"
#include "scenario_util.hpp"

using namespace cmg;
namespace json = boost::json;

TEST_CASE("the reference scenario under 10 % mixed faults of every kind writes every record exactly once") {
  auto wall_start = std::chrono::steady_clock::now();
  Scenario sc;
  auto clock = std::make_shared<FakeClock>();
  ScopedClock scoped(clock);
  auto raw = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/destination"));
  REQUIRE(raw.is_ok());
  auto dest = *raw;
  use_clock(*dest, clock);
  sandbox::FaultPlan plan;
  plan.seed = 2024;
  plan.rate_429 = 0.02;
  plan.rate_5xx = 0.02;
  plan.rate_timeout = 0.015;
  plan.rate_reset = 0.01;
  plan.rate_lost_reply = 0.015;
  plan.rate_malformed = 0.01;
  plan.rate_partial = 0.01;  // 10 % of write calls; reads fault at a quarter of the transient rate
  plan.retry_after_ms = 2000;
  dest->set_faults(plan);
  dest->set_request_log(true);
  auto retrying = with_retries(dest);
  auto mig = Migration::open(sc.config(), nullptr, retrying);
  REQUIRE(mig.is_ok());
  Migration& m = **mig;
  REQUIRE(m.plan(true, "Avery").is_ok());
  auto run_start = std::chrono::steady_clock::now();
  auto r = m.run(RunOptions{});
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  int resumes = 0;
  while (r->state == "halted" && resumes < 5) {
    RunOptions ack;
    ack.ack_halt = true;
    ack.reviewer = "Avery";
    r = m.run(ack);
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    ++resumes;
  }
  auto run_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - run_start).count();
  CHECK(r->state == "incomplete");

  // Every record written, merged, queued or skipped; nothing pending.
  std::int64_t source = 0;
  for (const auto& entry : r->objects) {
    const auto& name = entry.first;  // not a structured binding: doctest's macros capture it
    const auto& c = entry.second;
    CAPTURE(name);
    CHECK(c.source == c.written + c.merged + c.queued + c.skipped);
    CHECK(c.pending == 0);
    source += c.source;
  }
  CHECK(source == 4200 + 600 + 1800 + 6000 + static_cast<std::int64_t>(sc.manifest.expected.at("activities").source));
  CHECK(destination_duplicates(*dest) == 0);
  auto rec = m.reconcile();
  REQUIRE(rec.is_ok());
  CHECK(rec->readback_mismatches == 0);
  CHECK(retry_after_violations(dest->requests()).empty());

  // Records a partial batch failure rejected are queued as rejected_by_destination with the field.
  QueueFilter f;
  f.reason = "rejected_by_destination";
  auto items = m.queue_list(f);
  REQUIRE(items.is_ok());
  std::set<std::pair<std::string, std::string>> queued;  // (destination object, key or destination id)
  for (const auto& it : *items) {
    std::string dobj(it.at("destination_object").as_string());
    queued.insert({dobj, std::string(it.at("source_id").as_string())});
    if (const auto* id = it.if_contains("destination_id")) queued.insert({dobj, std::string(id->as_string())});
    const auto& p = it.at("problems").at(0).as_object();
    CHECK(!p.at("field").as_string().empty());
    CHECK(p.at("rule").as_string() == "INVALID_VALUE");
  }
  std::map<std::string, std::size_t> faults;
  std::size_t rejected = 0, writes = 0;
  for (const auto& q : dest->requests()) {
    if (q.call == "write") ++writes;
    ++faults[q.fault.empty() ? "none" : q.fault];
    for (const auto& k : q.rejected) {
      ++rejected;
      CHECK_MESSAGE(queued.count({q.object, k}) == 1, std::string(q.object + " " + k + " rejected but not queued"));
    }
  }
  CHECK(rejected > 0);
  for (const char* kind : {"429", "500", "503", "timeout", "reset", "lost_reply", "malformed", "partial"})
    CHECK_MESSAGE(faults[kind] > 0, kind);

  std::int64_t write_retries = 0, recovered = 0;
  REQUIRE(m.audit("", [&](const json::object& e) {
    if (const auto* v = e.if_contains("retries"); v && v->is_int64()) write_retries += v->get_int64();
    if (e.contains("recovered")) ++recovered;
    return true;
  }).is_ok());
  auto counters = dest->counters();
  REQUIRE(counters.is_ok());
  auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - wall_start).count();
  std::string faults_text;
  for (const auto& [k, n] : faults) faults_text += " " + k + "=" + std::to_string(n);
  MESSAGE("soak: " << source << " source records, " << counters->requests << " requests ("
                   << static_cast<double>(counters->requests) / static_cast<double>(source) << " per record; "
                   << writes << " write calls), faults injected " << counters->faults << " (" << faults_text
                   << " ), write retries " << write_retries << ", read retries " << retrying->retries()
                   << ", recovered by idempotency key " << recovered << ", rejected by partial batches " << rejected
                   << " (queued), resumes after halt " << resumes << ", run wall time " << run_ms
                   << " ms (test incl. seeding " << wall_ms << " ms), simulated waiting " << clock->slept() / 1000
                   << " s in " << clock->sleeps.size() << " sleeps");
}
