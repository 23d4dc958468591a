#include "crmmigrate/core/validate.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <boost/json.hpp>

namespace json = boost::json;
using cmg::FieldType;
using cmg::Reason;

namespace {

cmg::FieldSchema field(const char* name, FieldType t) {
  cmg::FieldSchema f;
  f.name = name;
  f.type = t;
  return f;
}

const cmg::Schema& schema() {
  static const cmg::Schema s = [] {
    cmg::Schema d;
    cmg::ObjectSchema deals{"deals", {}, ""};
    auto name = field("dealname", FieldType::kString);
    name.required = true;
    auto pipeline = field("pipeline", FieldType::kEnum);
    pipeline.required = true;
    pipeline.options = {{"default", "Sales Pipeline"}, {"partnerships", "Partnerships"}};
    auto stage = field("dealstage", FieldType::kEnum);
    stage.required = true;
    stage.options_by = "pipeline";
    stage.options_by_value["default"] = {{"appointmentscheduled", "Appointment Scheduled"},
                                         {"contractsent", "Contract Sent"},
                                         {"closedwon", "Closed Won"}};
    stage.options_by_value["partnerships"] = {{"partner_lead", "Partner Lead"}, {"partner_contract", "Partner Contract"}};
    auto created = field("hs_createdate", FieldType::kDateTime);
    created.read_only = true;
    created.required = true;  // system-managed: never reported missing
    auto owner = field("hubspot_owner_id", FieldType::kReference);
    owner.references = "owners";
    auto company = field("associations.companies", FieldType::kReference);
    company.references = "companies";
    deals.fields = {name,
                    pipeline,
                    stage,
                    field("amount", FieldType::kNumber),
                    field("seats", FieldType::kInteger),
                    field("closedate", FieldType::kDate),
                    field("won_at", FieldType::kDateTime),
                    field("is_priority", FieldType::kBool),
                    created,
                    owner,
                    company};
    d.objects["deals"] = deals;

    cmg::ObjectSchema contacts{"contacts", {}, ""};
    auto code = field("code", FieldType::kString);
    code.max_length = 3;
    contacts.fields = {field("email", FieldType::kEmail), code};
    d.objects["contacts"] = contacts;

    d.users = {{"u1", "morgan@example.com", "Morgan Blake", true}};
    return d;
  }();
  return s;
}

std::vector<cmg::Problem> validate(const char* object, const json::object& fields, bool is_create = true) {
  cmg::SchemaValidator v;
  std::vector<cmg::Problem> problems;
  const auto* o = schema().object(object);
  REQUIRE(o != nullptr);
  v.validate(*o, schema(), fields, is_create, problems);
  return problems;
}

json::object valid_deal() {
  return {{"dealname", "Big"}, {"pipeline", "default"}, {"dealstage", "contractsent"}};
}

const cmg::Problem* problem_on(const std::vector<cmg::Problem>& ps, const std::string& f) {
  for (const auto& p : ps)
    if (p.field == f) return &p;
  return nullptr;
}

}  // namespace

TEST_CASE("a valid record has no problems") {
  auto fields = valid_deal();
  fields["amount"] = 12.5;
  fields["seats"] = 3;
  fields["closedate"] = "2024-05-01";
  fields["won_at"] = "2024-05-01T10:00:00.000Z";
  fields["is_priority"] = true;
  fields["hubspot_owner_id"] = "u1";
  fields["associations.companies"] = "D-100";
  CHECK(validate("deals", fields).empty());
}

TEST_CASE("required fields missing on create are missing_required problems") {
  auto ps = validate("deals", {{"pipeline", "default"}, {"dealname", "  "}});
  REQUIRE(ps.size() == 2);
  const auto* name = problem_on(ps, "dealname");
  REQUIRE(name != nullptr);
  CHECK(name->reason == Reason::kMissingRequired);
  CHECK(name->value.empty());
  CHECK(name->rule == "required");
  CHECK(name->message == "required field 'dealname' has no value");
  CHECK(name->suggestion == "map a source field to it or add a default in the object's \"defaults\"");
  const auto* stage = problem_on(ps, "dealstage");
  REQUIRE(stage != nullptr);
  CHECK(stage->reason == Reason::kMissingRequired);
  CHECK(problem_on(ps, "hs_createdate") == nullptr);  // read-only: the destination sets it
}

TEST_CASE("required fields are not checked on update") {
  CHECK(validate("deals", {{"amount", 5}}, false).empty());
  CHECK(validate("deals", json::object{}, false).empty());
}

TEST_CASE("a picklist value is checked against the options of its controlling value") {
  CHECK(validate("deals", valid_deal()).empty());

  auto fields = valid_deal();
  fields["pipeline"] = "partnerships";
  auto ps = validate("deals", fields);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].reason == Reason::kInvalidValue);
  CHECK(ps[0].field == "dealstage");
  CHECK(ps[0].value == "contractsent");
  CHECK(ps[0].rule == "picklist");
  CHECK(ps[0].message == "'contractsent' is not an option of 'dealstage' for pipeline 'partnerships'");
  CHECK(ps[0].suggestion.empty());  // no partnerships stage is close to it
}

TEST_CASE("a picklist typo gets the closest option as value and label") {
  auto fields = valid_deal();
  fields["dealstage"] = "contractsnt";
  auto ps = validate("deals", fields);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].reason == Reason::kInvalidValue);
  CHECK(ps[0].field == "dealstage");
  CHECK(ps[0].value == "contractsnt");
  CHECK(ps[0].rule == "picklist");
  CHECK(ps[0].message == "'contractsnt' is not an option of 'dealstage' for pipeline 'default'");
  CHECK(ps[0].suggestion == "contractsent (Contract Sent)");

  // A value typed like the label gets the same form of suggestion.
  fields["dealstage"] = "Contract Snt";
  ps = validate("deals", fields);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].suggestion == "contractsent (Contract Sent)");

  // Nothing close: no suggestion.
  fields["dealstage"] = "zzzzzzzzzzzzzzzzzzzz";
  ps = validate("deals", fields);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].suggestion.empty());
}

TEST_CASE("a picklist without options_by is checked against its options") {
  auto fields = valid_deal();
  fields["pipeline"] = "sales";
  auto ps = validate("deals", fields);
  const auto* p = problem_on(ps, "pipeline");
  REQUIRE(p != nullptr);
  CHECK(p->reason == Reason::kInvalidValue);
  CHECK(p->rule == "picklist");
  CHECK(p->value == "sales");
  CHECK(p->message == "'sales' is not an option of 'pipeline'");
  // The dependent stage is not reported again for an invalid controlling value.
  CHECK(problem_on(ps, "dealstage") == nullptr);
}

TEST_CASE("a dependent picklist without its controlling value is a problem on create") {
  auto ps = validate("deals", {{"dealname", "Big"}, {"dealstage", "contractsent"}});
  const auto* p = problem_on(ps, "dealstage");
  REQUIRE(p != nullptr);
  CHECK(p->reason == Reason::kInvalidValue);
  CHECK(p->rule == "picklist");
  CHECK(p->message == "'dealstage' depends on 'pipeline', which has no value");
  CHECK(problem_on(ps, "pipeline") != nullptr);  // missing_required
}

TEST_CASE("an invalid email is an invalid_value problem") {
  auto ps = validate("contacts", {{"email", "ada@example"}});
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].reason == Reason::kInvalidValue);
  CHECK(ps[0].field == "email");
  CHECK(ps[0].value == "ada@example");
  CHECK(ps[0].rule == "email");
  CHECK(ps[0].message == "'ada@example' is not a valid email address");
  CHECK(validate("contacts", {{"email", "ada@example.com"}}).empty());
}

TEST_CASE("max_length counts code points, not bytes") {
  CHECK(validate("contacts", {{"code", "\xC3\xA9\xC3\xA9\xC3\xA9"}}).empty());  // "ééé": 6 bytes, 3 code points
  CHECK(validate("contacts", {{"code", "abc"}}).empty());
  auto ps = validate("contacts", {{"code", "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"}});
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].reason == Reason::kInvalidValue);
  CHECK(ps[0].field == "code");
  CHECK(ps[0].value == "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");
  CHECK(ps[0].rule == "max_length:3");
  CHECK(ps[0].message == "longer than 3 characters");
}

TEST_CASE("a field the destination does not have is an unknown_field problem") {
  auto fields = valid_deal();
  fields["bogus"] = "x";
  auto ps = validate("deals", fields);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].reason == Reason::kInvalidValue);
  CHECK(ps[0].field == "bogus");
  CHECK(ps[0].value == "x");
  CHECK(ps[0].rule == "unknown_field");
  CHECK(ps[0].message == "'bogus' is not a field of deals");
}

TEST_CASE("a value for a read-only field is a read_only problem") {
  auto fields = valid_deal();
  fields["hs_createdate"] = "2024-05-01T10:00:00.000Z";
  auto ps = validate("deals", fields);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].reason == Reason::kInvalidValue);
  CHECK(ps[0].field == "hs_createdate");
  CHECK(ps[0].value == "2024-05-01T10:00:00.000Z");
  CHECK(ps[0].rule == "read_only");
  CHECK(ps[0].message == "'hs_createdate' is read-only in the destination");
}

TEST_CASE("an owner reference to a non-user is owner_unprovisioned") {
  auto fields = valid_deal();
  fields["hubspot_owner_id"] = "u404";
  auto ps = validate("deals", fields);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].reason == Reason::kOwnerUnprovisioned);
  CHECK(ps[0].field == "hubspot_owner_id");
  CHECK(ps[0].value == "u404");
  CHECK(ps[0].rule == "owner");
  CHECK(ps[0].message == "'u404' is not a user of the destination");
}

TEST_CASE("values of the wrong type are type problems naming the type") {
  auto fields = valid_deal();
  fields["amount"] = "abc";
  fields["seats"] = "2.5";
  fields["closedate"] = "2024-02-30";
  fields["won_at"] = "yesterday";
  fields["is_priority"] = "perhaps";
  auto ps = validate("deals", fields);
  REQUIRE(ps.size() == 5);
  struct Want {
    const char* field;
    const char* value;
    const char* rule;
  };
  for (const Want& w : {Want{"amount", "abc", "type:number"}, Want{"seats", "2.5", "type:integer"},
                        Want{"closedate", "2024-02-30", "type:date"}, Want{"won_at", "yesterday", "type:datetime"},
                        Want{"is_priority", "perhaps", "type:bool"}}) {
    CAPTURE(w.field);
    const auto* p = problem_on(ps, w.field);
    REQUIRE(p != nullptr);
    CHECK(p->reason == Reason::kInvalidValue);
    CHECK(p->value == w.value);
    CHECK(p->rule == w.rule);
    CHECK(p->message == std::string("'") + w.value + "' is not a valid " + (w.rule + 5));
  }

  // A date must be given as text, not as a number.
  auto numeric_date = valid_deal();
  numeric_date["closedate"] = 1714557600000;
  ps = validate("deals", numeric_date);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].rule == "type:date");
  CHECK(ps[0].value == "1714557600000");
}

TEST_CASE("each field is checked against its own schema whatever the order of fields and objects") {
  // The validator tries the schema position of the previous record's field at the same place
  // first: records of two objects, and fields in changing orders, must still meet their own rules.
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    auto too_long = validate("contacts", {{"code", "ABCD"}, {"email", "a@example.com"}});
    REQUIRE(too_long.size() == 1);
    CHECK(too_long[0].field == "code");
    CHECK(too_long[0].rule == "max_length:3");
    auto swapped = validate("contacts", {{"email", "not an email"}, {"code", "AB"}});
    REQUIRE(swapped.size() == 1);
    CHECK(swapped[0].field == "email");
    // "code" is at the place where the deals record has "seats": no max length there.
    auto deal = valid_deal();
    deal["seats"] = "x";
    auto deal_problems = validate("deals", deal);
    REQUIRE(deal_problems.size() == 1);
    CHECK(deal_problems[0].field == "seats");
    auto unknown = validate("contacts", {{"dealname", "Big"}, {"code", "AB"}});
    REQUIRE(unknown.size() == 1);
    CHECK(unknown[0].field == "dealname");
    CHECK(unknown[0].rule == "unknown_field");
  }
}
