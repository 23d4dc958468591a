#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "test_util.hpp"

using namespace cmg;
using namespace cmg::sandbox;
namespace json = boost::json;

namespace {

std::shared_ptr<SandboxCrm> make_hubspot(const TempDir& dir, const std::string& name = "hubspot") {
  auto crm = SandboxCrm::create(dir.sub(name), "hubspot");
  REQUIRE(crm.is_ok());
  return *crm;
}

std::vector<WriteOp> companies(int n, const std::string& prefix = "org-") {
  std::vector<WriteOp> ops;
  for (int i = 0; i < n; ++i) {
    WriteOp op;
    op.kind = WriteOp::Kind::kUpsert;
    op.idempotency_key = prefix + std::to_string(i);
    op.fields = json::object{{"name", "Company " + std::to_string(i)}};
    ops.push_back(std::move(op));
  }
  return ops;
}

FaultPlan only(double FaultPlan::*rate, std::uint64_t seed = 7) {
  FaultPlan p;
  p.seed = seed;
  p.*rate = 1.0;
  p.read_rate = 0;
  return p;
}

// Sets an environment variable for the scope of a test.
struct ScopedEnv {
  std::string name;
  ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) { ::setenv(name.c_str(), value.c_str(), 1); }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

}  // namespace

TEST_CASE("a 429 applies nothing and tells every op to wait for Retry-After") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  FaultPlan p = only(&FaultPlan::rate_429);
  p.retry_after_ms = 1500;
  crm->set_faults(p);
  auto r = crm->write("companies", companies(3));
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == 3);
  for (const auto& w : *r) {
    CHECK(w.outcome == WriteResult::Outcome::kFailed);
    CHECK(w.status == 429);
    CHECK(w.retryable);
    CHECK(w.retry_after_ms == 1500);
    CHECK_FALSE(w.outcome_unknown);
  }
  CHECK(*crm->count("companies") == 0);
  auto c = crm->counters();
  CHECK(c->write_calls == 0);
  CHECK(c->requests == 1);
  CHECK(c->faults == 1);
}

TEST_CASE("500 and 503 apply nothing, are retryable, and 503 carries Retry-After") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  crm->set_faults(only(&FaultPlan::rate_5xx));
  crm->set_request_log(true);
  std::set<int> statuses;
  for (int i = 0; i < 20; ++i) {
    auto r = crm->write("companies", companies(2, "k" + std::to_string(i) + "-"));
    REQUIRE(r.is_ok());
    for (const auto& w : *r) {
      CHECK(w.retryable);
      CHECK((w.status == 500 || w.status == 503));
      CHECK(w.retry_after_ms == (w.status == 503 ? 1000 : 0));
      statuses.insert(w.status);
    }
  }
  CHECK(statuses == std::set<int>{500, 503});
  CHECK(*crm->count("companies") == 0);
  for (const auto& req : crm->requests()) CHECK_FALSE(req.applied);
}

TEST_CASE("a lost reply applies the batch but the caller cannot tell") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  crm->set_faults(only(&FaultPlan::rate_lost_reply));
  auto r = crm->write("companies", companies(4));
  REQUIRE(r.is_ok());
  for (const auto& w : *r) {
    CHECK(w.outcome == WriteResult::Outcome::kFailed);
    CHECK(w.status == 0);
    CHECK(w.retryable);
    CHECK(w.outcome_unknown);
    CHECK(w.id.empty());
  }
  CHECK(*crm->count("companies") == 4);  // applied
  crm->set_faults(FaultPlan{});
  auto found = crm->find("companies", "crm_source_id", {"org-0", "org-3"});
  REQUIRE(found.is_ok());
  CHECK(found->size() == 2);  // the idempotency key resolves it
  CHECK(crm->counters()->write_calls == 1);
}

TEST_CASE("a connection reset applies nothing and leaves the outcome unknown to the caller") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  crm->set_faults(only(&FaultPlan::rate_reset));
  auto r = crm->write("companies", companies(2));
  REQUIRE(r.is_ok());
  CHECK((*r)[0].outcome_unknown);
  CHECK((*r)[0].retryable);
  CHECK(*crm->count("companies") == 0);
}

TEST_CASE("timeouts and malformed bodies are applied or not as the seed decides") {
  for (auto rate : {&FaultPlan::rate_timeout, &FaultPlan::rate_malformed}) {
    TempDir dir;
    auto crm = make_hubspot(dir);
    crm->set_faults(only(rate));
    crm->set_request_log(true);
    for (int i = 0; i < 30; ++i) {
      auto r = crm->write("companies", companies(1, "t" + std::to_string(i) + "-"));
      REQUIRE(r.is_ok());
      CHECK((*r)[0].outcome_unknown);
      CHECK((*r)[0].status == 0);
    }
    std::int64_t applied = 0;
    for (const auto& req : crm->requests()) applied += req.applied ? 1 : 0;
    CHECK(applied > 0);
    CHECK(applied < 30);
    CHECK(*crm->count("companies") == applied);
  }
}

TEST_CASE("a partial batch failure rejects some ops with field errors and applies the others") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  crm->set_faults(only(&FaultPlan::rate_partial));
  crm->set_request_log(true);
  auto r = crm->write("companies", companies(100));
  REQUIRE(r.is_ok());
  std::vector<std::string> rejected;
  for (std::size_t i = 0; i < r->size(); ++i) {
    const auto& w = (*r)[i];
    if (w.outcome == WriteResult::Outcome::kFailed) {
      CHECK(w.status == 400);
      CHECK_FALSE(w.retryable);
      REQUIRE(w.errors.size() == 1);
      CHECK(w.errors[0].field == "name");
      CHECK(w.errors[0].code == "INVALID_VALUE");
      rejected.push_back("org-" + std::to_string(i));
    } else {
      CHECK(w.status == 201);
    }
  }
  CHECK(!rejected.empty());
  CHECK(rejected.size() <= 5);
  CHECK(*crm->count("companies") == static_cast<std::int64_t>(100 - rejected.size()));
  auto log = crm->requests();
  REQUIRE(log.size() == 1);
  CHECK(log[0].fault == "partial");
  CHECK(log[0].rejected == rejected);
}

TEST_CASE("destination reads fail transiently with Retry-After while the source side never faults") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  crm->set_faults(FaultPlan{});
  REQUIRE(crm->write("companies", companies(5)).is_ok());
  FaultPlan p;
  p.seed = 3;
  p.read_rate = 1.0;
  p.retry_after_ms = 250;
  crm->set_faults(p);
  auto f = crm->find("companies", "crm_source_id", {"org-1"});
  REQUIRE_FALSE(f.is_ok());
  CHECK(f.status().code() == Code::kUnavailable);
  CHECK(f.status().message().find("Retry-After: 250 ms") != std::string::npos);
  CHECK(crm->last_retry_after_ms() == 250);
  CHECK(crm->read("companies", std::vector<std::string>{"1000001"}).status().code() == Code::kUnavailable);
  CHECK(crm->list("companies", ReadOptions{}).status().code() == Code::kUnavailable);
  // The Source role and admin calls are not part of the destination API and never fault.
  auto src = crm->read("companies", ReadOptions{});
  REQUIRE(src.is_ok());
  RecordBatch b;
  CHECK((*src)->next(b).is_ok());
  CHECK(b.size() == 5);
  CHECK(crm->get("companies", "1000001").is_ok());
  CHECK(crm->count("companies").is_ok());

  // Pages of a listing fault one by one; the page is simply asked for again.
  p.read_rate = 0.5;
  crm->set_faults(p);
  ReadOptions ro;
  ro.batch_size = 1;
  std::unique_ptr<RecordReader> reader;
  for (int i = 0; i < 20 && !reader; ++i) {
    auto l = crm->list("companies", ro);
    if (l.is_ok()) reader = std::move(*l);
  }
  REQUIRE(reader);
  std::size_t seen = 0, failures = 0;
  for (;;) {
    auto more = reader->next(b);
    if (!more.is_ok()) {
      ++failures;
      continue;
    }
    if (!*more) break;
    seen += b.size();
  }
  CHECK(seen == 5);
  CHECK(failures > 0);
}

TEST_CASE("the same seed gives the same faults in the same order") {
  FaultPlan p;
  p.seed = 99;
  p.rate_429 = 0.1;
  p.rate_5xx = 0.1;
  p.rate_timeout = 0.1;
  p.rate_reset = 0.1;
  p.rate_lost_reply = 0.1;
  p.rate_malformed = 0.1;
  p.rate_partial = 0.1;
  auto faults_of = [&](const std::string& name) {
    TempDir dir;
    auto crm = make_hubspot(dir, name);
    crm->set_faults(p);
    crm->set_request_log(true);
    for (int i = 0; i < 40; ++i) {
      auto r = crm->write("companies", companies(30, "s" + std::to_string(i) + "-"));
      REQUIRE(r.is_ok());
      (void)crm->find("companies", "crm_source_id", {"s0-0"});
    }
    std::vector<std::string> out;
    for (const auto& req : crm->requests()) {
      std::string s = req.call + ":" + req.fault + ":" + (req.applied ? "a" : "-");
      for (const auto& k : req.rejected) s += "," + k;
      out.push_back(s);
    }
    return out;
  };
  auto a = faults_of("a");
  auto b = faults_of("b");
  CHECK(a == b);
  std::set<std::string> kinds;
  for (const auto& s : a) kinds.insert(s.substr(0, s.find(':', s.find(':') + 1)));
  for (const char* k : {"write:429", "write:timeout", "write:reset", "write:lost_reply", "write:malformed",
                        "write:partial", "write:"})
    CHECK_MESSAGE(kinds.count(k) == 1, k);
}

TEST_CASE("a fault plan comes from the sandbox's own state, then CMG_SANDBOX_FAULTS text or file") {
  TempDir dir;
  std::string path;
  {
    auto crm = make_hubspot(dir);
    path = crm->dir();
    FaultPlan p = only(&FaultPlan::rate_429, 5);
    p.retry_after_ms = 42;
    REQUIRE(crm->store_faults(p).is_ok());
  }
  {
    auto crm = SandboxCrm::open(path);
    REQUIRE(crm.is_ok());
    CHECK((*crm)->faults().rate_429 == 1.0);
    CHECK((*crm)->faults().retry_after_ms == 42);
    auto r = (*crm)->write("companies", companies(1));
    REQUIRE(r.is_ok());
    CHECK((*r)[0].status == 429);
  }
  {
    ScopedEnv env("CMG_SANDBOX_FAULTS", R"({"seed": 1, "rate_lost_reply": 1.0, "read_rate": 0})");
    auto crm = SandboxCrm::open(path);
    REQUIRE(crm.is_ok());
    CHECK((*crm)->faults().rate_429 == 0);  // the environment wins over the stored plan
    CHECK((*crm)->faults().rate_lost_reply == 1.0);
    auto r = (*crm)->write("companies", companies(1));
    REQUIRE(r.is_ok());
    CHECK((*r)[0].outcome_unknown);
    CHECK(*(*crm)->count("companies") == 1);
  }
  {
    std::string file = dir.sub("faults.json");
    std::ofstream(file) << R"({"seed": 2, "rate_5xx": 0.25, "retry_after_ms": 10})";
    ScopedEnv env("CMG_SANDBOX_FAULTS", "@" + file);
    auto crm = SandboxCrm::open(path);
    REQUIRE(crm.is_ok());
    CHECK((*crm)->faults().rate_5xx == 0.25);
    CHECK((*crm)->faults().seed == 2);
    CHECK((*crm)->faults().effective_read_rate() == doctest::Approx(0.0625));
  }
  {
    auto crm = SandboxCrm::open(path);
    REQUIRE(crm.is_ok());
    REQUIRE((*crm)->store_faults(std::nullopt).is_ok());
  }
  auto crm = SandboxCrm::open(path);
  REQUIRE(crm.is_ok());
  CHECK_FALSE((*crm)->faults().any());
}

TEST_CASE("a bad fault plan is refused with the key that is wrong") {
  auto unknown = fault_plan_from_json(R"({"rate_4299": 0.1})", "CMG_SANDBOX_FAULTS");
  CHECK(unknown.status().code() == Code::kInvalidArgument);
  CHECK(unknown.status().message().find("CMG_SANDBOX_FAULTS.rate_4299: unknown key") != std::string::npos);
  auto range = fault_plan_from_json(R"({"rate_429": 1.5})", "x");
  CHECK(range.status().message().find("x.rate_429: a rate must be between 0 and 1") != std::string::npos);
  auto sum = fault_plan_from_json(R"({"rate_429": 0.6, "rate_5xx": 0.6})", "x");
  CHECK(sum.status().message().find("add up to more than 1") != std::string::npos);
  CHECK(fault_plan_from_json("[1]", "x").status().code() == Code::kParse);
  CHECK(fault_plan_from_json(R"({"seed": "one"})", "x").status().message() == "x.seed: must be a number");
  auto round = fault_plan_from_json(fault_plan_to_json(only(&FaultPlan::rate_timeout, 12)), "x");
  REQUIRE(round.is_ok());
  CHECK(round->seed == 12);
  CHECK(round->rate_timeout == 1.0);

  TempDir dir;
  std::string path = make_hubspot(dir)->dir();
  ScopedEnv env("CMG_SANDBOX_FAULTS", R"({"rate_429": "lots"})");
  auto crm = SandboxCrm::open(path);
  CHECK(crm.status().code() == Code::kInvalidArgument);
  CHECK(crm.status().message().find("CMG_SANDBOX_FAULTS.rate_429") != std::string::npos);
}
