// The pure HubSpot body parsers: real-platform shapes, and no crash on malformed bodies.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "connectors/hubspot/hubspot_parse.hpp"

using namespace cmg::hubspot;

TEST_CASE("hubspot parse: object page with paging and nulls left out") {
  auto p = parse_object_page(
      R"({"results":[{"id":"101","properties":{"email":"a@x.io","firstname":null,"hs_object_id":"101"},
          "createdAt":"2024-05-01T10:00:00Z","updatedAt":"2024-05-02T10:00:00.250Z","archived":false}],
          "paging":{"next":{"after":"102","link":"..."}}})",
      "contacts", "GET /crm/v3/objects/contacts");
  REQUIRE(p.is_ok());
  REQUIRE(p->records.size() == 1);
  CHECK(p->records[0].id == "101");
  CHECK(p->records[0].object == "contacts");
  CHECK(p->records[0].updated_at == 1714644000250);
  CHECK_FALSE(p->records[0].fields.contains("firstname"));
  CHECK(p->after == "102");
  CHECK(p->total == -1);
  auto last = parse_object_page(R"({"total":7,"results":[]})", "contacts", "x");
  REQUIRE(last.is_ok());
  CHECK(last->after.empty());
  CHECK(last->total == 7);
}

TEST_CASE("hubspot parse: 207 batch reply with per-input errors, conflicts and field errors") {
  auto b = parse_batch_response(
      R"({"status":"COMPLETE","results":[{"id":"5","new":true,"properties":{"crm_source_id":"k1"}}],
          "numErrors":2,"errors":[
           {"status":"error","category":"VALIDATION_ERROR","message":"Property values were not valid",
            "context":{"ids":["k2"]},
            "errors":[{"code":"INVALID_OPTION","message":"bogus is not a valid option","in":"lifecyclestage"}]},
           {"status":"error","category":"CONFLICT","message":"Contact already exists. Existing ID: 4242",
            "context":{"ids":["k3"]}}]})",
      "POST upsert");
  REQUIRE(b.is_ok());
  REQUIRE(b->results.size() == 1);
  CHECK(b->results[0].created);
  CHECK(b->results[0].id == "5");
  REQUIRE(b->errors.size() == 2);
  CHECK(b->errors[0].ids == std::vector<std::string>{"k2"});
  REQUIRE(b->errors[0].fields.size() == 1);
  CHECK(b->errors[0].fields[0].field == "lifecyclestage");
  CHECK(b->errors[0].fields[0].code == "INVALID_OPTION");
  CHECK(b->errors[1].status == 409);
  CHECK(b->errors[1].existing_id == "4242");
}

TEST_CASE("hubspot parse: a whole-batch 400 with the field list embedded in its message") {
  auto e = parse_error_body(
      R"({"status":"error","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"x was not one of the allowed options\",\"error\":\"INVALID_OPTION\",\"name\":\"dealstage\"}]","correlationId":"c","category":"VALIDATION_ERROR"})");
  CHECK(e.category == "VALIDATION_ERROR");
  REQUIRE(e.fields.size() == 1);
  CHECK(e.fields[0].field == "dealstage");
  CHECK(e.fields[0].code == "INVALID_OPTION");
  auto junk = parse_error_body("<html>502 Bad Gateway</html>");
  CHECK(junk.category.empty());
  CHECK_FALSE(junk.message.empty());
}

TEST_CASE("hubspot parse: properties, owners, pipelines, associations") {
  auto props = parse_properties(
      R"({"results":[
        {"name":"email","label":"Email","type":"string","fieldType":"text","hasUniqueValue":false},
        {"name":"crm_source_id","type":"string","fieldType":"text","hasUniqueValue":true},
        {"name":"lifecyclestage","type":"enumeration","fieldType":"radio",
         "options":[{"label":"Lead","value":"lead"},{"label":"Old","value":"old","hidden":true}]},
        {"name":"hubspot_owner_id","type":"enumeration","fieldType":"select","referencedObjectType":"OWNER"},
        {"name":"hs_object_id","type":"number","fieldType":"number","calculated":false,
         "modificationMetadata":{"readOnlyValue":true}},
        {"name":"notes_body","type":"string","fieldType":"textarea"}]})",
      "GET properties");
  REQUIRE(props.is_ok());
  REQUIRE(props->size() == 6);
  CHECK((*props)[0].type == cmg::FieldType::kEmail);
  CHECK((*props)[1].unique);
  CHECK((*props)[2].options.size() == 1);
  CHECK((*props)[3].type == cmg::FieldType::kReference);
  CHECK((*props)[3].references == "owners");
  CHECK((*props)[4].read_only);
  CHECK((*props)[5].type == cmg::FieldType::kText);

  std::string after;
  auto owners = parse_owners(
      R"({"results":[{"id":"7","email":"a@x.io","firstName":"Ada","lastName":"L","archived":false}],"paging":{"next":{"after":"8"}}})",
      after, "GET owners");
  REQUIRE(owners.is_ok());
  CHECK(owners->at(0).name == "Ada L");
  CHECK(after == "8");

  auto pipes = parse_pipelines(
      R"({"results":[{"id":"b","label":"B","displayOrder":2,"stages":[]},
                     {"id":"a","label":"A","displayOrder":1,"stages":[{"id":"s2","label":"S2","displayOrder":2},{"id":"s1","label":"S1","displayOrder":1}]}]})",
      "GET pipelines");
  REQUIRE(pipes.is_ok());
  CHECK(pipes->at(0).id == "a");
  CHECK(pipes->at(0).stages.at(0).value == "s1");

  auto assoc = parse_association_batch(
      R"({"status":"COMPLETE","results":[{"from":{"id":"1"},"to":[{"toObjectId":30,"associationTypes":[]},{"toObjectId":4}]}]})",
      "POST assoc");
  REQUIRE(assoc.is_ok());
  CHECK(assoc->at("1") == std::vector<std::string>{"4", "30"});
}

TEST_CASE("hubspot parse: malformed bodies are kParse errors naming the call, never crashes") {
  const std::vector<std::string> bodies = {"", "{", "[]", "null", R"({"results":5})", R"({"results":[1]})", R"({"results":[{"id":{}}]})",
                          R"({"results":[{"properties":{}}]})", std::string(200, '[')};
  for (const std::string& b : bodies) {
    CAPTURE(b);
    auto p = parse_object_page(b, "contacts", "GET /crm/v3/objects/contacts");
    CHECK(p.status().code() == cmg::Code::kParse);
    CHECK(p.status().message().find("GET /crm/v3/objects/contacts") != std::string::npos);
    CHECK_FALSE(parse_batch_response(b, "x").is_ok());
    std::string after;
    CHECK_FALSE(parse_owners(b, after, "x").is_ok());
    CHECK_FALSE(parse_properties(b, "x").is_ok());
    (void)parse_error_body(b);
    (void)parse_pipelines(b, "x");
    (void)parse_association_batch(b, "x");
  }
}
