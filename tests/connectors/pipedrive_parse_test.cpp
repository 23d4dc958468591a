// The Pipedrive connector's pure functions: reply parsing, record/body conversion, error mapping.
#include <doctest/doctest.h>

#include <string>

#include "connectors/pipedrive/pipedrive_parse.hpp"

namespace json = boost::json;
namespace pp = cmg::pipedrive::parse;
using cmg::Code;
using cmg::WriteResult;

TEST_CASE("pipedrive parse: v2 and v1 list pages") {
  auto v2 = pp::parse_list_page(R"({"success":true,"data":[{"id":1},{"id":2}],
                                    "additional_data":{"next_cursor":"abc"}})",
                                "GET /api/v2/persons");
  REQUIRE(v2.is_ok());
  CHECK(v2->items.size() == 2);
  CHECK(v2->more);
  CHECK(v2->next_cursor == "abc");

  auto end = pp::parse_list_page(R"({"success":true,"data":[],"additional_data":{"next_cursor":null}})", "x");
  REQUIRE(end.is_ok());
  CHECK_FALSE(end->more);

  auto v1 = pp::parse_list_page(R"({"success":true,"data":[{"id":7}],"additional_data":{"pagination":
                                    {"start":0,"limit":1,"more_items_in_collection":true,"next_start":1}}})",
                                "GET /v1/notes");
  REQUIRE(v1.is_ok());
  CHECK(v1->more);
  CHECK(v1->next_start == 1);

  auto null_data = pp::parse_list_page(R"({"success":true,"data":null})", "x");
  REQUIRE(null_data.is_ok());
  CHECK(null_data->items.empty());

  auto html = pp::parse_list_page("<html>502</html>", "GET /api/v2/persons");
  CHECK(html.status().code() == Code::kUnavailable);
  CHECK(html.status().message().find("GET /api/v2/persons") != std::string::npos);
  CHECK(pp::parse_list_page(R"({"data":{"id":1}})", "x").status().code() == Code::kUnavailable);
  CHECK(pp::parse_list_page(R"({"data":[1,2]})", "x").status().code() == Code::kUnavailable);
  CHECK(pp::parse_list_page(R"({"success":false})", "x").status().code() == Code::kUnavailable);
  // More items promised without a place to continue from must not loop forever.
  CHECK(pp::parse_list_page(R"({"data":[],"additional_data":{"pagination":{"more_items_in_collection":true}}})", "x")
            .status()
            .code() == Code::kUnavailable);
}

TEST_CASE("pipedrive parse: single items and search pages") {
  auto one = pp::parse_item(R"({"success":true,"data":{"id":5,"name":"A"}})", "x");
  REQUIRE(one.is_ok());
  REQUIRE(one->has_value());
  CHECK((**one).at("id").as_int64() == 5);
  auto none = pp::parse_item(R"({"success":true,"data":null})", "x");
  REQUIRE(none.is_ok());
  CHECK_FALSE(none->has_value());

  auto s = pp::parse_search_page(R"({"success":true,"data":{"items":[{"result_score":1,"item":{"id":3}},
                                   {"item":{"id":"4"}}]},"additional_data":{"next_cursor":"n"}})",
                                 "x");
  REQUIRE(s.is_ok());
  CHECK(s->ids == std::vector<std::string>{"3", "4"});
  CHECK(s->next_cursor == "n");
  CHECK(pp::parse_search_page(R"({"data":{"items":[{"item":{}}]}})", "x").status().code() == Code::kUnavailable);
}

TEST_CASE("pipedrive parse: field definitions, users, pipelines and stages") {
  json::object v2 = json::parse(R"({"field_name":"Tier","field_code":"0123456789abcdef0123456789abcdef01234567",
      "field_type":"enum","is_custom_field":true,"options":[{"id":11,"label":"Gold"},{"id":12,"label":"Silver"}],
      "required_fields":{"enabled":true}})")
                        .as_object();
  auto f = pp::field_def_from_item(v2, "x");
  REQUIRE(f.is_ok());
  CHECK(f->custom);
  CHECK(f->required);
  CHECK(f->label == "Tier");
  REQUIRE(f->options.size() == 2);
  CHECK(f->options[0].value == "11");
  CHECK(f->options[0].label == "Gold");

  json::object v1 = json::parse(R"({"id":1,"key":"content","name":"Content","field_type":"text"})").as_object();
  auto g = pp::field_def_from_item(v1, "x");
  REQUIRE(g.is_ok());
  CHECK(g->code == "content");
  CHECK_FALSE(g->custom);
  json::object v1c = json::parse(R"({"key":"ffffffffffffffffffffffffffffffffffffffff","name":"X","field_type":"varchar"})")
                         .as_object();
  CHECK(pp::field_def_from_item(v1c, "x")->custom);
  CHECK(pp::field_def_from_item(json::object{{"name", "no code"}}, "x").status().code() == Code::kUnavailable);

  std::vector<json::object> users = {json::parse(R"({"id":1,"name":"Ann","email":"ann@x.io","active_flag":true})").as_object(),
                                     json::parse(R"({"id":2,"name":"Bo","email":"bo@x.io","active_flag":false})").as_object()};
  auto u = pp::users_from_items(users, "x");
  REQUIRE(u.is_ok());
  REQUIRE(u->size() == 2);
  CHECK((*u)[0].email == "ann@x.io");
  CHECK_FALSE((*u)[1].active);

  std::vector<json::object> stages = {
      json::parse(R"({"id":3,"name":"C","pipeline_id":1,"order_nr":3})").as_object(),
      json::parse(R"({"id":9,"name":"On Hold","pipeline_id":2,"order_nr":1})").as_object(),
      json::parse(R"({"id":1,"name":"A","pipeline_id":1,"order_nr":1})").as_object()};
  auto st = pp::stages_from_items(stages, "x");
  REQUIRE(st.is_ok());
  REQUIRE(st->size() == 3);
  CHECK((*st)[0].id == "1");
  CHECK((*st)[1].id == "3");
  CHECK((*st)[2].pipeline_id == "2");
  CHECK(pp::stages_from_items({json::object{{"id", 1}}}, "x").status().code() == Code::kUnavailable);
}

TEST_CASE("pipedrive parse: items become records with custom fields by label") {
  pp::CustomFields cf;
  cf.name_by_hash["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] = "Tier";
  cf.hash_by_name["Tier"] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  json::object item = json::parse(R"({"id":42,"name":"Acme","address":{"value":"1 Main St","country":"US"},
      "owner_id":3,"update_time":"2024-05-06T07:08:09Z","is_deleted":false,
      "custom_fields":{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":11,"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb":"x"}})")
                          .as_object();
  auto r = pp::item_to_record("organizations", item, {"id", "name", "address", "owner_id", "label_ids", "update_time"}, cf,
                              "x");
  REQUIRE(r.is_ok());
  CHECK(r->id == "42");
  CHECK(r->updated_at == 1714979289000);
  CHECK(r->fields.at("address").as_string() == "1 Main St");
  CHECK(r->fields.at("Tier").as_int64() == 11);
  CHECK_FALSE(r->fields.contains("label_ids"));   // absent in the item: left out
  CHECK_FALSE(r->fields.contains("is_deleted"));  // not a field of the schema
  CHECK_FALSE(r->fields.contains("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));

  // v1 notes: timestamps with a space, no id -> bad reply.
  auto note = pp::item_to_record("notes", json::parse(R"({"id":"7","update_time":"2024-05-06 07:08:09"})").as_object(),
                                 {"id"}, {}, "x");
  REQUIRE(note.is_ok());
  CHECK(note->updated_at == 1714979289000);
  CHECK(pp::item_to_record("notes", json::object{{"content", "x"}}, {"content"}, {}, "x").status().code() ==
        Code::kUnavailable);
}

TEST_CASE("pipedrive parse: request bodies") {
  pp::CustomFields cf;
  cf.name_by_hash["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] = "Tier";
  cf.hash_by_name["Tier"] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  std::vector<std::string> builtin = {"id", "name", "emails", "org_id", "owner_id", "address", "add_time"};
  json::object fields = json::parse(R"({"name":"Jo","emails":"jo@x.io","org_id":"12","owner_id":"","Tier":11})").as_object();
  auto b = pp::fields_to_body("persons", fields, builtin, cf, true, {{"cccccccccccccccccccccccccccccccccccccccc", "src-1"}});
  REQUIRE(b.is_ok());
  CHECK(b->at("org_id").as_int64() == 12);
  CHECK(b->at("owner_id").is_null());
  REQUIRE(b->at("emails").is_array());
  CHECK(b->at("emails").as_array()[0].as_object().at("value").as_string() == "jo@x.io");
  CHECK(b->at("emails").as_array()[0].as_object().at("primary").as_bool());
  const auto& custom = b->at("custom_fields").as_object();
  CHECK(custom.at("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").as_int64() == 11);
  CHECK(custom.at("cccccccccccccccccccccccccccccccccccccccc").as_string() == "src-1");

  // v1 puts custom fields at the top level; address stays text.
  auto b1 = pp::fields_to_body("notes", json::object{{"Tier", 1}, {"address", "x"}}, builtin, cf, false, {});
  REQUIRE(b1.is_ok());
  CHECK(b1->at("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").as_int64() == 1);
  CHECK(b1->at("address").is_string());
  auto b2 = pp::fields_to_body("orgs", json::object{{"address", "1 Main"}}, builtin, cf, true, {});
  CHECK(b2->at("address").as_object().at("value").as_string() == "1 Main");

  auto unknown = pp::fields_to_body("persons", json::object{{"shoe_size", 44}}, builtin, cf, true, {});
  CHECK(unknown.status().code() == Code::kInvalidArgument);
  CHECK(unknown.status().message().find("persons.shoe_size") != std::string::npos);
  auto readonly = pp::fields_to_body("persons", json::object{{"add_time", "2024-01-01"}}, builtin, cf, true, {});
  CHECK(readonly.status().message().find("read-only") != std::string::npos);
}

TEST_CASE("pipedrive parse: HTTP answers map to WriteResults") {
  std::vector<std::string> known = {"name", "emails", "owner_id"};
  auto created = pp::write_result(201, {}, R"({"success":true,"data":{"id":77}})", true, known);
  CHECK(created.outcome == WriteResult::Outcome::kCreated);
  CHECK(created.id == "77");
  auto updated = pp::write_result(200, {}, R"({"success":true,"data":{"id":"77"}})", false, known);
  CHECK(updated.outcome == WriteResult::Outcome::kUpdated);

  auto garbled = pp::write_result(200, {}, "{\"success\":tr", true, known);
  CHECK(garbled.outcome == WriteResult::Outcome::kFailed);
  CHECK(garbled.retryable);
  CHECK(garbled.outcome_unknown);

  auto throttled = pp::write_result(429, {{"Retry-After", "2"}}, R"({"success":false,"error":"Too many requests"})",
                                    true, known);
  CHECK(throttled.retryable);
  CHECK(throttled.retry_after_ms == 2000);
  CHECK_FALSE(throttled.outcome_unknown);
  CHECK(throttled.status == 429);
  auto reset = pp::write_result(429, {{"x-ratelimit-reset", "1"}}, "", true, known);
  CHECK(reset.retry_after_ms == 1000);

  auto gateway = pp::write_result(504, {}, "", true, known);
  CHECK(gateway.retryable);
  CHECK(gateway.outcome_unknown);
  auto busy = pp::write_result(503, {{"Retry-After", "1"}}, "", true, known);
  CHECK(busy.retryable);
  CHECK_FALSE(busy.outcome_unknown);
  CHECK(busy.retry_after_ms == 1000);

  auto bad = pp::write_result(400, {}, R"({"success":false,"error":"Name is required","error_info":"see docs"})", true,
                              known);
  CHECK_FALSE(bad.retryable);
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].field == "name");
  CHECK(bad.errors[0].code == "REQUIRED");
  CHECK(bad.message.find("Name is required (see docs)") != std::string::npos);

  auto dup = pp::write_result(409, {}, R"({"success":false,"error":"duplicate","data":{"id":5}})", true, known);
  CHECK(dup.status == 409);
  CHECK(dup.existing_id == "5");
  REQUIRE(dup.errors.size() == 1);
  CHECK(dup.errors[0].code == "DUPLICATE_VALUE");

  auto missing = pp::write_result(404, {}, R"({"success":false,"error":"Person not found"})", false, known);
  CHECK_FALSE(missing.retryable);
  CHECK(missing.errors.at(0).code == "NOT_FOUND");
}

TEST_CASE("pipedrive parse: timestamps, ids and error text") {
  CHECK(pp::rfc3339_seconds(1714979289999) == "2024-05-06T07:08:09Z");
  CHECK(pp::id_text(json::value(12)) == "12");
  CHECK(pp::id_text(json::value("12")) == "12");
  CHECK(pp::id_text(json::parse(R"({"value":3,"name":"x"})")) == "3");
  CHECK(pp::id_text(json::value("12a")).empty());
  CHECK(pp::id_text(json::value(-1)).empty());
  json::value t("2024-05-06 07:08:09");
  CHECK(pp::time_ms(&t) == 1714979289000);
  CHECK(pp::time_ms(nullptr) == 0);
  std::string long_error = R"({"error":")" + std::string(5000, 'x') + "\"}";
  CHECK(pp::error_message(long_error).size() == 500);
  CHECK(pp::error_message("not json").empty());
}
