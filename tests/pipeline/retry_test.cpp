#include <doctest/doctest.h>

#include <map>
#include <set>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "fault_util.hpp"
#include "scenario_util.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

std::shared_ptr<sandbox::SandboxCrm> open_dest(const Scenario& sc) {
  auto dest = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/destination"));
  REQUIRE(dest.is_ok());
  return *dest;
}


MigrationConfig config_with(const Scenario& sc, const std::string& from, const std::string& to) {
  std::string text = reference_config_text();
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  auto cfg = parse_config(text, "migration.json", sc.dir.path());
  REQUIRE_MESSAGE(cfg.is_ok(), cfg.status().to_string());
  return std::move(*cfg);
}

// Rejects every n-th op it is asked to write (a 400 with a field error, the way a platform rejects
// a value), and passes the others on.
class EveryNthRejecting final : public ForwardingDestination {
 public:
  EveryNthRejecting(std::shared_ptr<Destination> inner, std::size_t n) : ForwardingDestination(std::move(inner)), n_(n) {}
  bool on = true;
  std::size_t rejected = 0;
  Result<std::vector<WriteResult>> write(std::string_view o, const std::vector<WriteOp>& ops) override {
    std::vector<WriteOp> pass;
    std::vector<bool> reject(ops.size(), false);
    for (std::size_t i = 0; i < ops.size(); ++i) {
      reject[i] = on && ++seen_ % n_ == 0;
      if (!reject[i]) pass.push_back(ops[i]);
    }
    CMG_ASSIGN_OR_RETURN(auto inner, inner_->write(o, pass));
    std::vector<WriteResult> out;
    std::size_t j = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (!reject[i]) {
        out.push_back(inner[j++]);
        continue;
      }
      ++rejected;
      WriteResult r;
      r.status = 400;
      r.errors.push_back({"name", "x", "INVALID_VALUE", "rejected by the test destination"});
      out.push_back(r);
    }
    return out;
  }

 private:
  std::size_t n_;
  std::size_t seen_ = 0;
};

std::int64_t sum_audit(Migration& m, const std::string& key, bool count_only = false) {
  std::int64_t n = 0;
  REQUIRE(m.audit("", [&](const json::object& e) {
    if (const auto* v = e.if_contains(key)) n += count_only ? 1 : (v->is_int64() ? v->get_int64() : 0);
    return true;
  }).is_ok());
  return n;
}

}  // namespace

TEST_CASE("backoff doubles with each attempt, is jittered within its upper half, and is capped") {
  RetryPolicy p;
  p.base_ms = 100;
  p.cap_ms = 1000;
  CHECK(backoff_ms(p, 1, 0) == 50);
  CHECK(backoff_ms(p, 1, 50) == 100);
  CHECK(backoff_ms(p, 2, 0) == 100);
  CHECK(backoff_ms(p, 3, 0) == 200);
  CHECK(backoff_ms(p, 3, 200) == 400);
  CHECK(backoff_ms(p, 30, 0) == 500);
  CHECK(backoff_ms(p, 30, 500) == 1000);
  std::set<std::int64_t> spread;
  for (std::uint64_t r = 0; r < 1000; r += 37) spread.insert(backoff_ms(p, 4, r));
  CHECK(spread.size() > 10);
  for (auto v : spread) CHECK((v >= 400 && v <= 800));
}

TEST_CASE("no request reaches the destination before its Retry-After has expired") {
  Scenario sc;
  auto clock = std::make_shared<FakeClock>();
  ScopedClock scoped(clock);
  auto dest = open_dest(sc);
  use_clock(*dest, clock);
  sandbox::FaultPlan plan;
  plan.seed = 11;
  plan.rate_429 = 0.15;
  plan.rate_5xx = 0.1;
  plan.read_rate = 0.05;
  plan.retry_after_ms = 3000;
  dest->set_faults(plan);
  dest->set_request_log(true);
  auto mig = Migration::open(sc.config(), nullptr, with_retries(dest));
  REQUIRE(mig.is_ok());
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  auto r = (*mig)->run(RunOptions{});
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->state == "incomplete");
  check_against_manifest(*r, sc.manifest);

  auto log = dest->requests();
  std::size_t with_retry_after = 0;
  for (const auto& q : log) with_retry_after += q.retry_after_ms > 0 ? 1 : 0;
  CHECK(with_retry_after >= 5);
  auto violations = retry_after_violations(log);
  CHECK_MESSAGE(violations.empty(), violations.front());
  // Every wait went through the pipeline clock: at least one Retry-After per 429/503 reply.
  CHECK(clock->slept() >= static_cast<std::int64_t>(with_retry_after) * 1000);
}

TEST_CASE("a lost reply or timeout is resolved through the idempotency key, never by creating the record again") {
  Scenario sc;
  auto clock = std::make_shared<FakeClock>();
  ScopedClock scoped(clock);
  auto dest = open_dest(sc);
  sandbox::FaultPlan plan;
  plan.seed = 5;
  plan.rate_lost_reply = 0.2;
  plan.rate_timeout = 0.05;
  plan.rate_malformed = 0.05;
  plan.rate_reset = 0.05;
  plan.read_rate = 0;  // the pipeline is given the bare sandbox: write.cpp settles writes on its own
  dest->set_faults(plan);
  dest->set_request_log(true);
  auto mig = Migration::open(sc.config(), nullptr, dest);
  REQUIRE(mig.is_ok());
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  auto r = (*mig)->run(RunOptions{});
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  check_against_manifest(*r, sc.manifest);
  CHECK(destination_duplicates(*dest) == 0);

  std::size_t lost = 0;
  for (const auto& q : dest->requests()) lost += q.fault == "lost_reply" ? 1 : 0;
  CHECK(lost > 5);
  CHECK(sum_audit(**mig, "recovered", true) > 0);
  // Each written record was created exactly once in the destination.
  std::int64_t written = 0;
  for (const auto& [name, c] : r->objects) written += c.written;
  auto counters = dest->counters();
  REQUIRE(counters.is_ok());
  CHECK(static_cast<std::int64_t>(counters->records_created) == written);
  auto rec = (*mig)->reconcile();
  REQUIRE(rec.is_ok());
  CHECK(rec->readback_mismatches == 0);
}

TEST_CASE("rejections just below the error-rate threshold do not halt the run") {
  Scenario sc;
  auto rejecting = std::make_shared<EveryNthRejecting>(open_dest(sc), 25);  // 4 % < 5 %
  auto mig = Migration::open(sc.config(), nullptr, rejecting);
  REQUIRE(mig.is_ok());
  std::vector<Alert> alerts;
  (*mig)->set_alert_callback([&](const Alert& a) { alerts.push_back(a); });
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  auto r = (*mig)->run(RunOptions{});
  REQUIRE(r.is_ok());
  CHECK(r->state == "incomplete");
  CHECK(alerts.empty());
  for (const auto& entry : r->objects) {
    const auto& name = entry.first;  // not a structured binding: doctest's macros capture it
    const auto& c = entry.second;
    CAPTURE(name);
    CHECK(c.pending == 0);
  }
  CHECK(rejecting->rejected > 400);
  QueueFilter f;
  f.reason = "rejected_by_destination";
  auto items = (*mig)->queue_list(f);
  REQUIRE(items.is_ok());
  CHECK(items->size() >= rejecting->rejected);
  const auto& problem = items->front().at("problems").at(0).as_object();
  CHECK(problem.at("field").as_string() == "name");
  CHECK(problem.at("rule").as_string() == "INVALID_VALUE");
}

TEST_CASE("rejections just above the error-rate threshold halt the run, which resumes after acknowledgement") {
  Scenario sc;
  auto rejecting = std::make_shared<EveryNthRejecting>(open_dest(sc), 16);  // 6.25 % > 5 %
  auto mig = Migration::open(sc.config(), nullptr, rejecting);
  REQUIRE(mig.is_ok());
  std::vector<Alert> alerts;
  (*mig)->set_alert_callback([&](const Alert& a) { alerts.push_back(a); });
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  auto r = (*mig)->run(RunOptions{});
  REQUIRE(r.is_ok());
  CHECK(r->state == "halted");
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].kind == "halt");
  std::int64_t pending = 0;
  for (const auto& [name, c] : r->objects) pending += c.pending;
  CHECK(pending > 0);

  rejecting->on = false;
  RunOptions ack;
  ack.ack_halt = true;
  ack.reviewer = "Avery";
  auto resumed = (*mig)->run(ack);
  REQUIRE(resumed.is_ok());
  CHECK(resumed->state == "incomplete");
  for (const auto& entry : resumed->objects) {
    const auto& name = entry.first;
    const auto& c = entry.second;
    CAPTURE(name);
    CHECK(c.pending == 0);
  }
}

TEST_CASE("transient faults that succeed on retry never count toward the error-rate halt") {
  Scenario sc;
  auto clock = std::make_shared<FakeClock>();
  ScopedClock scoped(clock);
  auto dest = open_dest(sc);
  use_clock(*dest, clock);
  sandbox::FaultPlan plan;
  plan.seed = 21;
  plan.rate_429 = 0.02;
  plan.rate_5xx = 0.02;
  plan.rate_timeout = 0.015;
  plan.rate_reset = 0.015;
  plan.rate_lost_reply = 0.015;
  plan.rate_malformed = 0.015;  // 10 % of write calls, none of them a rejection
  dest->set_faults(plan);
  // A threshold so low that two counted failures in a window would halt the run.
  auto mig = Migration::open(config_with(sc, R"("max_error_rate": 0.05)", R"("max_error_rate": 0.005)"), nullptr,
                             with_retries(dest));
  REQUIRE(mig.is_ok());
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  auto r = (*mig)->run(RunOptions{});
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->state == "incomplete");
  CHECK(r->alerts.empty());
  check_against_manifest(*r, sc.manifest);
  CHECK(dest->counters()->faults > 20);
  CHECK(sum_audit(**mig, "retries") > 20);
  CHECK(destination_duplicates(*dest) == 0);
}
