#include <doctest/doctest.h>

#include "scenario_util.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

// Refuses any HTML in a contact's last name: the kind of house rule an embedder adds.
class NoHtmlValidator final : public RecordValidator {
 public:
  void validate(const ObjectSchema&, const Schema&, const json::object& fields, bool,
                std::vector<Problem>& problems) const override {
    const auto* v = fields.if_contains("lastname");
    if (v && value_to_text(*v).find('<') != std::string::npos)
      problems.push_back({Reason::kInvalidValue, "lastname", value_to_text(*v), "custom:no_html",
                          "HTML is not allowed in names", "remove the markup"});
  }
};

// Never merges automatically: every match goes to a person.
class AlwaysAsk final : public MergeRule {
 public:
  std::string name() const override { return "always_ask"; }
  Status merge(const MergeInput& in, MergeOutcome* out) const override {
    out->kind = MergeOutcome::Kind::kConflict;
    out->reason = "policy: a person reviews every match";
    out->conflicts.push_back({"email", in.source.fields.contains("email") ? in.source.fields.at("email") : nullptr,
                              in.destination.fields.contains("email") ? in.destination.fields.at("email") : nullptr});
    return Status::ok();
  }
};

// A phone normaliser that accepts nothing: phone numbers stop linking records.
class NoPhones final : public Normalizer {
 public:
  std::optional<std::string> normalize(std::string_view) const override { return std::nullopt; }
};

std::int64_t count_reason(Migration& m, const std::string& object, const std::string& reason) {
  QueueFilter f;
  f.object = object;
  f.reason = reason;
  auto items = m.queue_list(f);
  REQUIRE(items.is_ok());
  return static_cast<std::int64_t>(items->size());
}

}  // namespace

TEST_CASE("a registered validator, merge rule and normalizer change the decisions they own") {
  Scenario sc;
  auto mig = Migration::open(sc.config());
  REQUIRE(mig.is_ok());
  Migration& m = **mig;
  CHECK(m.set_merge_rule("nope", std::make_shared<AlwaysAsk>()).code() == Code::kNotFound);
  CHECK(m.set_normalizer("contacts", "fax", std::make_shared<NoPhones>()).code() == Code::kNotFound);
  REQUIRE(m.add_validator("contacts", std::make_shared<NoHtmlValidator>()).is_ok());
  REQUIRE(m.set_merge_rule("contacts", std::make_shared<AlwaysAsk>()).is_ok());
  REQUIRE(m.set_normalizer("contacts", "phone", std::make_shared<NoPhones>()).is_ok());
  REQUIRE(m.plan(true, "Avery").is_ok());
  auto r = m.run(RunOptions{});
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  const auto& c = counts_of(*r, "contacts");
  // Without phone keys, the 30 phone-only duplicates and the 50 phone-only matches stay apart;
  // the 250 email matches with the destination all go to a person (AlwaysAsk).
  CHECK(count_reason(m, "contacts", "merge_conflict") == 250);
  CHECK(count_reason(m, "contacts", "invalid_value") == 1);
  CHECK(c.merged == 120);
  CHECK(c.written == 3716 + 30 + 50 - 1);
  CHECK(c.queued == 34 + 250 + 1);
  QueueFilter f;
  f.id = "contacts/" + sc.manifest.script_person_id;
  auto item = m.queue_list(f);
  REQUIRE(item.is_ok());
  REQUIRE(item->size() == 1);
  CHECK(item->front().at("problems").at(0).at("rule").as_string() == "custom:no_html");
}
