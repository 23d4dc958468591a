#include <doctest/doctest.h>

#include <atomic>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "crmmigrate/store/lmdb_env.hpp"
#include "scenario_util.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

// A destination that rejects (non-retryably) every write of one object while `reject` is set, the
// way a platform answers a field it no longer accepts.
class RejectingDestination final : public ForwardingDestination {
 public:
  RejectingDestination(std::shared_ptr<Destination> inner, std::string object)
      : ForwardingDestination(std::move(inner)), object_(std::move(object)) {}
  std::atomic<bool> reject{true};
  Result<std::vector<WriteResult>> write(std::string_view o, const std::vector<WriteOp>& ops) override {
    if (!reject || o != object_) return inner_->write(o, ops);
    std::vector<WriteResult> out(ops.size());
    for (auto& r : out) {
      r.status = 400;
      r.errors.push_back({"dealname", "x", "INVALID_OPTION", "rejected by the test destination"});
    }
    return out;
  }

 private:
  std::string object_;
};

}  // namespace

TEST_CASE("a count mismatch pauses the run until a reviewer accepts the counts") {
  Scenario sc;
  std::string text = reference_config_text();
  text.replace(text.find(R"("source": "persons",)"), std::string(R"("source": "persons",)").size(),
               R"("source": "persons", "expected_count": 4300,)");
  // The configured alert command receives the alert in its environment.
  std::string alert_file = sc.dir.sub("alerts.txt");
  text.replace(text.find(R"("objects": [)"), std::string(R"("objects": [)").size(),
               R"("alerts": {"command": "echo $CMG_ALERT_KIND $CMG_ALERT_OBJECT >> )" + alert_file +
                   R"("}, "objects": [)");
  auto cfg = parse_config(text, "m.json", sc.dir.path());
  REQUIRE_MESSAGE(cfg.is_ok(), cfg.status().to_string());
  auto mig = Migration::open(std::move(*cfg));
  REQUIRE(mig.is_ok());
  std::vector<Alert> alerts;
  (*mig)->set_alert_callback([&](const Alert& a) { alerts.push_back(a); });
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  RunOptions ro;
  auto r = (*mig)->run(ro);
  REQUIRE(r.is_ok());
  CHECK(r->state == "paused");
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].kind == "count_mismatch");
  CHECK(alerts[0].message.find("read 4200 records, expected 4300") != std::string::npos);
  CHECK(counts_of(*r, "contacts").written == 0);
  CHECK(counts_of(*r, "companies").written == 560);  // objects before the mismatch went through
  CHECK(read_text(alert_file) == "count_mismatch contacts\n");

  auto again = (*mig)->run(ro);  // still paused without acceptance
  REQUIRE(again.is_ok());
  CHECK(again->state == "paused");
  RunOptions accept;
  accept.accept_counts = true;
  CHECK((*mig)->run(accept).status().code() == Code::kInvalidArgument);  // reviewer required
  accept.reviewer = "Avery";
  auto resumed = (*mig)->run(accept);
  REQUIRE(resumed.is_ok());
  CHECK(resumed->state == "incomplete");
  CHECK(counts_of(*resumed, "contacts").written == 3716);
  bool audited = false;
  REQUIRE((*mig)->audit("", [&](const json::object& e) {
    if (e.at("action").as_string() == "counts_accepted") audited = e.at("reviewer").as_string() == "Avery";
    return true;
  }).is_ok());
  CHECK(audited);
}

TEST_CASE("--limit writes at most that many records and the next run resumes where it stopped") {
  Scenario sc;
  auto mig = Migration::open(sc.config());
  REQUIRE(mig.is_ok());
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  RunOptions ro;
  ro.limit = 250;
  ro.only_object = "companies";
  auto r = (*mig)->run(ro);
  REQUIRE(r.is_ok());
  const auto& c = counts_of(*r, "companies");
  CHECK(c.written + c.merged == 250);
  CHECK(c.pending == 350);
  CHECK(r->state == "incomplete");
  RunOptions rest;
  auto r2 = (*mig)->run(rest);
  REQUIRE(r2.is_ok());
  CHECK(counts_of(*r2, "companies").written == 560);
  CHECK(counts_of(*r2, "companies").merged == 40);
  CHECK(counts_of(*r2, "contacts").written == 3716);
}

TEST_CASE("non-retryable rejections above the threshold halt the run until acknowledged") {
  Scenario sc;
  auto dest = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/destination"));
  REQUIRE(dest.is_ok());
  auto rejecting = std::make_shared<RejectingDestination>(*dest, "deals");
  auto mig = Migration::open(sc.config(), nullptr, rejecting);
  REQUIRE(mig.is_ok());
  std::vector<Alert> alerts;
  (*mig)->set_alert_callback([&](const Alert& a) { alerts.push_back(a); });
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  RunOptions ro;
  auto r = (*mig)->run(ro);
  REQUIRE(r.is_ok());
  CHECK(r->state == "halted");
  REQUIRE(!alerts.empty());
  CHECK(alerts.back().kind == "halt");
  const auto& d = counts_of(*r, "deals");
  CHECK(d.written == 0);
  CHECK(d.queued > 0);
  CHECK(d.pending > 0);          // the untouched remainder is kept
  CHECK(counts_of(*r, "notes").source == 0);  // later objects were not started
  {
    // A deal rejected at write time keeps the create plan it was sent under, stored although its
    // planned status (from which the plan was derived) is replaced by "queued".
    QueueFilter rf;
    rf.reason = "rejected_by_destination";
    auto items = (*mig)->queue_list(rf);
    REQUIRE(items.is_ok());
    REQUIRE(!items->empty());
    for (const auto& item : *items) {
      const std::string sid(item.at("source_id").as_string());
      json::value plan;
      REQUIRE((*mig)->state_env().read([&](store::Txn& t) -> Status {
        CMG_ASSIGN_OR_RETURN(auto v, t.get("plans", store::key_of({"deals", sid})));
        if (v) plan = json::parse(*v);
        return Status::ok();
      }).is_ok());
      INFO(sid);
      REQUIRE(plan.is_object());
      CHECK(plan.at("action") == "create");
      CHECK(plan.at("members") == json::array{json::string(sid)});
      CHECK(plan.at("stages").as_object().size() == 4);
    }
  }
  auto still = (*mig)->run(ro);
  REQUIRE(still.is_ok());
  CHECK(still->state == "halted");

  rejecting->reject = false;
  RunOptions ack;
  ack.ack_halt = true;
  ack.reviewer = "Avery";
  auto resumed = (*mig)->run(ack);
  REQUIRE(resumed.is_ok());
  CHECK(resumed->state == "incomplete");
  CHECK(counts_of(*resumed, "deals").pending == 0);
  CHECK(counts_of(*resumed, "notes").pending == 0);
  QueueFilter f;
  f.reason = "rejected_by_destination";
  auto rejected = (*mig)->queue_list(f);
  REQUIRE(rejected.is_ok());
  CHECK(static_cast<std::int64_t>(rejected->size()) == d.queued - 160);
}

TEST_CASE("a state that starts with a tiny map grows it and reaches the same outcome") {
  Scenario sc;
  auto mig = Migration::open(sc.config(), nullptr, nullptr, 256 * 1024);
  REQUIRE(mig.is_ok());
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  RunOptions ro;
  auto r = (*mig)->run(ro);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(counts_of(*r, "contacts").written == 3716);
  CHECK(counts_of(*r, "contacts").merged == 450);
  CHECK(counts_of(*r, "notes").written == 5721);
  QueueFilter f;
  f.reason = "owner_unprovisioned";
  auto fixed = (*mig)->queue_fix(f, json::object{{"hubspot_owner_id", sc.manifest.reassign_owner_id}}, "Sam", "");
  REQUIRE(fixed.is_ok());
  CHECK(*fixed == 34);
}
