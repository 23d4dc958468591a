#include "crmmigrate/core/mapping.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <boost/json.hpp>

namespace json = boost::json;
using cmg::FieldType;
using cmg::Reason;

namespace {

const char* const kConfig = R"({
  "name": "mapping-test",
  "source": {"connector": "sandbox"},
  "destination": {"connector": "sandbox"},
  "owners": {"match": ["email", "name"], "overrides": {"alex@x.com": "u9"}},
  "objects": [
    {"name": "companies", "source": "organizations", "destination": "companies",
     "fields": {"name": "name"}, "dedup": "none"},
    {"name": "contacts", "source": "persons", "destination": "contacts",
     "fields": {
       "first_name": "firstname",
       "email": {"to": "email", "pick": "primary"},
       "owner_id": {"to": "hubspot_owner_id", "owner": true},
       "org_id": {"to": "associations.companies", "parent": "companies"},
       "score": "score",
       "vip": "vip",
       "born": "birthdate",
       "seen": "last_seen",
       "lifecycle": {"to": "lifecyclestage", "default": "lead"},
       "country": "country"
     },
     "drop": ["visible_to", "label"],
     "defaults": {"country": "US"},
     "dedup": {"keys": ["external_id", "email"]}},
    {"name": "deals", "source": "deals", "destination": "deals",
     "fields": {"title": "dealname", "stage_id": {"translate": "stage"}, "pipeline_id": {"translate": "stage"}},
     "translations": {"stage": {"from": ["pipeline_id", "stage_id"], "to": ["pipeline", "dealstage"],
                                "table": {"1/3": ["default", "presentationscheduled"],
                                          "2/6": ["partnerships", "partner_lead"]}}},
     "dedup": {"keys": ["external_id"]}},
    {"name": "deals_fallback", "source": "deals", "destination": "deals",
     "fields": {"title": "dealname", "stage_id": {"translate": "stage"}},
     "translations": {"stage": {"from": ["pipeline_id", "stage_id"], "to": ["pipeline", "dealstage"],
                                "table": {"1/3": ["default", "presentationscheduled"]},
                                "otherwise": "default", "fallback": ["default", "appointmentscheduled"]}},
     "dedup": "none"},
    {"name": "activities", "source": "activities",
     "destination": {"by": "type", "map": {"call": "calls", "meeting": "meetings"}},
     "fields": {"subject": {"to": {"calls": "hs_call_title", "meetings": "hs_meeting_title"}},
                "duration": {"to": {"calls": "hs_call_duration"}},
                "due": "hs_timestamp"},
     "drop": ["type"],
     "dedup": "none"}
  ]
})";

const cmg::MigrationConfig& config() {
  static const cmg::MigrationConfig cfg = [] {
    auto r = cmg::parse_config(kConfig, "mapping_test.json", "/tmp");
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    return std::move(r).value();
  }();
  return cfg;
}

const cmg::ObjectConfig& object(const char* name) {
  const auto* o = config().object(name);
  REQUIRE(o != nullptr);
  return *o;
}

cmg::FieldSchema field(const char* name, FieldType t) {
  cmg::FieldSchema f;
  f.name = name;
  f.type = t;
  return f;
}

cmg::FieldSchema enum_field(const char* name, std::vector<cmg::Option> options) {
  auto f = field(name, FieldType::kEnum);
  f.options = std::move(options);
  return f;
}

const cmg::Schema& destination() {
  static const cmg::Schema s = [] {
    cmg::Schema d;
    cmg::ObjectSchema contacts{"contacts", {}, ""};
    contacts.fields = {field("firstname", FieldType::kString),
                       field("email", FieldType::kEmail),
                       field("hubspot_owner_id", FieldType::kReference),
                       field("associations.companies", FieldType::kReference),
                       field("score", FieldType::kNumber),
                       field("vip", FieldType::kBool),
                       field("birthdate", FieldType::kDate),
                       field("last_seen", FieldType::kDateTime),
                       enum_field("lifecyclestage", {{"lead", "Lead"}, {"subscriber", "Subscriber"}}),
                       field("country", FieldType::kString)};
    d.objects["contacts"] = contacts;

    cmg::ObjectSchema deals{"deals", {}, ""};
    auto stage = field("dealstage", FieldType::kEnum);
    stage.options_by = "pipeline";
    stage.options_by_value["default"] = {{"appointmentscheduled", "Appointment Scheduled"},
                                         {"presentationscheduled", "Presentation Scheduled"}};
    stage.options_by_value["partnerships"] = {{"partner_lead", "Partner Lead"},
                                              {"partner_paused", "Partner On Hold"}};
    deals.fields = {field("dealname", FieldType::kString),
                    enum_field("pipeline", {{"default", "Sales Pipeline"}, {"partnerships", "Partnerships"}}), stage};
    d.objects["deals"] = deals;

    cmg::ObjectSchema calls{"calls", {}, ""};
    calls.fields = {field("hs_call_title", FieldType::kString), field("hs_call_duration", FieldType::kInteger),
                    field("hs_timestamp", FieldType::kDateTime)};
    d.objects["calls"] = calls;
    cmg::ObjectSchema meetings{"meetings", {}, ""};
    meetings.fields = {field("hs_meeting_title", FieldType::kString), field("hs_timestamp", FieldType::kDateTime)};
    d.objects["meetings"] = meetings;

    d.users = {{"u1", "morgan@example.com", "M. Blake", true},
               {"u2", "sam@new.example.com", "Sam Lee", true},
               {"u3", "alex@x.com", "Alex Kim", true}};
    return d;
  }();
  return s;
}

// Pipedrive's deals: stage_id's options depend on pipeline_id.
const cmg::ObjectSchema& source_deals() {
  static const cmg::ObjectSchema s = [] {
    cmg::ObjectSchema o{"deals", {}, ""};
    auto stage = field("stage_id", FieldType::kEnum);
    stage.options_by = "pipeline_id";
    stage.options_by_value["1"] = {{"3", "Presentation"}};
    stage.options_by_value["2"] = {{"6", "Partner Lead"}, {"9", "On Hold"}};
    o.fields = {field("title", FieldType::kString), field("pipeline_id", FieldType::kInteger), stage};
    return o;
  }();
  return s;
}

std::vector<cmg::User> source_users() {
  return {{"7", "Morgan@Example.com", "Morgan Blake", true},
          {"8", "sam@old.example.com", "Sam Lee", true},
          {"9", "nobody@x.com", "No Body", true},
          {"10", "alex@x.com", "Alex Kim", true}};
}

const cmg::OwnerResolver& owners() {
  static const cmg::OwnerResolver r(source_users(), destination().users, config().owners);
  return r;
}

cmg::ParentState parent_state(const std::string& object, const std::string& id) {
  cmg::ParentState s;
  if (object != "companies") return s;
  if (id == "c1") {
    s.kind = cmg::ParentState::Kind::kConfirmed;
    s.destination_id = "D-100";
  } else if (id == "c2") {
    s.kind = cmg::ParentState::Kind::kQueued;
  } else if (id == "c4") {
    s.kind = cmg::ParentState::Kind::kPending;
  }
  return s;  // c3 and anything else: absent from the source
}

cmg::MappedRecord map(const char* object_name, json::object fields, json::object corrections = {},
                      const cmg::ObjectSchema* source_object = nullptr) {
  cmg::Mapper m(object(object_name), destination(), source_object, owners());
  cmg::Record r{object(object_name).source, "r1", std::move(fields), 0};
  return m.map(r, corrections, parent_state);
}

cmg::MappedRecord map_in(json::storage_ptr sp, const char* object_name, json::object fields, json::object corrections = {}) {
  cmg::Mapper m(object(object_name), destination(), nullptr, owners());
  cmg::Record r{object(object_name).source, "r1", std::move(fields), 0};
  return m.map(r, corrections, parent_state, std::move(sp));
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("a plain field mapping copies the value to the destination field") {
  auto m = map("contacts", {{"first_name", "Ada"}, {"country", "FR"}});
  CHECK(m.destination_object == "contacts");
  CHECK(m.problems.empty());
  CHECK(m.fields.at("firstname").as_string() == "Ada");
  CHECK(m.fields.at("country").as_string() == "FR");
  CHECK_FALSE(m.fields.contains("first_name"));
}

TEST_CASE("pick primary takes the primary value of a Pipedrive list") {
  json::array emails{json::object{{"value", "a@x.com"}, {"primary", false}},
                     json::object{{"value", "b@x.com"}, {"primary", true}}};
  auto m = map("contacts", {{"email", emails}});
  CHECK(m.problems.empty());
  CHECK(m.fields.at("email").as_string() == "b@x.com");

  // Without a primary entry, the first non-blank value.
  json::array no_primary{json::object{{"value", ""}, {"primary", false}},
                         json::object{{"value", "c@x.com"}, {"primary", false}}};
  CHECK(map("contacts", {{"email", no_primary}}).fields.at("email").as_string() == "c@x.com");
}

TEST_CASE("a two-key translation table hit sets every destination field and records the translation") {
  auto m = map("deals", {{"title", "Big deal"}, {"pipeline_id", 2}, {"stage_id", 6}}, {}, &source_deals());
  CHECK(m.problems.empty());
  CHECK(m.fields.at("pipeline").as_string() == "partnerships");
  CHECK(m.fields.at("dealstage").as_string() == "partner_lead");
  CHECK(m.fields.at("dealname").as_string() == "Big deal");
  CHECK(m.translations == std::vector<std::string>{"stage: 2/6 → partnerships/partner_lead"});
  // The source fields feeding the table are not copied under their own names.
  CHECK_FALSE(m.fields.contains("stage_id"));
  CHECK_FALSE(m.fields.contains("pipeline_id"));
}

TEST_CASE("a translation table miss is an unmapped_value problem on the last destination field") {
  auto m = map("deals", {{"title", "Stalled"}, {"pipeline_id", 2}, {"stage_id", 9}}, {}, &source_deals());
  REQUIRE(m.problems.size() == 1);
  const auto& p = m.problems.front();
  CHECK(p.reason == Reason::kUnmappedValue);
  CHECK(p.field == "dealstage");
  CHECK(p.value == "2/9 (On Hold)");
  CHECK(p.rule == "translation:stage");
  CHECK(p.message == "no row for '2/9' in translation table 'stage'");
  CHECK(p.suggestion == "partner_paused (Partner On Hold)");
  CHECK_FALSE(m.fields.contains("pipeline"));
  CHECK_FALSE(m.fields.contains("dealstage"));
  CHECK(m.translations.empty());

  // Without the source schema there is no label to show.
  auto bare = map("deals", {{"pipeline_id", 2}, {"stage_id", 9}});
  REQUIRE(bare.problems.size() == 1);
  CHECK(bare.problems.front().value == "2/9");
}

TEST_CASE("otherwise default uses the fallback row when no row matches") {
  auto m = map("deals_fallback", {{"pipeline_id", 2}, {"stage_id", 9}}, {}, &source_deals());
  CHECK(m.problems.empty());
  CHECK(m.fields.at("pipeline").as_string() == "default");
  CHECK(m.fields.at("dealstage").as_string() == "appointmentscheduled");
  CHECK(m.translations == std::vector<std::string>{"stage: 2/9 → default/appointmentscheduled"});

  auto hit = map("deals_fallback", {{"pipeline_id", "1"}, {"stage_id", "3"}});
  CHECK(hit.fields.at("dealstage").as_string() == "presentationscheduled");
}

TEST_CASE("defaults apply only to blank values and are recorded") {
  auto blank = map("contacts", {{"first_name", "Ada"}, {"lifecycle", ""}});
  CHECK(blank.problems.empty());
  CHECK(blank.fields.at("lifecyclestage").as_string() == "lead");  // the field's own default
  CHECK(blank.fields.at("country").as_string() == "US");           // the object's default
  CHECK(contains(blank.defaults, "lifecyclestage = \"lead\""));
  CHECK(contains(blank.defaults, "country = \"US\""));
  CHECK(blank.defaults.size() == 2);

  auto set = map("contacts", {{"first_name", "Ada"}, {"lifecycle", "subscriber"}, {"country", "FR"}});
  CHECK(set.fields.at("lifecyclestage").as_string() == "subscriber");
  CHECK(set.fields.at("country").as_string() == "FR");
  CHECK(set.defaults.empty());

  auto whitespace = map("contacts", {{"country", "  "}});
  CHECK(whitespace.fields.at("country").as_string() == "US");
  CHECK(contains(whitespace.defaults, "country = \"US\""));
}

TEST_CASE("coerce_value converts text to the destination's types") {
  auto n = cmg::coerce_value(json::value("1,234.50"), FieldType::kNumber);
  REQUIRE(n);
  REQUIRE(n->is_double());
  CHECK(n->get_double() == doctest::Approx(1234.5));
  CHECK(cmg::coerce_value(json::value(42), FieldType::kNumber) == json::value(42));
  CHECK(cmg::coerce_value(json::value("12"), FieldType::kInteger) == json::value(12));
  CHECK_FALSE(cmg::coerce_value(json::value("1.5"), FieldType::kInteger));
  CHECK_FALSE(cmg::coerce_value(json::value(1.5), FieldType::kInteger));

  CHECK(cmg::coerce_value(json::value("yes"), FieldType::kBool) == json::value(true));
  CHECK(cmg::coerce_value(json::value("No"), FieldType::kBool) == json::value(false));
  CHECK(cmg::coerce_value(json::value(1), FieldType::kBool) == json::value(true));
  CHECK_FALSE(cmg::coerce_value(json::value("maybe"), FieldType::kBool));

  CHECK(cmg::coerce_value(json::value("2024-05-01 10:00:00"), FieldType::kDateTime) ==
        json::value("2024-05-01T10:00:00.000Z"));
  CHECK(cmg::coerce_value(json::value("2024-05-01 10:00:00"), FieldType::kDate) == json::value("2024-05-01"));
  CHECK(cmg::coerce_value(json::value("2024-05-01"), FieldType::kDate) == json::value("2024-05-01"));
  CHECK(cmg::coerce_value(json::value(1714557600000), FieldType::kDateTime) == json::value("2024-05-01T10:00:00.000Z"));
  CHECK_FALSE(cmg::coerce_value(json::value("2024-13-01"), FieldType::kDate));

  CHECK(cmg::coerce_value(json::array{"a", "", "b"}, FieldType::kEnum) == json::value("a;b"));
  CHECK(cmg::coerce_value(json::value(" a@x.com "), FieldType::kEmail) == json::value("a@x.com"));
  CHECK(cmg::coerce_value(json::value(7), FieldType::kString) == json::value("7"));

  CHECK_FALSE(cmg::coerce_value(json::value("abc"), FieldType::kNumber));
  CHECK(cmg::coerce_value(json::value("  "), FieldType::kNumber) == json::value(nullptr));
  CHECK(cmg::coerce_value(json::value(nullptr), FieldType::kDate) == json::value(nullptr));
}

TEST_CASE("coerce_value into a given storage gives the default storage's values, allocated there") {
  json::monotonic_resource arena;
  json::storage_ptr sp(&arena);
  const std::vector<std::pair<json::value, FieldType>> cases = {
      {json::value("1,234.50"), FieldType::kNumber},      {json::value("12"), FieldType::kInteger},
      {json::value("yes"), FieldType::kBool},             {json::value("2024-05-01 10:00:00"), FieldType::kDateTime},
      {json::value("2024-05-01"), FieldType::kDate},      {json::array{"a", "", "b"}, FieldType::kEnum},
      {json::value("appointmentscheduled"), FieldType::kEnum},
      {json::value("\t a.long.address@example.com \n"), FieldType::kEmail},
      {json::value("x@y.z"), FieldType::kEmail},          {json::value(7), FieldType::kString},
      {json::value("a name longer than the small buffer"), FieldType::kString},
      {json::value("+1 (415) 555-0100"), FieldType::kPhone}, {json::value("abc"), FieldType::kNumber},
      {json::value("  "), FieldType::kEmail},             {json::value(nullptr), FieldType::kDate}};
  for (const auto& [v, type] : cases) {
    CAPTURE(json::serialize(v));
    CAPTURE(cmg::field_type_name(type));
    auto plain = cmg::coerce_value(v, type);
    auto placed = cmg::coerce_value(v, type, sp);
    REQUIRE(plain.has_value() == placed.has_value());
    if (!placed) continue;
    CHECK(*placed == *plain);
    CHECK(*placed->storage() == *sp);
  }
  CHECK(*cmg::coerce_value(json::value("\t a.long.address@example.com \n"), FieldType::kEmail, sp) ==
        json::value("a.long.address@example.com"));
}

TEST_CASE("the mapper coerces values to the destination field types") {
  auto m = map("contacts", {{"score", "1,234.50"}, {"vip", "yes"}, {"born", "2024-05-01"}, {"seen", "2024-05-01 10:00:00"}});
  CHECK(m.problems.empty());
  CHECK(m.fields.at("score").as_double() == doctest::Approx(1234.5));
  CHECK(m.fields.at("vip") == json::value(true));
  CHECK(m.fields.at("birthdate").as_string() == "2024-05-01");
  CHECK(m.fields.at("last_seen").as_string() == "2024-05-01T10:00:00.000Z");
}

TEST_CASE("a value that cannot be coerced is an invalid_value problem naming the type") {
  auto m = map("contacts", {{"first_name", "Ada"}, {"score", "abc"}});
  REQUIRE(m.problems.size() == 1);
  const auto& p = m.problems.front();
  CHECK(p.reason == Reason::kInvalidValue);
  CHECK(p.field == "score");
  CHECK(p.value == "abc");
  CHECK(p.rule == "type:number");
  CHECK(p.message == "'abc' is not a valid number");
  CHECK_FALSE(m.fields.contains("score"));
  CHECK(m.fields.at("firstname").as_string() == "Ada");
}

TEST_CASE("owners resolve by source user id then email case-insensitively then name") {
  const auto& o = owners();
  auto by_email = o.resolve("7");  // Morgan@Example.com → u1 (morgan@example.com)
  REQUIRE(by_email.user_id);
  CHECK(*by_email.user_id == "u1");
  CHECK(by_email.matched_by == "email");
  CHECK(by_email.source_label == "Morgan Blake <Morgan@Example.com>");

  auto by_name = o.resolve("8");  // email differs, name "Sam Lee" matches u2
  REQUIRE(by_name.user_id);
  CHECK(*by_name.user_id == "u2");
  CHECK(by_name.matched_by == "name");

  auto value_is_email = o.resolve("MORGAN@EXAMPLE.COM");
  REQUIRE(value_is_email.user_id);
  CHECK(*value_is_email.user_id == "u1");

  auto value_is_name = o.resolve("sam lee");
  REQUIRE(value_is_name.user_id);
  CHECK(*value_is_name.user_id == "u2");

  auto unknown = o.resolve("9");
  CHECK_FALSE(unknown.user_id);
  CHECK(unknown.source_label == "No Body <nobody@x.com>");
}

TEST_CASE("owner overrides win over email and name matches") {
  auto r = owners().resolve("10");  // alex@x.com would match u3 by email; the override says u9
  REQUIRE(r.user_id);
  CHECK(*r.user_id == "u9");
  CHECK(r.matched_by == "override");

  cmg::OwnersConfig by_name_first;
  by_name_first.match = {"name"};
  cmg::OwnerResolver name_only(source_users(), destination().users, by_name_first);
  CHECK_FALSE(name_only.resolve("7").user_id);  // "Morgan Blake" ≠ "M. Blake"; email matching is off
  auto all = name_only.all();
  REQUIRE(all.size() == 4);
  CHECK(all[1].first.id == "8");
  CHECK(all[1].second.user_id == std::optional<std::string>("u2"));
}

TEST_CASE("resolve_user_id gives resolve()'s user id for known, new, repeated and unresolved values") {
  // Source users by id, email and name; values no source user has (resolved, then cached); a
  // value with no destination user; an override.
  for (const char* v : {"7", "8", "Morgan@Example.com", "Sam Lee", "9", "10", "alex@x.com", "ALEX@x.com",
                        "sam@new.example.com", "stranger@nowhere.example", "ALEX@x.com", "", "u1"}) {
    CAPTURE(v);
    const auto want = owners().resolve(v).user_id;
    std::string got = "stale";
    const bool resolved = owners().resolve_user_id(v, got);
    CHECK(resolved == want.has_value());
    if (want) CHECK(got == *want);
  }
  std::string id;
  CHECK(owners().resolve_user_id("alex@x.com", id));
  CHECK(id == "u9");  // Alex Kim (source user 10): the override wins over the email match
  CHECK_FALSE(owners().resolve_user_id("9", id));  // nobody@x.com has no destination account
}

TEST_CASE("the mapper writes the resolved owner and queues an unprovisioned one by name") {
  auto ok = map("contacts", {{"owner_id", "7"}});
  CHECK(ok.problems.empty());
  CHECK(ok.fields.at("hubspot_owner_id").as_string() == "u1");

  auto missing = map("contacts", {{"owner_id", 9}});
  REQUIRE(missing.problems.size() == 1);
  const auto& p = missing.problems.front();
  CHECK(p.reason == Reason::kOwnerUnprovisioned);
  CHECK(p.field == "hubspot_owner_id");
  CHECK(p.value == "9");
  CHECK(p.rule == "owner");
  CHECK(p.message ==
        "owner No Body <nobody@x.com> (source user 9) has no user in the destination; owners are never created");
  CHECK_FALSE(missing.fields.contains("hubspot_owner_id"));
}

TEST_CASE("a confirmed parent's destination id replaces the source reference") {
  auto m = map("contacts", {{"org_id", "c1"}});
  CHECK(m.problems.empty());
  CHECK(m.fields.at("associations.companies").as_string() == "D-100");
  CHECK(m.queued_parents.empty());
  CHECK_FALSE(m.waits_for_parent);
}

TEST_CASE("a queued parent makes the child a parent_queued problem and lists the parent") {
  auto m = map("contacts", {{"org_id", "c2"}});
  REQUIRE(m.problems.size() == 1);
  CHECK(m.problems.front().reason == Reason::kParentQueued);
  CHECK(m.problems.front().field == "associations.companies");
  CHECK(m.problems.front().value == "c2");
  CHECK(m.problems.front().rule == "parent");
  REQUIRE(m.queued_parents.size() == 1);
  CHECK(m.queued_parents.front() == std::make_pair(std::string("companies"), std::string("c2")));
  CHECK_FALSE(m.fields.contains("associations.companies"));
}

TEST_CASE("a parent absent from the source is an orphan_reference") {
  auto m = map("contacts", {{"org_id", "c3"}});
  REQUIRE(m.problems.size() == 1);
  CHECK(m.problems.front().reason == Reason::kOrphanReference);
  CHECK(m.problems.front().field == "associations.companies");
  CHECK(m.problems.front().value == "c3");
  CHECK(m.problems.front().message == "companies c3 (org_id) does not exist in the source");
  CHECK(m.queued_parents.empty());
}

TEST_CASE("a pending parent makes the child wait without a problem") {
  auto m = map("contacts", {{"org_id", "c4"}});
  CHECK(m.problems.empty());
  CHECK(m.waits_for_parent);
  CHECK_FALSE(m.fields.contains("associations.companies"));
}

TEST_CASE("a correction overrides the mapped value and clears that field's problem") {
  auto m = map("contacts", {{"score", "abc"}, {"owner_id", "9"}}, {{"score", 12}});
  REQUIRE(m.problems.size() == 1);
  CHECK(m.problems.front().field == "hubspot_owner_id");  // other problems stay
  CHECK(m.fields.at("score") == json::value(12));

  auto owner_fixed = map("contacts", {{"owner_id", "9"}, {"first_name", "Ada"}},
                         {{"hubspot_owner_id", "u2"}, {"firstname", "Ada L."}});
  CHECK(owner_fixed.problems.empty());
  CHECK(owner_fixed.fields.at("hubspot_owner_id").as_string() == "u2");
  CHECK(owner_fixed.fields.at("firstname").as_string() == "Ada L.");

  auto stage_fixed = map("deals", {{"pipeline_id", 2}, {"stage_id", 9}}, {{"pipeline", "partnerships"}, {"dealstage", "partner_paused"}});
  CHECK(stage_fixed.problems.empty());
  CHECK(stage_fixed.fields.at("dealstage").as_string() == "partner_paused");

  // A queued parent is not something a field correction answers.
  auto parent = map("contacts", {{"org_id", "c2"}}, {{"associations.companies", "D-7"}});
  REQUIRE(parent.problems.size() == 1);
  CHECK(parent.problems.front().reason == Reason::kParentQueued);
}

TEST_CASE("an invalid correction is reported instead of silently replacing the problem") {
  auto m = map("contacts", {{"score", "abc"}}, {{"score", "still not a number"}});
  REQUIRE(m.problems.size() == 1);
  CHECK(m.problems.front().reason == Reason::kInvalidValue);
  CHECK(m.problems.front().field == "score");
  CHECK(m.problems.front().value == "still not a number");
  CHECK(m.problems.front().rule == "type:number");
  CHECK_FALSE(m.fields.contains("score"));

  // A bad correction of a valid value must not leave the old value to be written as if corrected.
  auto valid_before = map("contacts", {{"score", "5"}}, {{"score", "five"}});
  REQUIRE(valid_before.problems.size() == 1);
  CHECK(valid_before.problems.front().value == "five");
}

TEST_CASE("mapping into a given storage gives the same record, its fields allocated there") {
  struct Case {
    const char* object;
    json::object fields, corrections;
  };
  const std::vector<Case> cases = {
      {"contacts", {{"first_name", "Ada"}, {"lifecycle", ""}}, {}},
      {"contacts", {{"first_name", "Ada"}, {"lifecycle", "subscriber"}, {"country", "FR"}}, {}},
      {"contacts", {{"country", "  "}}, {}},
      {"deals", {{"title", "Big deal"}, {"pipeline_id", 2}, {"stage_id", 6}}, {}},
      {"deals", {{"pipeline_id", 2}, {"stage_id", 9}}, {}},
      {"deals", {{"pipeline_id", 2}, {"stage_id", 9}}, {{"pipeline", "partnerships"}, {"dealstage", "partner_paused"}}},
      {"activities", {{"type", "call"}, {"subject", "Intro"}, {"duration", "30"}, {"due", "2024-05-01"}}, {}},
      {"activities", {{"type", "meeting"}, {"subject", "Demo"}, {"duration", "x"}}, {}},
      {"activities", {{"type", "fax"}}, {}}};
  for (const auto& c : cases) {
    CAPTURE(c.object);
    CAPTURE(json::serialize(c.fields));
    json::monotonic_resource arena;
    const auto plain = map(c.object, c.fields, c.corrections);
    const auto placed = map_in(&arena, c.object, c.fields, c.corrections);
    CHECK(placed.destination_object == plain.destination_object);
    CHECK(placed.fields == plain.fields);
    CHECK(*placed.fields.storage() == *json::storage_ptr(&arena));
    for (const auto& kv : placed.fields) CHECK(*kv.value().storage() == *json::storage_ptr(&arena));
    CHECK(placed.defaults == plain.defaults);
    CHECK(placed.translations == plain.translations);
    CHECK(placed.dropped == plain.dropped);
    REQUIRE(placed.problems.size() == plain.problems.size());
    for (std::size_t i = 0; i < placed.problems.size(); ++i) {
      CHECK(placed.problems[i].reason == plain.problems[i].reason);
      CHECK(placed.problems[i].field == plain.problems[i].field);
      CHECK(placed.problems[i].message == plain.problems[i].message);
    }
  }
}

TEST_CASE("a routed object goes to the destination its routing field names, with per-object targets") {
  auto call = map("activities", {{"type", "call"}, {"subject", "Intro"}, {"duration", "30"}, {"due", "2024-05-01"}});
  CHECK(call.problems.empty());
  CHECK(call.destination_object == "calls");
  CHECK(call.fields.at("hs_call_title").as_string() == "Intro");
  CHECK(call.fields.at("hs_call_duration") == json::value(30));
  CHECK(call.fields.at("hs_timestamp").as_string() == "2024-05-01T00:00:00.000Z");
  CHECK_FALSE(call.fields.contains("hs_meeting_title"));

  auto meeting = map("activities", {{"type", "meeting"}, {"subject", "Demo"}, {"duration", "30"}});
  CHECK(meeting.problems.empty());
  CHECK(meeting.destination_object == "meetings");
  CHECK(meeting.fields.at("hs_meeting_title").as_string() == "Demo");
  CHECK_FALSE(meeting.fields.contains("hs_call_title"));
  CHECK_FALSE(meeting.fields.contains("hs_call_duration"));  // no target for meetings
  CHECK(meeting.fields.size() == 1);
}

TEST_CASE("an unknown routing value is an unmapped_value problem on the routing field") {
  auto m = map("activities", {{"type", "meting"}, {"subject", "Demo"}});
  CHECK(m.destination_object.empty());
  CHECK(m.fields.empty());
  REQUIRE(m.problems.size() == 1);
  const auto& p = m.problems.front();
  CHECK(p.reason == Reason::kUnmappedValue);
  CHECK(p.field == "type");
  CHECK(p.value == "meting");
  CHECK(p.rule == "route");
  CHECK(p.message == "no destination object for type = 'meting'");
  CHECK(p.suggestion == "meeting");

  auto missing = map("activities", {{"subject", "Demo"}});
  REQUIRE(missing.problems.size() == 1);
  CHECK(missing.problems.front().reason == Reason::kUnmappedValue);
  CHECK(missing.problems.front().value.empty());
}

TEST_CASE("blank source values are not sent") {
  auto m = map("contacts", {{"first_name", "   "}, {"score", nullptr}, {"email", json::array{}}, {"vip", ""}});
  CHECK(m.problems.empty());
  CHECK_FALSE(m.fields.contains("firstname"));
  CHECK_FALSE(m.fields.contains("score"));
  CHECK_FALSE(m.fields.contains("email"));
  CHECK_FALSE(m.fields.contains("vip"));
  for (const auto& kv : m.fields) CHECK_FALSE(kv.value().is_null());
}

TEST_CASE("dropped source fields present on the record are recorded") {
  auto m = map("contacts", {{"first_name", "Ada"}, {"visible_to", 3}, {"unrelated", "x"}});
  CHECK(m.dropped == std::vector<std::string>{"visible_to"});
  CHECK_FALSE(m.fields.contains("visible_to"));
  CHECK(map("contacts", {{"first_name", "Ada"}}).dropped.empty());
}

TEST_CASE("closest_match suggests a near candidate and nothing for noise") {
  std::vector<std::string> c{"appointmentscheduled", "contractsent", "closedwon"};
  CHECK(cmg::closest_match("contractsnt", c) == "contractsent");
  CHECK(cmg::closest_match("CLOSEDWON", c) == "closedwon");
  CHECK(cmg::closest_match("contract", c) == "contractsent");  // contained in a candidate
  CHECK(cmg::closest_match("zzzzzz", c).empty());
  CHECK(cmg::closest_match("x", {}).empty());
}

TEST_CASE("numbers with thousands separators coerce; ambiguous or out-of-range numbers are refused") {
  using cmg::coerce_value;
  using cmg::FieldType;
  namespace json = boost::json;
  CHECK(coerce_value(json::value("1,234.50"), FieldType::kNumber)->as_double() == doctest::Approx(1234.5));
  CHECK(coerce_value(json::value("-12,345,678"), FieldType::kInteger)->as_int64() == -12345678);
  CHECK(coerce_value(json::value(" 42 "), FieldType::kInteger)->as_int64() == 42);
  CHECK_FALSE(coerce_value(json::value("1.234,50"), FieldType::kNumber));
  CHECK_FALSE(coerce_value(json::value("12,34"), FieldType::kNumber));
  CHECK_FALSE(coerce_value(json::value("0x1A"), FieldType::kNumber));
  CHECK_FALSE(coerce_value(json::value("1e999"), FieldType::kNumber));
  CHECK_FALSE(coerce_value(json::value("99999999999999999999"), FieldType::kInteger));
}
