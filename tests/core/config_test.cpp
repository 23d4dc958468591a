#include "crmmigrate/core/config.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include <boost/json.hpp>

namespace json = boost::json;

namespace {

// A small valid config; tests change one thing and expect one exact error.
const char* const kBase = R"({
  "name": "t",
  "source": {"connector": "sandbox", "options": {"path": "src"}},
  "destination": {"connector": "sandbox"},
  "write": {"batch_size": 100},
  "objects": [
    {"name": "companies", "source": "organizations", "destination": "companies",
     "fields": {"name": "name"}, "dedup": {"keys": ["external_id", {"kind": "text", "field": "name"}]}},
    {"name": "contacts", "source": "persons", "destination": "contacts",
     "fields": {"email": {"to": "email", "pick": "primary"}, "org_id": {"to": "associations.companies", "parent": "companies"}},
     "dedup": {"keys": ["external_id", "email"]}},
    {"name": "deals", "source": "deals", "destination": "deals",
     "fields": {"title": "dealname", "stage_id": {"translate": "stage"}},
     "translations": {"stage": {"from": ["pipeline_id", "stage_id"], "to": ["pipeline", "dealstage"],
                                "table": {"1/3": ["default", "presentationscheduled"]}}},
     "dedup": "none"}
  ]
})";

json::value base() { return json::parse(kBase); }

json::object& obj(json::value& doc, std::size_t i) { return doc.at("objects").as_array().at(i).as_object(); }

cmg::Result<cmg::MigrationConfig> parse(const json::value& doc, const std::string& base_dir = "/tmp/base") {
  return cmg::parse_config(json::serialize(doc), "cfg.json", base_dir);
}

// The error message of a config that must fail with kConfig.
std::string error_of(const json::value& doc) {
  auto r = parse(doc);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == cmg::Code::kConfig);
  return r.status().message();
}

}  // namespace

TEST_CASE("the base config of the config tests parses") {
  auto r = parse(base());
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->name == "t");
  REQUIRE(r->objects.size() == 3);
  CHECK(r->objects[2].dedup_none);
  CHECK(r->objects[2].translations.at(0).table.at("1/3") == std::vector<std::string>{"default", "presentationscheduled"});
}

TEST_CASE("the reference example config parses") {
  const std::string path = std::string(CMG_SOURCE_DIR) + "/examples/reference/migration.json";
  std::ifstream in(path);
  REQUIRE(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  auto r = cmg::parse_config(ss.str(), path, "/srv/mig");
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->name == "reference");
  CHECK(r->state_dir == "/srv/mig/.crmmigrate/reference");
  REQUIRE(r->objects.size() == 5);
  CHECK(r->objects[0].name == "companies");
  CHECK(r->objects[4].route_by == "type");
  CHECK(r->objects[4].destination_objects() == std::vector<std::string>{"calls", "emails", "meetings", "tasks"});
  CHECK(r->batch_size == 100);
  CHECK(r->halt_window == 200);
  CHECK(r->halt_max_error_rate == doctest::Approx(0.05));
  // load_config reads the same file, resolving against the file's directory.
  auto loaded = cmg::load_config(path);
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  CHECK(loaded->hash == r->hash);
}

TEST_CASE("an unknown top-level key is an error naming its path and the allowed keys") {
  auto doc = base();
  doc.as_object()["colour"] = "blue";
  CHECK(error_of(doc) ==
        "cfg.json: $.colour: unknown key (allowed: name, state, source, destination, owners, dedup, write, halt, "
        "alerts, delta, objects)");
}

TEST_CASE("an unknown key inside a field mapping is an error naming the field's path") {
  auto doc = base();
  obj(doc, 1).at("fields").as_object()["email"] = json::object{{"to", "email"}, {"too", "x"}};
  CHECK(error_of(doc) ==
        "cfg.json: $.objects[1].fields.email.too: unknown key (allowed: to, pick, translate, owner, parent, "
        "parent_required, default)");
}

TEST_CASE("a value of the wrong type is an error naming the expected type") {
  auto doc = base();
  doc.at("write").as_object()["batch_size"] = "100";
  CHECK(error_of(doc) == "cfg.json: $.write.batch_size: expected an integer between 1 and 1000");
}

TEST_CASE("an out-of-range batch size is an error naming the range") {
  auto doc = base();
  doc.at("write").as_object()["batch_size"] = 0;
  CHECK(error_of(doc) == "cfg.json: $.write.batch_size: 0 is out of range [1, 1000]");
  doc.at("write").as_object()["batch_size"] = 1001;
  CHECK(error_of(doc) == "cfg.json: $.write.batch_size: 1001 is out of range [1, 1000]");
  doc.at("write").as_object()["batch_size"] = -1;
  CHECK(error_of(doc) == "cfg.json: $.write.batch_size: -1 is out of range [1, 1000]");
  doc.at("write").as_object()["batch_size"] = 1000;
  auto r = parse(doc);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->batch_size == 1000);
}

TEST_CASE("an object without dedup is an error while dedup none is accepted") {
  auto doc = base();
  obj(doc, 0).erase("dedup");
  CHECK(error_of(doc) ==
        "cfg.json: $.objects[0].dedup: required — give dedup keys (e.g. {\"keys\": [\"external_id\", \"email\"]}) or "
        "\"none\"");
  obj(doc, 0)["dedup"] = "none";
  auto r = parse(doc);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->objects[0].dedup_none);
  CHECK(r->objects[0].dedup.empty());
  obj(doc, 0)["dedup"] = "nothing";
  CHECK(error_of(doc) == "cfg.json: $.objects[0].dedup: expected \"none\" or {\"keys\": [...]}");
}

TEST_CASE("an unknown dedup key kind is an error listing the allowed kinds") {
  auto doc = base();
  obj(doc, 1)["dedup"] = json::parse(R"({"keys": ["external_id", "fax"]})");
  CHECK(error_of(doc) ==
        "cfg.json: $.objects[1].dedup.keys[1]: unknown key kind 'fax' (allowed: external_id, email, phone, text, exact)");
}

TEST_CASE("external_id anywhere but first in the dedup keys is an error") {
  auto doc = base();
  obj(doc, 1)["dedup"] = json::parse(R"({"keys": ["email", "external_id"]})");
  CHECK(error_of(doc) == "cfg.json: $.objects[1].dedup.keys[1]: external_id must come first (it is the strongest key)");
}

TEST_CASE("a translation key with the wrong number of parts is an error") {
  auto doc = base();
  auto& table = obj(doc, 2).at("translations").at("stage").at("table").as_object();
  table["1/3/x"] = json::array{"default", "x"};
  CHECK(error_of(doc) ==
        "cfg.json: $.objects[2].translations.stage.table.1/3/x: key must have 2 part(s) joined by '/' (2 source "
        "field(s))");
  table.erase("1/3/x");
  table["3"] = json::array{"default", "x"};
  CHECK(error_of(doc) ==
        "cfg.json: $.objects[2].translations.stage.table.3: key must have 2 part(s) joined by '/' (2 source field(s))");
}

TEST_CASE("a translation row with the wrong number of values is an error") {
  auto doc = base();
  obj(doc, 2).at("translations").at("stage").at("table").as_object()["1/4"] = json::array{"default"};
  CHECK(error_of(doc) == "cfg.json: $.objects[2].translations.stage.table.1/4: expected 2 value(s), one per destination field");
}

TEST_CASE("a field naming a missing translation table is an error") {
  auto doc = base();
  obj(doc, 2).at("fields").as_object()["stage_id"] = json::object{{"translate", "stages"}};
  CHECK(error_of(doc) ==
        "cfg.json: $.objects[2].fields.stage_id.translate: no translation table named 'stages' in "
        "$.objects[2].translations");
}

TEST_CASE("a parent that is not listed before its child is an error") {
  auto doc = base();
  obj(doc, 1).at("fields").as_object()["deal_id"] = json::object{{"to", "associations.deals"}, {"parent", "deals"}};
  CHECK(error_of(doc) ==
        "cfg.json: $.objects[1].fields.deal_id.parent: 'deals' is not an object listed before this one (parents come "
        "first)");
}

TEST_CASE("duplicate object names are an error") {
  auto doc = base();
  obj(doc, 1)["name"] = "companies";
  obj(doc, 1).at("fields").as_object().erase("org_id");
  CHECK(error_of(doc) == "cfg.json: $.objects[1].name: duplicate object name 'companies'");
}

TEST_CASE("an inline secret in connector options is refused without echoing the secret") {
  auto doc = base();
  doc.at("source").at("options").as_object()["api_token"] = "s3cr3t-VALUE-42";
  std::string msg = error_of(doc);
  CHECK(msg ==
        "cfg.json: $.source.options.api_token: secrets must not be inline; name an environment variable with "
        "\"api_token_env\"");
  CHECK(msg.find("s3cr3t-VALUE-42") == std::string::npos);
  CHECK(msg.find("s3cr3t") == std::string::npos);

  for (const char* key : {"password", "client_secret", "accessToken", "api_key", "apiKey", "API-Key"}) {
    auto d = base();
    d.at("destination").as_object()["options"] = json::object{{key, "s3cr3t-VALUE-42"}};
    auto r = parse(d);
    CHECK_MESSAGE(!r.is_ok(), std::string(key));
    if (!r.is_ok()) {
      CHECK(r.status().message().find("secrets must not be inline") != std::string::npos);
      CHECK(r.status().message().find("s3cr3t") == std::string::npos);
    }
  }
}

TEST_CASE("a secret named by an environment variable is accepted") {
  auto doc = base();
  doc.at("source").at("options").as_object()["token_env"] = "X";
  doc.at("destination").as_object()["options"] = json::object{{"api_token_env", "PIPEDRIVE_TOKEN"}};
  auto r = parse(doc);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->source.options.at("token_env").as_string() == "X");
  CHECK(r->source.json_path == "$.source");
  CHECK(r->destination.options.at("api_token_env").as_string() == "PIPEDRIVE_TOKEN");
}

TEST_CASE("a JSON syntax error reports origin, line and column") {
  auto r = cmg::parse_config("{\n  \"name\": \"t\",\n  \"source\": }\n", "cfg.json", "/tmp/base");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == cmg::Code::kConfig);
  const std::string& msg = r.status().message();
  CHECK_MESSAGE(msg.rfind("cfg.json:3:13: invalid JSON: ", 0) == 0, msg);
}

TEST_CASE("a config that is not a JSON object is an error at $") {
  auto r = cmg::parse_config("[1, 2]", "cfg.json", "/tmp/base");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() == "cfg.json: $: expected a JSON object");
}

TEST_CASE("deeply nested JSON is an error, not a crash") {
  std::string deep(10000, '[');
  auto r = cmg::parse_config(deep, "cfg.json", "/tmp/base");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == cmg::Code::kConfig);
  CHECK_MESSAGE(r.status().message().rfind("cfg.json:1:", 0) == 0, r.status().message());
  CHECK(r.status().message().find("invalid JSON") != std::string::npos);

  std::string closed = std::string(10000, '[') + std::string(10000, ']');
  auto r2 = cmg::parse_config(closed, "cfg.json", "/tmp/base");
  REQUIRE_FALSE(r2.is_ok());
  CHECK(r2.status().code() == cmg::Code::kConfig);

  std::string deep_object = "{\"name\": \"t\", \"x\": " + std::string(10000, '[');
  auto r3 = cmg::parse_config(deep_object, "cfg.json", "/tmp/base");
  REQUIRE_FALSE(r3.is_ok());
  CHECK(r3.status().code() == cmg::Code::kConfig);
}

TEST_CASE("the state directory is resolved against the config's base directory") {
  auto doc = base();
  auto r = parse(doc, "/tmp/base");
  REQUIRE(r.is_ok());
  CHECK(r->base_dir == "/tmp/base");
  CHECK(r->state_dir == "/tmp/base/.crmmigrate/t");  // default: .crmmigrate/<name>

  doc.as_object()["state"] = "run/state";
  r = parse(doc, "/tmp/base");
  REQUIRE(r.is_ok());
  CHECK(r->state_dir == "/tmp/base/run/state");

  doc.as_object()["state"] = "../shared/./state";
  r = parse(doc, "/tmp/base");
  REQUIRE(r.is_ok());
  CHECK(r->state_dir == "/tmp/shared/state");

  doc.as_object()["state"] = json::object{{"directory", "/var/lib/cmg"}};
  r = parse(doc, "/tmp/base");
  REQUIRE(r.is_ok());
  CHECK(r->state_dir == "/var/lib/cmg");

  doc.as_object()["state"] = json::object{{"dir", "x"}};
  CHECK(error_of(doc) == "cfg.json: $.state.directory: required string is missing");
}

TEST_CASE("json_hash ignores key order and changes with any value") {
  auto a = json::parse(R"({"a": 1, "b": {"x": [1, 2, {"p": true, "q": null}], "y": "s"}})");
  auto b = json::parse(R"({"b": {"y": "s", "x": [1, 2, {"q": null, "p": true}]}, "a": 1})");
  CHECK(cmg::json_hash(a) == cmg::json_hash(b));
  CHECK(cmg::json_hash(a).size() == 16);

  auto c = json::parse(R"({"a": 2, "b": {"x": [1, 2, {"p": true, "q": null}], "y": "s"}})");
  auto d = json::parse(R"({"a": 1, "b": {"x": [2, 1, {"p": true, "q": null}], "y": "s"}})");
  auto e = json::parse(R"({"a": 1, "b": {"x": [1, 2, {"p": false, "q": null}], "y": "s"}})");
  auto f = json::parse(R"({"a": "1", "b": {"x": [1, 2, {"p": true, "q": null}], "y": "s"}})");
  for (const auto* other : {&c, &d, &e, &f}) CHECK(cmg::json_hash(a) != cmg::json_hash(*other));

  // The parsed config's hash follows the same rule.
  auto p1 = parse(base());
  auto reordered = json::parse(R"({"objects": [], "name": "t"})");
  reordered.as_object()["objects"] = base().at("objects");
  reordered.as_object()["write"] = base().at("write");
  reordered.as_object()["destination"] = base().at("destination");
  reordered.as_object()["source"] = base().at("source");
  auto p2 = parse(reordered);
  REQUIRE(p1.is_ok());
  REQUIRE(p2.is_ok());
  CHECK(p1->hash == p2->hash);
  auto changed = base();
  changed.at("write").as_object()["batch_size"] = 50;
  auto p3 = parse(changed);
  REQUIRE(p3.is_ok());
  CHECK(p1->hash != p3->hash);
}

TEST_CASE("a secret nested inside connector options is refused by its path without its value") {
  std::string text = R"({"name": "n", "source": {"connector": "x", "options": {"auth": {"password": "s3cr3t-NESTED-7"}}},
    "destination": {"connector": "y"},
    "objects": [{"name": "a", "source": "a", "destination": "a", "fields": {"f": "f"}, "dedup": "none"}]})";
  auto r = cmg::parse_config(text, "m.json", "/tmp");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() ==
        "m.json: $.source.options.auth.password: secrets must not be inline; name an environment variable with "
        "\"password_env\"");
  CHECK(r.status().message().find("s3cr3t") == std::string::npos);
}
