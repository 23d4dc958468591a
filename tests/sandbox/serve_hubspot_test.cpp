// `sandbox serve` in the HubSpot dialect: CRM v3 objects, batch, search, properties, owners,
// pipelines, v4 associations, auth, rate limits and faults over real loopback HTTP.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "crmmigrate/sandbox/serve.hpp"
#include "sandbox/serve_test_util.hpp"
#include "test_util.hpp"

namespace json = boost::json;
using cmg::sandbox::Dialect;
using cmg::sandbox::SandboxCrm;
using cmg::sandbox::SandboxServeOptions;
using serve_test::Client;

namespace {

constexpr const char* kToken = "hs-test-token-123";

struct HubSpotServer {
  TempDir dir;
  serve_test::ServedSandbox served;
  std::shared_ptr<SandboxCrm>& crm = served.crm;
  std::unique_ptr<cmg::net::HttpServer>& server = served.server;

  explicit HubSpotServer(SandboxServeOptions opts = {})
      : served(dir.sub("hs"), "hubspot", Dialect::kHubSpot,
               {cmg::User{"101", "ana@example.com", "Ana Lopez", true}, cmg::User{"102", "bo@example.com", "Bo Chen", true}},
               std::move(opts), kToken, cmg::Quota{100000, 10000, 0, 100}) {}
  Client client() { return Client(server->port(), {{"Authorization", std::string("Bearer ") + kToken}}); }
};

std::string prop(const json::value& rec, const char* name) {
  const auto* p = rec.at("properties").as_object().if_contains(name);
  return p && p->is_string() ? std::string(p->get_string()) : std::string();
}

json::object contact(const std::string& key, const std::string& email, const std::string& first = "Ann") {
  return json::object{{"crm_source_id", key}, {"email", email}, {"firstname", first}};
}

}  // namespace

TEST_CASE("hubspot dialect requires the bearer token and answers 401 in HubSpot's shape") {
  HubSpotServer hs;
  Client none(hs.server->port());
  auto r = none.get("/crm/v3/objects/contacts");
  CHECK(r.status == 401);
  CHECK(r.json().at("category") == "INVALID_AUTHENTICATION");
  CHECK(r.json().at("status") == "error");
  CHECK(r.json().as_object().contains("correlationId"));
  Client wrong(hs.server->port(), {{"Authorization", "Bearer nope"}});
  auto w = wrong.get("/crm/v3/objects/contacts");
  CHECK(w.status == 401);
  CHECK(w.body.find(kToken) == std::string::npos);
  auto ok = hs.client().get("/crm/v3/objects/contacts");
  CHECK(ok.status == 200);
  CHECK(ok.header("X-HubSpot-RateLimit-Max") == "100000");
  CHECK(!ok.header("X-HubSpot-RateLimit-Remaining").empty());
  CHECK(ok.header("X-HubSpot-RateLimit-Interval-Milliseconds") == "10000");
}

TEST_CASE("hubspot dialect creates, reads, updates contacts and reports a duplicate with its existing id") {
  HubSpotServer hs;
  auto c = hs.client();
  auto created = c.post("/crm/v3/objects/contacts",
                        json::object{{"properties", contact("pd-1", "ann@example.com")}});
  REQUIRE(created.status == 201);
  std::string id(created.json().at("id").as_string());
  CHECK(prop(created.json(), "email") == "ann@example.com");
  CHECK(prop(created.json(), "hs_object_id") == id);
  CHECK(!std::string(created.json().at("createdAt").as_string()).empty());

  auto got = c.get("/crm/v3/objects/contacts/" + id + "?properties=email,firstname,crm_source_id");
  REQUIRE(got.status == 200);
  CHECK(prop(got.json(), "firstname") == "Ann");
  CHECK(prop(got.json(), "crm_source_id") == "pd-1");
  auto by_key = c.get("/crm/v3/objects/contacts/pd-1?idProperty=crm_source_id&properties=email");
  REQUIRE(by_key.status == 200);
  CHECK(by_key.json().at("id") == json::value(id));

  auto patched = c.patch("/crm/v3/objects/contacts/" + id, json::object{{"properties", json::object{{"firstname", "Anna"}}}});
  CHECK(patched.status == 200);
  CHECK(prop(c.get("/crm/v3/objects/contacts/" + id + "?properties=firstname").json(), "firstname") == "Anna");

  CHECK(c.get("/crm/v3/objects/contacts/999999").status == 404);
  CHECK(c.get("/crm/v3/objects/contacts/999999").json().at("category") == "OBJECT_NOT_FOUND");
  CHECK(c.patch("/crm/v3/objects/contacts/999999", json::object{{"properties", json::object{}}}).status == 404);

  auto dup = c.post("/crm/v3/objects/contacts", json::object{{"properties", contact("pd-2", "ANN@example.com")}});
  CHECK(dup.status == 409);
  CHECK(dup.json().at("category") == "CONFLICT");
  CHECK(std::string(dup.json().at("message").as_string()) == "Contact already exists. Existing ID: " + id);

  auto bad = c.post("/crm/v3/objects/contacts",
                    json::object{{"properties", json::object{{"email", "x@example.com"}, {"lifecyclestage", "nope"}}}});
  CHECK(bad.status == 400);
  CHECK(bad.json().at("category") == "VALIDATION_ERROR");
  CHECK(bad.body.find("INVALID_OPTION") != std::string::npos);

  // A create without crm_source_id is allowed and leaves the property empty.
  auto plain = c.post("/crm/v3/objects/contacts", json::object{{"properties", json::object{{"email", "p@example.com"}}}});
  REQUIRE(plain.status == 201);
  auto plain_read = c.get("/crm/v3/objects/contacts/" + std::string(plain.json().at("id").as_string()) +
                          "?properties=crm_source_id");
  CHECK(plain_read.json().at("properties").at("crm_source_id").is_null());
}

TEST_CASE("hubspot dialect batch upsert creates then updates, caps inputs at 100 and reports per-record errors") {
  HubSpotServer hs;
  auto c = hs.client();
  json::array inputs;
  for (int i = 0; i < 100; ++i)
    inputs.push_back(json::object{{"idProperty", "crm_source_id"},
                                  {"id", "k" + std::to_string(i)},
                                  {"properties", json::object{{"email", "u" + std::to_string(i) + "@example.com"}}}});
  auto first = c.post("/crm/v3/objects/contacts/batch/upsert", json::object{{"inputs", inputs}});
  REQUIRE(first.status == 200);
  CHECK(first.json().at("status") == "COMPLETE");
  CHECK(first.json().at("results").as_array().size() == 100);
  CHECK(first.json().at("results").as_array()[0].at("new") == true);
  CHECK(prop(first.json().at("results").as_array()[0], "crm_source_id") == "k0");
  CHECK(hs.crm->count("contacts").value() == 100);

  auto again = c.post("/crm/v3/objects/contacts/batch/upsert", json::object{{"inputs", inputs}});
  REQUIRE(again.status == 200);
  CHECK(again.json().at("results").as_array()[5].at("new") == false);
  CHECK(hs.crm->count("contacts").value() == 100);

  inputs.push_back(inputs[0]);
  auto too_many = c.post("/crm/v3/objects/contacts/batch/upsert", json::object{{"inputs", inputs}});
  CHECK(too_many.status == 400);
  CHECK(too_many.json().at("category") == "VALIDATION_ERROR");

  json::array mixed{
      json::object{{"idProperty", "crm_source_id"}, {"id", "m1"}, {"properties", json::object{{"firstname", "ok"}}}},
      json::object{{"idProperty", "crm_source_id"}, {"id", "m2"}, {"properties", json::object{{"lifecyclestage", "bad"}}}},
      json::object{{"idProperty", "crm_source_id"}, {"id", "m3"}, {"properties", json::object{{"email", "u1@example.com"}}}}};
  auto partial = c.post("/crm/v3/objects/contacts/batch/upsert", json::object{{"inputs", mixed}});
  REQUIRE(partial.status == 207);
  CHECK(partial.json().at("results").as_array().size() == 1);
  const auto& errors = partial.json().at("errors").as_array();
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].at("category") == "VALIDATION_ERROR");
  CHECK(errors[0].at("context").at("ids").as_array()[0] == "m2");
  CHECK(errors[0].at("errors").as_array()[0].at("code") == "INVALID_OPTION");
  CHECK(errors[1].at("category") == "CONFLICT");
  CHECK(std::string(errors[1].at("message").as_string()).find("Existing ID: ") != std::string::npos);

  // batch/read by idProperty, with a missing key → 207 OBJECT_NOT_FOUND.
  auto read = c.post("/crm/v3/objects/contacts/batch/read",
                     json::object{{"idProperty", "crm_source_id"},
                                  {"properties", json::array{"email"}},
                                  {"inputs", json::array{json::object{{"id", "k3"}}, json::object{{"id", "nope"}}}}});
  REQUIRE(read.status == 207);
  CHECK(read.json().at("results").as_array().size() == 1);
  CHECK(prop(read.json().at("results").as_array()[0], "email") == "u3@example.com");
  CHECK(read.json().at("errors").as_array()[0].at("context").at("ids").as_array()[0] == "nope");

  // batch/update with an unknown id.
  std::string id3(read.json().at("results").as_array()[0].at("id").as_string());
  auto upd = c.post("/crm/v3/objects/contacts/batch/update",
                    json::object{{"inputs", json::array{json::object{{"id", id3}, {"properties", json::object{{"lastname", "Z"}}}},
                                                        json::object{{"id", "424242"}, {"properties", json::object{}}}}}});
  REQUIRE(upd.status == 207);
  CHECK(upd.json().at("errors").as_array()[0].at("category") == "OBJECT_NOT_FOUND");
  CHECK(prop(upd.json().at("results").as_array()[0], "lastname") == "Z");
}

TEST_CASE("hubspot dialect lists more than 100 records page by page in id order") {
  HubSpotServer hs;
  std::vector<cmg::sandbox::NewRecord> recs(250);
  for (int i = 0; i < 250; ++i) {
    recs[i].fields = json::object{{"email", "p" + std::to_string(i) + "@example.com"}};
    recs[i].updated_at = 1700000000000 + i;
  }
  REQUIRE(hs.crm->insert_many("contacts", recs).is_ok());
  auto c = hs.client();
  std::vector<long long> ids;
  std::string after;
  int pages = 0;
  for (;;) {
    auto r = c.get("/crm/v3/objects/contacts?limit=100&archived=false&properties=email" + (after.empty() ? "" : "&after=" + after));
    REQUIRE(r.status == 200);
    ++pages;
    for (const auto& rec : r.json().at("results").as_array()) {
      ids.push_back(std::stoll(std::string(rec.at("id").as_string())));
      CHECK(!prop(rec, "email").empty());
    }
    const auto* paging = r.json().as_object().if_contains("paging");
    if (!paging) break;
    after = std::string(paging->at("next").at("after").as_string());
  }
  CHECK(pages == 3);
  CHECK(ids.size() == 250);
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  CHECK(std::set<long long>(ids.begin(), ids.end()).size() == 250);
  CHECK(c.get("/crm/v3/objects/contacts?limit=101").status == 400);
  CHECK(c.get("/crm/v3/objects/widgets").status == 400);
}

TEST_CASE("hubspot dialect search filters, sorts, pages and caps at 10,000 results") {
  HubSpotServer hs;
  std::vector<cmg::sandbox::NewRecord> recs(30);
  for (int i = 0; i < 30; ++i) {
    recs[i].fields = json::object{{"email", "s" + std::to_string(i) + "@example.com"},
                                  {"lifecyclestage", i % 2 ? "lead" : "customer"}};
    recs[i].updated_at = 1700000000000 + 1000LL * (30 - i);  // later ids are older
  }
  REQUIRE(hs.crm->insert_many("contacts", recs).is_ok());
  auto c = hs.client();
  json::object q{{"filterGroups", json::array{json::object{{"filters", json::array{json::object{
                                      {"propertyName", "lastmodifieddate"}, {"operator", "GTE"},
                                      {"value", std::to_string(1700000000000 + 1000LL * 21)}}}}}}},
                 {"sorts", json::array{json::object{{"propertyName", "lastmodifieddate"}, {"direction", "ASCENDING"}}}},
                 {"properties", json::array{"email", "lastmodifieddate"}},
                 {"limit", 4}};
  auto r = c.post("/crm/v3/objects/contacts/search", q);
  REQUIRE(r.status == 200);
  CHECK(r.json().at("total") == 10);
  const auto& res = r.json().at("results").as_array();
  REQUIRE(res.size() == 4);
  CHECK(prop(res[0], "email") == "s9@example.com");  // oldest of the matching ones first
  CHECK(prop(res[3], "email") == "s6@example.com");
  CHECK(r.json().at("paging").at("next").at("after") == "4");

  json::object in{{"filterGroups", json::array{json::object{{"filters", json::array{json::object{
                      {"propertyName", "email"}, {"operator", "IN"},
                      {"values", json::array{"S3@example.com", "s4@example.com", "zz@example.com"}}}}}}}},
                  {"properties", json::array{"email"}}};
  auto found = c.post("/crm/v3/objects/contacts/search", in);
  REQUIRE(found.status == 200);
  CHECK(found.json().at("total") == 2);

  json::object two_groups{{"filterGroups", json::array{
                               json::object{{"filters", json::array{json::object{{"propertyName", "lifecyclestage"}, {"operator", "EQ"}, {"value", "lead"}}}}},
                               json::object{{"filters", json::array{json::object{{"propertyName", "hs_object_id"}, {"operator", "EQ"}, {"value", "1000001"}}}}}}}};
  CHECK(c.post("/crm/v3/objects/contacts/search", two_groups).json().at("total") == 16);

  json::object capped{{"limit", 100}, {"after", "9950"}};
  auto cap = c.post("/crm/v3/objects/contacts/search", capped);
  CHECK(cap.status == 400);
  json::object unknown{{"filterGroups", json::array{json::object{{"filters", json::array{json::object{
                           {"propertyName", "nope"}, {"operator", "EQ"}, {"value", "1"}}}}}}}};
  CHECK(c.post("/crm/v3/objects/contacts/search", unknown).status == 400);
}

TEST_CASE("hubspot dialect describes properties, owners and pipelines") {
  HubSpotServer hs;
  auto c = hs.client();
  auto props = c.get("/crm/v3/properties/contacts");
  REQUIRE(props.status == 200);
  std::map<std::string, json::value> by_name;
  for (const auto& p : props.json().at("results").as_array()) by_name[std::string(p.at("name").as_string())] = p;
  REQUIRE(by_name.count("email"));
  CHECK(by_name["email"].at("hasUniqueValue") == true);
  CHECK(by_name["crm_source_id"].at("hasUniqueValue") == true);
  CHECK(by_name["createdate"].at("modificationMetadata").at("readOnlyValue") == true);
  CHECK(by_name["createdate"].at("type") == "datetime");
  CHECK(by_name["lifecyclestage"].at("type") == "enumeration");
  CHECK(by_name["lifecyclestage"].at("options").as_array().size() == 8);
  CHECK(by_name["hubspot_owner_id"].at("referencedObjectType") == "OWNER");
  CHECK(by_name.count("associations.companies") == 0);
  CHECK(by_name.count("lastmodifieddate") == 1);
  auto deal_props = c.get("/crm/v3/properties/deals");
  bool hs_modified = false;
  for (const auto& p : deal_props.json().at("results").as_array()) hs_modified |= p.at("name") == "hs_lastmodifieddate";
  CHECK(hs_modified);
  CHECK(c.get("/crm/v3/properties/contacts/email").json().at("name") == "email");

  auto owners = c.get("/crm/v3/owners?limit=1");
  REQUIRE(owners.status == 200);
  CHECK(owners.json().at("results").as_array()[0].at("firstName") == "Ana");
  CHECK(owners.json().at("results").as_array()[0].at("lastName") == "Lopez");
  std::string after(owners.json().at("paging").at("next").at("after").as_string());
  auto owners2 = c.get("/crm/v3/owners?limit=1&after=" + after);
  CHECK(owners2.json().at("results").as_array()[0].at("email") == "bo@example.com");
  CHECK(!owners2.json().as_object().contains("paging"));

  auto pipes = c.get("/crm/v3/pipelines/deals");
  REQUIRE(pipes.status == 200);
  const auto& first = pipes.json().at("results").as_array()[0];
  CHECK(first.at("id") == "default");
  CHECK(first.at("stages").as_array().size() == 7);
  CHECK(first.at("stages").as_array()[5].at("id") == "closedwon");
}

TEST_CASE("hubspot dialect associates records with v4 default associations and reads them back") {
  HubSpotServer hs;
  auto c = hs.client();
  auto company = c.post("/crm/v3/objects/companies", json::object{{"properties", json::object{{"name", "Acme"}, {"crm_source_id", "o1"}}}});
  REQUIRE(company.status == 201);
  auto person = c.post("/crm/v3/objects/contacts", json::object{{"properties", contact("p1", "p1@example.com")}});
  REQUIRE(person.status == 201);
  std::string co(company.json().at("id").as_string());
  std::string pe(person.json().at("id").as_string());
  auto put = c.send("PUT", "/crm/v4/objects/contacts/" + pe + "/associations/default/companies/" + co);
  REQUIRE(put.status == 200);
  CHECK(put.json().at("results").as_array()[0].at("toObjectId") == std::stoll(co));
  auto rec = hs.crm->get("contacts", pe);
  CHECK(cmg::value_to_text(rec.value()->fields.at("associations.companies")) == co);

  auto read = c.post("/crm/v4/associations/contacts/companies/batch/read",
                     json::object{{"inputs", json::array{json::object{{"id", pe}}}}});
  REQUIRE(read.status == 200);
  CHECK(read.json().at("results").as_array()[0].at("to").as_array()[0].at("toObjectId") == std::stoll(co));
  // The reverse direction reads the same link.
  auto rev = c.post("/crm/v4/associations/companies/contacts/batch/read",
                    json::object{{"inputs", json::array{json::object{{"id", co}}}}});
  REQUIRE(rev.status == 200);
  CHECK(rev.json().at("results").as_array()[0].at("to").as_array()[0].at("toObjectId") == std::stoll(pe));

  auto bad = c.post("/crm/v4/associations/contacts/companies/batch/create",
                    json::object{{"inputs", json::array{json::object{{"from", json::object{{"id", pe}}},
                                                                     {"to", json::object{{"id", "987654"}}},
                                                                     {"types", json::array{}}}}}});
  CHECK(bad.status == 207);
  CHECK(bad.json().at("errors").as_array()[0].at("context").at("ids").as_array()[0] == "987654");
}

TEST_CASE("hubspot dialect answers 429 with Retry-After once the declared burst is used up") {
  SandboxServeOptions opts;
  opts.limits = cmg::Quota{5, 60000, 1000, 100};
  HubSpotServer hs(opts);
  auto c = hs.client();
  for (int i = 0; i < 5; ++i) {
    auto r = c.get("/crm/v3/objects/contacts");
    REQUIRE(r.status == 200);
    CHECK(r.header("X-HubSpot-RateLimit-Remaining") == std::to_string(4 - i));
    CHECK(r.header("X-HubSpot-RateLimit-Daily") == "1000");
  }
  auto limited = c.get("/crm/v3/objects/contacts");
  CHECK(limited.status == 429);
  CHECK(limited.json().at("category") == "RATE_LIMITS");
  int retry = std::stoi(limited.header("Retry-After"));
  CHECK(retry >= 1);
  CHECK(retry <= 60);
  CHECK(limited.header("X-HubSpot-RateLimit-Remaining") == "0");
}

TEST_CASE("hubspot dialect serves the sandbox's faults as HTTP failures") {
  SUBCASE("429 and 503 with Retry-After, nothing applied") {
    SandboxServeOptions opts;
    cmg::sandbox::FaultPlan plan;
    plan.rate_429 = 1;
    plan.read_rate = 0;
    plan.retry_after_ms = 2500;
    opts.faults = plan;
    HubSpotServer hs(opts);
    auto c = hs.client();
    auto r = c.post("/crm/v3/objects/contacts", json::object{{"properties", contact("f1", "f1@example.com")}});
    CHECK(r.status == 429);
    CHECK(r.header("Retry-After") == "3");
    CHECK(hs.crm->count("contacts").value() == 0);
    CHECK(hs.crm->faults().any() == false);  // the HTTP layer owns the plan now
  }
  SUBCASE("reset: the connection drops and nothing is applied") {
    SandboxServeOptions opts;
    cmg::sandbox::FaultPlan plan;
    plan.rate_reset = 1;
    plan.read_rate = 0;
    opts.faults = plan;
    HubSpotServer hs(opts);
    auto c = hs.client();
    auto r = c.post("/crm/v3/objects/contacts", json::object{{"properties", contact("f1", "f1@example.com")}});
    CHECK(r.failed);
    CHECK(hs.crm->count("contacts").value() == 0);
    CHECK(c.get("/crm/v3/objects/contacts").status == 200);  // reads are not faulted (read_rate 0)
  }
  SUBCASE("lost reply: applied, then the connection drops") {
    SandboxServeOptions opts;
    cmg::sandbox::FaultPlan plan;
    plan.rate_lost_reply = 1;
    plan.read_rate = 0;
    opts.faults = plan;
    HubSpotServer hs(opts);
    auto c = hs.client();
    auto r = c.post("/crm/v3/objects/contacts", json::object{{"properties", contact("f1", "f1@example.com")}});
    CHECK(r.failed);
    CHECK(hs.crm->count("contacts").value() == 1);
  }
  SUBCASE("malformed body and a reply held past the timeout") {
    SandboxServeOptions opts;
    cmg::sandbox::FaultPlan plan;
    plan.rate_malformed = 1;
    plan.read_rate = 0;
    opts.faults = plan;
    HubSpotServer hs(opts);
    auto c = hs.client();
    auto r = c.post("/crm/v3/objects/contacts", json::object{{"properties", contact("f1", "f1@example.com")}});
    CHECK(!r.failed);
    boost::system::error_code ec;
    (void)json::parse(r.body, ec);
    CHECK(ec);

    SandboxServeOptions slow;
    cmg::sandbox::FaultPlan tplan;
    tplan.rate_timeout = 1;
    tplan.read_rate = 0;
    slow.faults = tplan;
    slow.timeout_delay = std::chrono::milliseconds(400);
    HubSpotServer hs2(slow);
    auto c2 = hs2.client();
    auto t0 = std::chrono::steady_clock::now();
    auto late = c2.post("/crm/v3/objects/contacts", json::object{{"properties", contact("f2", "f2@example.com")}});
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(390));
    CHECK((late.status == 201 || late.status == 504));
    CHECK(hs2.crm->count("contacts").value() == (late.status == 201 ? 1 : 0));
  }
  SUBCASE("read faults answer 429 or 503") {
    SandboxServeOptions opts;
    cmg::sandbox::FaultPlan plan;
    plan.read_rate = 1;
    opts.faults = plan;
    HubSpotServer hs(opts);
    auto r = hs.client().get("/crm/v3/objects/contacts");
    CHECK((r.status == 429 || r.status == 503));
    CHECK(!r.header("Retry-After").empty());
  }
}

TEST_CASE("hubspot dialect refuses a sandbox of another preset") {
  TempDir dir;
  auto crm = SandboxCrm::create(dir.sub("pd"), "pipedrive");
  REQUIRE(crm.is_ok());
  auto s = cmg::sandbox::serve_sandbox(*crm, Dialect::kHubSpot, SandboxServeOptions{});
  REQUIRE(!s.is_ok());
  CHECK(s.status().code() == cmg::Code::kInvalidArgument);
  CHECK(s.status().message().find("pipedrive") != std::string::npos);
}
