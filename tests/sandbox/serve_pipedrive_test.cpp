// `sandbox serve` in the Pipedrive dialect: v2 persons/organizations/deals/activities with cursor
// paging and updated_since, search, fields, pipelines, stages; v1 notes (start/limit), users; auth,
// rate limits and faults over real loopback HTTP.
#include <doctest/doctest.h>

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

constexpr const char* kToken = "pd-test-token-456";
constexpr std::int64_t kT0 = 1714557600000;  // 2024-05-01T10:00:00Z

struct PipedriveServer {
  TempDir dir;
  serve_test::ServedSandbox served;
  std::shared_ptr<SandboxCrm>& crm = served.crm;
  std::unique_ptr<cmg::net::HttpServer>& server = served.server;

  explicit PipedriveServer(SandboxServeOptions opts = {})
      : served(dir.sub("pd"), "pipedrive", Dialect::kPipedrive, {cmg::User{"7", "ana@example.com", "Ana Lopez", true}},
               std::move(opts), kToken, cmg::Quota{100000, 2000, 0, 100}) {}
  Client client() { return Client(server->port(), {{"x-api-token", kToken}}); }

  void seed_persons(int n) {
    std::vector<cmg::sandbox::NewRecord> recs(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      recs[i].fields = json::object{
          {"name", "Person " + std::to_string(i)},
          {"email", json::array{json::object{{"value", "p" + std::to_string(i) + "@example.com"}, {"primary", true}, {"label", "work"}}}},
          {"owner_id", 7},
          {"visible_to", "3"}};
      recs[i].updated_at = kT0 + 1000LL * (n - i);  // higher ids were updated earlier
    }
    REQUIRE(crm->insert_many("persons", recs).is_ok());
  }
};

}  // namespace

TEST_CASE("pipedrive dialect takes the token from x-api-token or api_token and answers 401 otherwise") {
  PipedriveServer pd;
  auto none = Client(pd.server->port()).get("/api/v2/persons");
  CHECK(none.status == 401);
  CHECK(none.json().at("success") == false);
  CHECK(none.json().at("errorCode") == 401);
  CHECK(Client(pd.server->port()).get(std::string("/api/v2/persons?api_token=") + kToken).status == 200);
  CHECK(pd.client().get("/api/v2/persons").status == 200);
  auto wrong = Client(pd.server->port(), {{"x-api-token", "nope"}}).get("/v1/users");
  CHECK(wrong.status == 401);
  CHECK(wrong.body.find(kToken) == std::string::npos);
}

TEST_CASE("pipedrive dialect pages v2 persons by cursor in id order and by update_time since a time") {
  PipedriveServer pd;
  pd.seed_persons(250);
  auto c = pd.client();
  std::vector<long long> ids;
  std::string cursor;
  int pages = 0;
  for (;;) {
    auto r = c.get("/api/v2/persons?limit=100&sort_by=id&sort_direction=asc" + (cursor.empty() ? "" : "&cursor=" + cursor));
    REQUIRE(r.status == 200);
    ++pages;
    CHECK(r.json().at("success") == true);
    for (const auto& p : r.json().at("data").as_array()) {
      ids.push_back(p.at("id").as_int64());
      CHECK(p.at("owner_id") == 7);
      CHECK(p.at("visible_to") == 3);
      CHECK(p.at("emails").as_array()[0].at("primary") == true);
      std::string t(p.at("update_time").as_string());
      CHECK(t.size() == 20);
      CHECK(t.back() == 'Z');
    }
    const auto* next = r.json().at("additional_data").as_object().if_contains("next_cursor");
    if (!next || next->is_null()) break;
    cursor = std::string(next->as_string());
  }
  CHECK(pages == 3);
  CHECK(ids.size() == 250);
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  CHECK(std::set<long long>(ids.begin(), ids.end()).size() == 250);

  // updated_since is inclusive; id k was updated at kT0 + (251 - k) s.
  auto since = c.get("/api/v2/persons?updated_since=2024-05-01T10:00:05Z&sort_by=update_time&sort_direction=asc&limit=3");
  REQUIRE(since.status == 200);
  const auto& d = since.json().at("data").as_array();
  REQUIRE(d.size() == 3);
  CHECK(d[0].at("id") == 246);
  CHECK(d[0].at("update_time") == "2024-05-01T10:00:05Z");
  CHECK(d[2].at("id") == 244);
  auto ids_q = c.get("/api/v2/persons?ids=3,1,999");
  CHECK(ids_q.json().at("data").as_array().size() == 2);
  CHECK(c.get("/api/v2/persons?limit=501").status == 400);
  CHECK(c.get("/api/v2/persons?updated_since=yesterday").status == 400);
}

TEST_CASE("pipedrive dialect creates, reads, updates and searches v2 records") {
  PipedriveServer pd;
  auto c = pd.client();
  auto org = c.post("/api/v2/organizations", json::object{{"name", "Acme"}, {"owner_id", 7}, {"address", json::object{{"value", "1 Main St"}}}});
  REQUIRE(org.status == 200);
  auto org_id = org.json().at("data").at("id").as_int64();
  CHECK(org.json().at("data").at("address").at("value") == "1 Main St");
  auto person = c.post("/api/v2/persons",
                       json::object{{"name", "Ann Lee"}, {"org_id", org_id},
                                    {"emails", json::array{json::object{{"value", "ann@example.com"}, {"primary", true}, {"label", "work"}}}}});
  REQUIRE(person.status == 200);
  auto pid = person.json().at("data").at("id").as_int64();
  CHECK(person.json().at("data").at("org_id") == org_id);
  auto deal = c.post("/api/v2/deals", json::object{{"title", "Big"}, {"pipeline_id", 1}, {"stage_id", 2}, {"person_id", pid}, {"value", 12.5}, {"owner_id", 7}});
  REQUIRE(deal.status == 200);
  CHECK(deal.json().at("data").at("stage_id") == 2);
  CHECK(deal.json().at("data").at("owner_id") == 7);
  CHECK(c.post("/api/v2/deals", json::object{{"value", 1}}).status == 400);  // title is required

  auto got = c.get("/api/v2/persons/" + std::to_string(pid));
  REQUIRE(got.status == 200);
  CHECK(got.json().at("data").at("name") == "Ann Lee");
  CHECK(c.get("/api/v2/persons/99999").status == 404);
  CHECK(c.get("/api/v2/persons/99999").json().at("success") == false);

  auto patched = c.patch("/api/v2/persons/" + std::to_string(pid), json::object{{"name", "Ann Smith"}});
  REQUIRE(patched.status == 200);
  CHECK(patched.json().at("data").at("name") == "Ann Smith");

  auto search = c.get("/api/v2/persons/search?term=ann%40example.com&fields=email&exact_match=true");
  REQUIRE(search.status == 200);
  const auto& items = search.json().at("data").at("items").as_array();
  REQUIRE(items.size() == 1);
  CHECK(items[0].at("item").at("id") == pid);
  auto miss = c.get("/api/v2/persons/search?term=zzz&exact_match=true");
  CHECK(miss.json().at("data").at("items").as_array().empty());

  auto act = c.post("/api/v2/activities", json::object{{"type", "call"}, {"subject", "Ring"}, {"person_id", pid}, {"done", true}});
  REQUIRE(act.status == 200);
  CHECK(act.json().at("data").at("done") == true);
}

TEST_CASE("pipedrive dialect pages v1 notes by start and limit and serves users") {
  PipedriveServer pd;
  std::vector<cmg::sandbox::NewRecord> recs(120);
  for (int i = 0; i < 120; ++i) {
    recs[i].fields = json::object{{"content", "note " + std::to_string(i)}, {"user_id", 7}};
    recs[i].updated_at = kT0 + i;
  }
  REQUIRE(pd.crm->insert_many("notes", recs).is_ok());
  auto c = pd.client();
  auto p1 = c.get("/v1/notes?start=0&limit=100&sort=id%20ASC");
  REQUIRE(p1.status == 200);
  CHECK(p1.json().at("data").as_array().size() == 100);
  const auto& pag = p1.json().at("additional_data").at("pagination");
  CHECK(pag.at("more_items_in_collection") == true);
  CHECK(pag.at("next_start") == 100);
  auto p2 = c.get("/v1/notes?start=100&limit=100&sort=id%20ASC");
  CHECK(p2.json().at("data").as_array().size() == 20);
  CHECK(p2.json().at("additional_data").at("pagination").at("more_items_in_collection") == false);
  CHECK(p2.json().at("data").as_array()[0].at("content") == "note 100");
  CHECK(p2.json().at("data").as_array()[0].at("update_time") == "2024-05-01 10:00:00");

  auto created = c.post("/v1/notes", json::object{{"content", "new"}, {"user_id", 7}});
  CHECK(created.status == 200);
  auto nid = created.json().at("data").at("id").as_int64();
  auto put = c.send("PUT", "/v1/notes/" + std::to_string(nid), R"({"content":"edited"})");
  CHECK(put.status == 200);
  CHECK(c.get("/v1/notes/" + std::to_string(nid)).json().at("data").at("content") == "edited");

  CHECK(c.get("/v1/users/me").json().at("data").at("id") == 7);
  auto users = c.get("/v1/users");
  REQUIRE(users.status == 200);
  CHECK(users.json().at("data").as_array()[0].at("id") == 7);
  CHECK(users.json().at("data").as_array()[0].at("email") == "ana@example.com");
}

TEST_CASE("pipedrive dialect serves pipelines, stages and field definitions") {
  PipedriveServer pd;
  auto c = pd.client();
  auto pipes = c.get("/api/v2/pipelines");
  REQUIRE(pipes.status == 200);
  CHECK(pipes.json().at("data").as_array().size() == 2);
  CHECK(pipes.json().at("data").as_array()[0].at("name") == "Sales");
  auto stages = c.get("/api/v2/stages?pipeline_id=2");
  REQUIRE(stages.status == 200);
  CHECK(stages.json().at("data").as_array().size() == 4);
  CHECK(stages.json().at("data").as_array()[0].at("pipeline_id") == 2);
  auto fields = c.get("/api/v2/personFields");
  REQUIRE(fields.status == 200);
  std::set<std::string> codes;
  for (const auto& f : fields.json().at("data").as_array()) {
    codes.insert(std::string(f.at("field_code").as_string()));
    CHECK(f.at("is_custom_field") == false);
  }
  CHECK(codes.count("emails") == 1);
  CHECK(codes.count("owner_id") == 1);
  auto deal_fields = c.get("/api/v2/dealFields");
  bool stage_options = false;
  for (const auto& f : deal_fields.json().at("data").as_array())
    if (f.at("field_code") == "stage_id") stage_options = f.at("options").as_array().size() == 9;
  CHECK(stage_options);
  CHECK(c.get("/v1/noteFields").json().at("data").as_array().size() >= 5);
}

TEST_CASE("pipedrive dialect answers 429 with Retry-After and x-ratelimit headers past the burst") {
  SandboxServeOptions opts;
  opts.limits = cmg::Quota{3, 2000, 500, 100};
  PipedriveServer pd(opts);
  auto c = pd.client();
  for (int i = 0; i < 3; ++i) {
    auto r = c.get("/v1/users");
    REQUIRE(r.status == 200);
    CHECK(r.header("x-ratelimit-limit") == "3");
    CHECK(r.header("x-ratelimit-remaining") == std::to_string(2 - i));
    CHECK(r.header("x-daily-requests-left") == std::to_string(499 - i));
  }
  auto limited = c.get("/v1/users");
  CHECK(limited.status == 429);
  CHECK(limited.json().at("success") == false);
  CHECK(limited.header("Retry-After") == "2");
  CHECK(limited.header("x-ratelimit-reset") == "2");
}

TEST_CASE("pipedrive dialect injects write faults over HTTP") {
  SandboxServeOptions opts;
  cmg::sandbox::FaultPlan plan;
  plan.rate_5xx = 1;
  plan.read_rate = 0;
  opts.faults = plan;
  PipedriveServer pd(opts);
  auto r = pd.client().post("/api/v2/persons", json::object{{"name", "X"}});
  CHECK((r.status == 500 || r.status == 503));
  CHECK(r.json().at("success") == false);
  CHECK(pd.crm->count("persons").value() == 0);
}
