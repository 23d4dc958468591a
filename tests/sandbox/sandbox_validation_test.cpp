#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "test_util.hpp"

using namespace cmg;
using namespace cmg::sandbox;
namespace json = boost::json;

namespace {

struct Fixture {
  TempDir dir;
  std::shared_ptr<SandboxCrm> hs;
  std::shared_ptr<SandboxCrm> pd;
  Fixture() {
    auto h = SandboxCrm::create(dir.sub("hs"), "hubspot");
    REQUIRE(h.is_ok());
    hs = *h;
    REQUIRE(hs->set_user(User{"70000001", "owner@example.com", "Owner One", true}).is_ok());
    auto p = SandboxCrm::create(dir.sub("pd"), "pipedrive");
    REQUIRE(p.is_ok());
    pd = *p;
    REQUIRE(pd->set_user(User{"1", "seller@example.com", "Seller", true}).is_ok());
  }

  // Writes one op and returns its result.
  WriteResult one(SandboxCrm& crm, const std::string& object, WriteOp op) {
    auto res = crm.write(object, {std::move(op)});
    REQUIRE(res.is_ok());
    REQUIRE(res->size() == 1);
    return (*res)[0];
  }
  WriteResult upsert(const std::string& object, const std::string& key, json::object fields) {
    WriteOp op;
    op.idempotency_key = key;
    op.fields = std::move(fields);
    return one(*hs, object, std::move(op));
  }
  WriteResult pd_create(const std::string& object, json::object fields) {
    WriteOp op;
    op.fields = std::move(fields);
    return one(*pd, object, std::move(op));
  }
};

// The single field error of a failed result, checked for status, code, field and value.
void check_error(const WriteResult& r, int status, const std::string& code, const std::string& field,
                 const std::string& value) {
  CHECK(r.outcome == WriteResult::Outcome::kFailed);
  CHECK(r.status == status);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].code == code);
  CHECK(r.errors[0].field == field);
  CHECK(r.errors[0].value == value);
  CHECK_FALSE(r.errors[0].message.empty());
}

json::object deal(std::string name, std::string pipeline, std::string stage) {
  return {{"dealname", std::move(name)}, {"pipeline", std::move(pipeline)}, {"dealstage", std::move(stage)}};
}

}  // namespace

TEST_CASE("an unknown property is rejected with PROPERTY_DOESNT_EXIST") {
  Fixture fx;
  check_error(fx.upsert("contacts", "p-1", {{"favourite_colour", "teal"}}), 400, "PROPERTY_DOESNT_EXIST",
              "favourite_colour", "teal");
  CHECK(*fx.hs->count("contacts") == 0);
}

TEST_CASE("a read-only property is rejected with READ_ONLY_VALUE") {
  Fixture fx;
  check_error(fx.upsert("contacts", "p-1", {{"createdate", "2024-01-01T00:00:00Z"}}), 400, "READ_ONLY_VALUE",
              "createdate", "2024-01-01T00:00:00Z");
  check_error(fx.pd_create("persons", {{"name", "X"}, {"id", 5}}), 400, "READ_ONLY_VALUE", "id", "5");
}

TEST_CASE("a required property missing on create is rejected with REQUIRED") {
  Fixture fx;
  check_error(fx.upsert("deals", "d-1", {{"pipeline", "default"}, {"dealstage", "closedwon"}}), 400, "REQUIRED",
              "dealname", "");
  check_error(fx.upsert("deals", "d-1", deal("  ", "default", "closedwon")), 400, "REQUIRED", "dealname", "  ");
  // On update the required field may be absent, but not cleared.
  auto ok = fx.upsert("deals", "d-1", deal("Big deal", "default", "closedwon"));
  REQUIRE(ok.outcome == WriteResult::Outcome::kCreated);
  CHECK(fx.upsert("deals", "d-1", {{"amount", 10}}).outcome == WriteResult::Outcome::kUpdated);
  check_error(fx.upsert("deals", "d-1", {{"dealname", ""}}), 400, "REQUIRED", "dealname", "");
}

TEST_CASE("an enum value that is not an option is rejected with INVALID_OPTION") {
  Fixture fx;
  check_error(fx.upsert("contacts", "p-1", {{"lifecyclestage", "prospect"}}), 400, "INVALID_OPTION", "lifecyclestage",
              "prospect");
  CHECK(fx.upsert("contacts", "p-1", {{"lifecyclestage", "lead"}}).outcome == WriteResult::Outcome::kCreated);
}

TEST_CASE("a deal stage must be a stage of the record's pipeline") {
  Fixture fx;
  check_error(fx.upsert("deals", "d-1", deal("D", "default", "partner_paused")), 400, "INVALID_OPTION", "dealstage",
              "partner_paused");
  auto created = fx.upsert("deals", "d-1", deal("D", "partnerships", "partner_paused"));
  REQUIRE(created.outcome == WriteResult::Outcome::kCreated);
  // Moving the deal to another pipeline without a stage of that pipeline is rejected too.
  check_error(fx.upsert("deals", "d-1", {{"pipeline", "default"}}), 400, "INVALID_OPTION", "dealstage",
              "partner_paused");
  CHECK(fx.upsert("deals", "d-1", {{"pipeline", "default"}, {"dealstage", "closedlost"}}).status == 200);
  // Pipedrive stage ids are checked against the deal's pipeline_id the same way.
  check_error(fx.pd_create("deals", {{"title", "T"}, {"pipeline_id", 1}, {"stage_id", 9}}), 400, "INVALID_OPTION",
              "stage_id", "9");
  CHECK(fx.pd_create("deals", {{"title", "T"}, {"pipeline_id", 2}, {"stage_id", 9}}).status == 201);
}

TEST_CASE("values of the wrong type are rejected with the type's error code") {
  Fixture fx;
  check_error(fx.pd_create("deals", {{"title", "T"}, {"probability", "high"}}), 400, "INVALID_INTEGER", "probability",
              "high");
  check_error(fx.pd_create("deals", {{"title", "T"}, {"value", "12,5"}}), 400, "INVALID_NUMBER", "value", "12,5");
  check_error(fx.pd_create("activities", {{"type", "call"}, {"done", "yes"}}), 400, "INVALID_BOOLEAN", "done", "yes");
  check_error(fx.pd_create("deals", {{"title", "T"}, {"expected_close_date", "2024-02-30"}}), 400, "INVALID_DATE",
              "expected_close_date", "2024-02-30");
  check_error(fx.upsert("deals", "d-1", {{"dealname", "D"}, {"pipeline", "default"}, {"dealstage", "closedwon"},
                                         {"closedate", "next week"}}),
              400, "INVALID_DATETIME", "closedate", "next week");
  check_error(fx.upsert("contacts", "p-1", {{"email", "ann at example.com"}}), 400, "INVALID_EMAIL", "email",
              "ann at example.com");
  check_error(fx.upsert("companies", "o-1", {{"name", json::array{"a", "b"}}}), 400, "INVALID_VALUE", "name",
              "[\"a\",\"b\"]");
  // Accepted forms.
  CHECK(fx.pd_create("deals", {{"title", "T"}, {"probability", "40"}, {"value", "1250.50"},
                               {"expected_close_date", "2024-02-29"}})
            .status == 201);
  CHECK(fx.pd_create("activities", {{"type", "task"}, {"done", true}}).status == 201);
}

TEST_CASE("date-times are accepted as ISO 8601 with millis or offsets, or as Unix milliseconds") {
  Fixture fx;
  int n = 0;
  for (json::value v : {json::value("2024-05-01T10:00:00Z"), json::value("2024-05-01T10:00:00.123+02:00"),
                        json::value("2024-05-01 10:00"), json::value("1714557600000"), json::value(1714557600000)}) {
    auto r = fx.upsert("notes", "n-" + std::to_string(n++), {{"hs_note_body", "x"}, {"hs_timestamp", v}});
    CHECK_MESSAGE(r.status == 201, json::serialize(v));
  }
  for (const char* bad : {"2024-13-01T00:00:00Z", "2024-05-01T25:00:00Z", "2024-05-01T10:00:00+25:00", "yesterday"}) {
    auto r = fx.upsert("notes", "n-bad", {{"hs_note_body", "x"}, {"hs_timestamp", bad}});
    CHECK_MESSAGE(r.status == 400, bad);
  }
}

TEST_CASE("a value longer than max_length is rejected with TOO_LONG") {
  Fixture fx;
  std::string name(256, 'x');
  check_error(fx.upsert("deals", "d-1", deal(name, "default", "closedwon")), 400, "TOO_LONG", "dealname", name);
  // Length counts code points, not bytes.
  std::string accented;
  for (int i = 0; i < 255; ++i) accented += "\xC3\xA9";
  CHECK(fx.upsert("deals", "d-2", deal(accented, "default", "closedwon")).status == 201);
}

TEST_CASE("a reference to a missing record is rejected with INVALID_ASSOCIATION") {
  Fixture fx;
  check_error(fx.upsert("contacts", "p-1", {{"associations.companies", "1000777"}}), 400, "INVALID_ASSOCIATION",
              "associations.companies", "1000777");
  auto company = fx.upsert("companies", "o-1", {{"name", "Acme"}});
  REQUIRE(company.status == 201);
  CHECK(fx.upsert("contacts", "p-1", {{"associations.companies", company.id}}).status == 201);
  check_error(fx.upsert("notes", "n-1", {{"hs_note_body", "x"}, {"hs_timestamp", "2024-01-01T00:00:00Z"},
                                         {"associations.companies", json::array{company.id, "1000555"}}}),
              400, "INVALID_ASSOCIATION", "associations.companies", "1000555");
}

TEST_CASE("an owner id that is not a user is rejected with INVALID_OWNER_ID") {
  Fixture fx;
  check_error(fx.upsert("contacts", "p-1", {{"hubspot_owner_id", "70000099"}}), 400, "INVALID_OWNER_ID",
              "hubspot_owner_id", "70000099");
  CHECK(fx.upsert("contacts", "p-1", {{"hubspot_owner_id", "70000001"}}).status == 201);
  check_error(fx.pd_create("persons", {{"name", "X"}, {"owner_id", 8}}), 400, "INVALID_OWNER_ID", "owner_id", "8");
}

TEST_CASE("several invalid properties of one record are all reported") {
  Fixture fx;
  auto r = fx.upsert("contacts", "p-1", {{"email", "bad"}, {"nope", 1}, {"lifecyclestage", "x"}});
  CHECK(r.status == 400);
  CHECK(r.errors.size() == 3);
}

TEST_CASE("an email held by another contact in different case is rejected with 409 and the existing id") {
  Fixture fx;
  auto first = fx.upsert("contacts", "p-1", {{"email", "Ann.Lee@Example.com"}});
  REQUIRE(first.status == 201);
  auto dup = fx.upsert("contacts", "p-2", {{"email", "ann.lee@example.COM"}, {"firstname", "Ann"}});
  check_error(dup, 409, "DUPLICATE_VALUE", "email", "ann.lee@example.COM");
  CHECK(dup.existing_id == first.id);
  CHECK(*fx.hs->count("contacts") == 1);
  CHECK(fx.hs->find("contacts", "crm_source_id", {"p-2"})->empty());
  // The holder itself may write the same address in another case.
  CHECK(fx.upsert("contacts", "p-1", {{"email", "ANN.LEE@example.com"}}).status == 200);
}

TEST_CASE("a failed record in a batch does not block the others") {
  Fixture fx;
  std::vector<WriteOp> ops(3);
  ops[0].idempotency_key = "d-1";
  ops[0].fields = deal("One", "default", "closedwon");
  ops[1].idempotency_key = "d-2";
  ops[1].fields = deal("Two", "default", "on_hold");
  ops[2].idempotency_key = "d-3";
  ops[2].fields = deal("Three", "partnerships", "partner_lead");
  auto res = fx.hs->write("deals", ops);
  REQUIRE(res.is_ok());
  REQUIRE(res->size() == 3);
  CHECK((*res)[0].status == 201);
  CHECK((*res)[1].status == 400);
  CHECK((*res)[2].status == 201);
  CHECK(*fx.hs->count("deals") == 2);
  auto c = fx.hs->counters();
  CHECK(c->records_created == 2);
  CHECK(c->records_failed == 1);
}

TEST_CASE("an upsert without an idempotency key is rejected when the object has an id property") {
  Fixture fx;
  check_error(fx.upsert("companies", "", {{"name", "A"}}), 400, "REQUIRED", "crm_source_id", "");
  check_error(fx.upsert("companies", "o-1", {{"name", "A"}, {"crm_source_id", "o-2"}}), 400, "INVALID_VALUE",
              "crm_source_id", "o-2");
}

TEST_CASE("system fields are set by the sandbox on create") {
  Fixture fx;
  fx.hs->set_clock([] { return std::int64_t{1714557600000}; });
  auto r = fx.upsert("companies", "o-1", {{"name", "Acme"}});
  REQUIRE(r.status == 201);
  auto rec = fx.hs->get("companies", r.id);
  REQUIRE(rec->has_value());
  CHECK((*rec)->fields.at("hs_object_id") == json::value(r.id));
  CHECK((*rec)->fields.at("createdate") == "2024-05-01T10:00:00.000Z");
  fx.pd->set_clock([] { return std::int64_t{1714557600000}; });
  auto p = fx.pd_create("persons", {{"name", "Ann"}});
  REQUIRE(p.status == 201);
  CHECK(p.id == "1");
  auto prec = fx.pd->get("persons", p.id);
  CHECK((*prec)->fields.at("id") == 1);
  CHECK((*prec)->fields.at("add_time") == "2024-05-01 10:00:00");
  CHECK((*prec)->fields.at("update_time") == "2024-05-01 10:00:00");
}
