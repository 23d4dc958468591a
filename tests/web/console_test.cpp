// The review console's JSON API and security rules, through Console::handle (no sockets).
#include "crmmigrate/web/console.hpp"

#include <doctest/doctest.h>

#include <boost/json.hpp>

#include "crmmigrate/store/lmdb_env.hpp"
#include "pipeline/scenario_util.hpp"
#include "pipeline/state_internal.hpp"
#include "web/queue_index.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

constexpr const char* kHost = "127.0.0.1:8765";

struct Client {
  web::Console* console;
  std::string csrf;

  net::HttpResponse send(const std::string& method, const std::string& target, const std::string& body = "",
                         net::Headers extra = {}, bool auth = true) {
    net::HttpRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    r.headers = {{"Host", kHost}};
    if (auth) r.headers.emplace_back("Authorization", "Bearer " + console->token());
    if (method == "POST") {
      r.headers.emplace_back("Content-Type", "application/json");
      r.headers.emplace_back("X-CSRF-Token", csrf);
      r.headers.emplace_back("Origin", std::string("http://") + kHost);
    }
    for (auto& h : extra) {
      bool replaced = false;
      for (auto& mine : r.headers)
        if (mine.first == h.first) {
          mine.second = h.second;
          replaced = true;
        }
      if (!replaced) r.headers.push_back(h);
    }
    return console->handle(r);
  }
  json::value get_json(const std::string& target) {
    auto r = send("GET", target);
    INFO(target << " → " << r.status << " " << r.body);
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }
  json::value post_json(const std::string& target, const json::object& body, int expect = 200) {
    auto r = send("POST", target, json::serialize(body));
    INFO(target << " → " << r.status << " " << r.body);
    REQUIRE(r.status == expect);
    return json::parse(r.body);
  }
};

std::unique_ptr<web::Console> make_console(Scenario& sc, bool with_on_hold = false) {
  auto m = Migration::open(sc.config(with_on_hold));
  REQUIRE_MESSAGE(m.is_ok(), m.status().to_string());
  auto c = web::Console::create(std::move(*m), {});
  REQUIRE_MESSAGE(c.is_ok(), c.status().to_string());
  return std::move(*c);
}

Client connect(web::Console& c) {
  Client cl{&c, ""};
  cl.csrf = std::string(cl.get_json("/api/session").at("csrf").as_string());
  REQUIRE(cl.csrf.size() == 64);
  return cl;
}

std::int64_t count_of(const json::value& status, const char* object, const char* what) {
  return status.at("report").at("objects").at(object).at(what).to_number<std::int64_t>();
}

}  // namespace

TEST_CASE("console: only loopback Host names are accepted") {
  CHECK(web::is_loopback_host("127.0.0.1"));
  CHECK(web::is_loopback_host("127.0.0.1:8080"));
  CHECK(web::is_loopback_host("127.1.2.3:1"));
  CHECK(web::is_loopback_host("localhost:9000"));
  CHECK(web::is_loopback_host("LOCALHOST"));
  CHECK(web::is_loopback_host("[::1]:8080"));
  CHECK(web::is_loopback_host("[::1]"));
  CHECK_FALSE(web::is_loopback_host(""));
  CHECK_FALSE(web::is_loopback_host("evil.example"));
  CHECK_FALSE(web::is_loopback_host("evil.example:8080"));
  CHECK_FALSE(web::is_loopback_host("127.0.0.1.evil.example"));
  CHECK_FALSE(web::is_loopback_host("localhost.evil.example"));
  CHECK_FALSE(web::is_loopback_host("128.0.0.1"));
  CHECK_FALSE(web::is_loopback_host("127.0.0.256"));
  CHECK_FALSE(web::is_loopback_host("127.0.0.1:80x"));
  CHECK_FALSE(web::is_loopback_host("[::2]:80"));
  CHECK_FALSE(web::is_loopback_host("0.0.0.0"));
}

TEST_CASE("console: every security rule refuses with its status") {
  Scenario sc;
  auto console = make_console(sc);
  Client cl = connect(*console);

  {  // a foreign Host (DNS rebinding) is refused with 403, even with the token
    auto r = cl.send("GET", "/api/status", "", {{"Host", "evil.example:8765"}});
    CHECK(r.status == 403);
    CHECK(r.body.find("host_not_allowed") != std::string::npos);
    CHECK(cl.send("GET", "/", "", {{"Host", "attacker.test"}}).status == 403);
    CHECK(cl.send("GET", "/?token=" + console->token(), "", {{"Host", "attacker.test"}}, false).status == 403);
  }
  {  // a missing or wrong token is refused with 401, for the API and the static files
    CHECK(cl.send("GET", "/api/status", "", {}, false).status == 401);
    CHECK(cl.send("GET", "/", "", {}, false).status == 401);
    CHECK(cl.send("GET", "/app.js", "", {}, false).status == 401);
    CHECK(cl.send("GET", "/api/status", "", {{"Authorization", "Bearer " + std::string(64, 'a')}}, false).status ==
          401);
    CHECK(cl.send("GET", "/api/status", "", {{"Cookie", "cmg_console_x=" + console->token()}}, false).status == 401);
    CHECK(cl.send("GET", "/?token=wrong", "", {}, false).status == 401);
    CHECK(cl.send("POST", "/api/queue/skip", "{}", {{"Authorization", "Bearer nope"}}).status == 401);
  }
  {  // the first load trades the URL token for an HttpOnly SameSite=Strict cookie
    auto r = cl.send("GET", console->entry_path(), "", {}, false);
    REQUIRE(r.status == 303);
    CHECK(r.header("Location") == "/");
    std::string cookie(r.header("Set-Cookie"));
    CHECK(cookie.find("HttpOnly") != std::string::npos);
    CHECK(cookie.find("SameSite=Strict") != std::string::npos);
    std::string pair = cookie.substr(0, cookie.find(';'));
    CHECK(pair.find(console->token()) != std::string::npos);
    auto page = cl.send("GET", "/", "", {{"Cookie", "other=1; " + pair}}, false);
    CHECK(page.status == 200);
    CHECK(page.header("Content-Type").find("text/html") == 0);
    CHECK(cl.send("GET", "/api/status", "", {{"Cookie", pair}}, false).status == 200);
  }
  {  // a cross-site POST is refused with 403 (Origin, Sec-Fetch-Site, missing CSRF token)
    json::object body{{"id", "deals/1"}, {"reviewer", "Eve"}, {"note", "x"}};
    std::string b = json::serialize(body);
    CHECK(cl.send("POST", "/api/queue/skip", b, {{"Origin", "http://evil.example"}}).status == 403);
    CHECK(cl.send("POST", "/api/queue/skip", b, {{"Origin", "http://localhost:8765"}}).status == 403);
    CHECK(cl.send("POST", "/api/queue/skip", b, {{"Sec-Fetch-Site", "cross-site"}}).status == 403);
    CHECK(cl.send("POST", "/api/queue/skip", b, {{"Sec-Fetch-Site", "same-site"}}).status == 403);
    CHECK(cl.send("POST", "/api/queue/skip", b, {{"X-CSRF-Token", ""}}).status == 403);
    CHECK(cl.send("POST", "/api/queue/skip", b, {{"X-CSRF-Token", std::string(64, '0')}}).status == 403);
    CHECK(cl.send("GET", "/api/status", "", {{"Sec-Fetch-Site", "cross-site"}}).status == 403);
  }
  {  // a POST that is not JSON is refused with 415
    std::string b = "id=deals/1&reviewer=Eve&note=x";
    CHECK(cl.send("POST", "/api/queue/skip", b, {{"Content-Type", "application/x-www-form-urlencoded"}}).status == 415);
    CHECK(cl.send("POST", "/api/queue/skip", b, {{"Content-Type", "text/plain"}}).status == 415);
    CHECK(cl.send("POST", "/api/queue/skip", b, {{"Content-Type", "multipart/form-data; boundary=x"}}).status == 415);
    CHECK(cl.send("POST", "/api/queue/skip", "{not json").status == 400);
  }
  {  // other methods are refused with 405 and no CORS header is ever sent
    auto r = cl.send("OPTIONS", "/api/status", "",
                     {{"Origin", "http://evil.example"}, {"Access-Control-Request-Method", "POST"}});
    CHECK(r.status == 405);
    CHECK(r.header("Access-Control-Allow-Origin").empty());
    CHECK(cl.send("PUT", "/api/queue/fix", "{}").status == 405);
    CHECK(cl.send("DELETE", "/api/queue/fix").status == 405);
    auto ok = cl.send("GET", "/api/status", "", {{"Origin", "http://evil.example"}});
    CHECK(ok.header("Access-Control-Allow-Origin").empty());
  }
  {  // every response carries a strict CSP, refusals included
    for (const auto& r : {cl.send("GET", "/"), cl.send("GET", "/api/status", "", {}, false),
                          cl.send("GET", "/api/status", "", {{"Host", "evil.example"}})}) {
      std::string csp(r.header("Content-Security-Policy"));
      CHECK(csp.find("default-src 'none'") != std::string::npos);
      CHECK(csp.find("script-src 'self'") != std::string::npos);
      CHECK(csp.find("unsafe-inline") == std::string::npos);
      CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
      CHECK(r.header("X-Content-Type-Options") == "nosniff");
    }
  }
}

TEST_CASE("console: the UI's static files are embedded, self-contained and render data as text") {
  Scenario sc;
  auto console = make_console(sc);
  Client cl = connect(*console);
  auto index = cl.send("GET", "/");
  REQUIRE(index.status == 200);
  CHECK(index.body.find("<script src=\"/app.js\"") != std::string::npos);
  // Nothing from elsewhere: no absolute URL to another host in the page, the script or the styles.
  for (const char* path : {"/", "/app.js", "/app.css"}) {
    auto r = cl.send("GET", path);
    REQUIRE(r.status == 200);
    CHECK(r.body.find("https://") == std::string::npos);
    CHECK(r.body.find("http://") == std::string::npos);
    CHECK(r.body.find("//cdn") == std::string::npos);
  }
  auto js = cl.send("GET", "/app.js");
  CHECK(js.header("Content-Type").find("text/javascript") == 0);
  // CRM data holds HTML and scripts: the UI never parses strings as HTML.
  CHECK(js.body.find("innerHTML") == std::string::npos);
  CHECK(js.body.find("outerHTML") == std::string::npos);
  CHECK(js.body.find("insertAdjacentHTML") == std::string::npos);
  CHECK(js.body.find("document.write") == std::string::npos);
  CHECK(js.body.find("eval(") == std::string::npos);
  auto etag = std::string(js.header("ETag"));
  REQUIRE_FALSE(etag.empty());
  CHECK(cl.send("GET", "/app.js", "", {{"If-None-Match", etag}}).status == 304);
  CHECK(cl.send("GET", "/nope.js").status == 404);
  CHECK(cl.send("HEAD", "/app.css").body.empty());
}

TEST_CASE("console: status, queue paging, fix, skip and reprocess over the reference scenario") {
  Scenario sc;
  auto console = make_console(sc);
  Client cl = connect(*console);

  // Before the run: sign-off through the API (reviewer required).
  cl.post_json("/api/plan/approve", json::object{{"reviewer", "  "}}, 400);
  auto plan = cl.post_json("/api/plan/approve", json::object{{"reviewer", "Avery"}});
  CHECK(plan.at("approved").as_bool());
  CHECK(plan.at("signoff").at("reviewer").as_string() == "Avery");
  // The run is the CLI's job (the console only reprocesses). One LMDB environment per process:
  // close the console, run through the library, open a console again.
  console.reset();
  {
    auto m = Migration::open(sc.config());
    REQUIRE(m.is_ok());
    auto r = (*m)->run(RunOptions{});
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    CHECK(r->state == "incomplete");
  }
  console = make_console(sc, /*with_on_hold=*/false);
  cl = connect(*console);

  auto status = cl.get_json("/api/status");
  CHECK(status.at("report").at("state").as_string() == "incomplete");
  CHECK(count_of(status, "contacts", "source") == 4200);
  CHECK(count_of(status, "contacts", "written") == 3716);
  CHECK(count_of(status, "contacts", "merged") == 450);
  CHECK(count_of(status, "contacts", "queued") == 34);
  CHECK(count_of(status, "deals", "queued") == 160);
  CHECK(count_of(status, "notes", "queued") == 279);
  CHECK(status.at("report").at("queue_open").to_number<std::int64_t>() == 34 + 160 + 279 + 30);
  CHECK(status.at("equation").at("deals").at("holds").as_bool());
  CHECK(status.at("signoff").at("reviewer").as_string() == "Avery");

  // Paging: 503 open items, 50 a page, facets per reason.
  auto page1 = cl.get_json("/api/queue?limit=50");
  CHECK(page1.at("total").to_number<std::int64_t>() == 503);
  CHECK(page1.at("items").as_array().size() == 50);
  CHECK(page1.at("facets").at("reason").at("unmapped_value").to_number<std::int64_t>() == 140);
  CHECK(page1.at("facets").at("reason").at("owner_unprovisioned").to_number<std::int64_t>() == 34);
  auto last = cl.get_json("/api/queue?limit=50&offset=500");
  CHECK(last.at("items").as_array().size() == 3);
  CHECK(last.at("offset").to_number<std::int64_t>() == 500);
  auto page2 = cl.get_json("/api/queue?limit=50&offset=50");
  CHECK(page2.at("items").at(0).at("id") != page1.at("items").at(0).at("id"));
  CHECK(cl.send("GET", "/api/queue?status=bogus").status == 400);

  auto deals = cl.get_json("/api/queue?reason=unmapped_value&object=deals&limit=5");
  CHECK(deals.at("total").to_number<std::int64_t>() == 140);
  const auto& first = deals.at("items").at(0).as_object();
  std::string deal_id(first.at("id").as_string());
  CHECK(first.at("status").as_string() == "open");
  CHECK(first.at("outcome").as_string() == "queued");
  CHECK_FALSE(first.at("label").as_string().empty());

  // Filters by field and by text (case-insensitive).
  std::string field(first.at("problem").at("field").as_string());
  auto by_field = cl.get_json("/api/queue?field=" + net::url_encode(field) + "&object=deals");
  CHECK(by_field.at("total").to_number<std::int64_t>() >= 140);
  std::string label(first.at("label").as_string());
  auto by_text = cl.get_json("/api/queue?text=" + net::url_encode(web::ascii_lower(label)));
  CHECK(by_text.at("total").to_number<std::int64_t>() >= 1);

  // Item detail: field-level problems, source values, suggestions from the translation table.
  auto item = cl.get_json("/api/queue/item?id=" + net::url_encode(deal_id));
  CHECK(item.at("queue").at("reason").as_string() == "unmapped_value");
  CHECK(item.at("source").as_object().size() > 3);
  bool suggests_partner_contract = false;
  for (const auto& s : item.at("suggestions").as_array())
    suggests_partner_contract = suggests_partner_contract || s.at("value") == "partner_contract";
  CHECK(suggests_partner_contract);
  CHECK(cl.send("GET", "/api/queue/item?id=deals/does-not-exist").status == 404);

  // Fix one deal's stage (reviewer required and recorded).
  json::object set{{"pipeline", "partnerships"}, {"dealstage", "partner_contract"}};
  cl.post_json("/api/queue/fix", json::object{{"id", deal_id}, {"set", set}}, 400);
  auto fixed = cl.post_json("/api/queue/fix", json::object{{"id", deal_id}, {"set", set}, {"reviewer", "Avery"}});
  CHECK(fixed.at("fixed").to_number<std::int64_t>() == 1);
  auto after_fix = cl.get_json("/api/queue/item?id=" + net::url_encode(deal_id));
  CHECK(after_fix.at("queue").at("status").as_string() == "fixed");
  CHECK(after_fix.at("queue").at("history").as_array().back().at("reviewer").as_string() == "Avery");

  // Skip by filter needs a note; the 12 orphan notes.
  cl.post_json("/api/queue/skip",
               json::object{{"filter", json::object{{"reason", "orphan_reference"}}}, {"reviewer", "Avery"}}, 400);
  auto skipped = cl.post_json("/api/queue/skip", json::object{{"filter", json::object{{"reason", "orphan_reference"}}},
                                                              {"reviewer", "Avery"},
                                                              {"note", "person deleted in Pipedrive"}});
  CHECK(skipped.at("skipped").to_number<std::int64_t>() == 12);
  CHECK(cl.get_json("/api/queue?reason=orphan_reference").at("total").to_number<std::int64_t>() == 0);
  CHECK(cl.get_json("/api/queue?reason=orphan_reference&status=skipped").at("total").to_number<std::int64_t>() == 12);
  // A bulk action needs a filter.
  cl.post_json("/api/queue/skip", json::object{{"filter", json::object{}}, {"reviewer", "A"}, {"note", "n"}}, 400);

  // Reprocess (in-process here): the fixed deal is written.
  auto job = cl.post_json("/api/queue/reprocess", json::object{});
  CHECK(job.at("job").at("state").as_string() == "finished");
  CHECK(job.at("job").at("kind").as_string() == "reprocess");
  auto rec = cl.get_json("/api/record?id=" + net::url_encode(deal_id));
  CHECK(rec.at("outcome").as_string() == "written");
  CHECK(rec.at("queue").at("status").as_string() == "resolved");
  status = cl.get_json("/api/status");
  CHECK(count_of(status, "deals", "queued") == 159);
  CHECK(count_of(status, "notes", "skipped") == 12);
  auto resolved = cl.get_json("/api/queue?status=resolved&object=deals");
  CHECK(resolved.at("total").to_number<std::int64_t>() >= 1);

  // The record's timeline: extracted, mapped, dedup, validated, queued, fixed (with reviewer), written.
  std::vector<std::string> steps;
  for (const auto& s : rec.at("timeline").as_array()) steps.emplace_back(s.at("step").as_string());
  auto has = [&](const char* s) { return std::find(steps.begin(), steps.end(), s) != steps.end(); };
  CHECK(has("extracted"));
  CHECK(has("mapped"));
  CHECK(has("dedup"));
  CHECK(has("validated"));
  CHECK(has("queued"));
  CHECK(has("fixed"));
  CHECK(has("written"));
  CHECK(std::find(steps.begin(), steps.end(), "queued") < std::find(steps.begin(), steps.end(), "written"));
  // Each pipeline step of the latest pass carries the time it ran (from the written event's
  // stages), in pipeline order, and no later than the write.
  std::string written_at, previous;
  for (const auto& s : rec.at("timeline").as_array())
    if (s.at("step") == "written") written_at = std::string(s.at("time").as_string());
  for (const char* step : {"extracted", "mapped", "dedup", "validated"}) {
    const json::object* found_step = nullptr;
    for (const auto& s : rec.at("timeline").as_array())
      if (s.at("step") == step) found_step = &s.as_object();
    REQUIRE(found_step);
    INFO(step << ": " << json::serialize(*found_step));
    REQUIRE(found_step->contains("time"));
    std::string at(found_step->at("time").as_string());
    CHECK(at.size() == 24);  // 2026-11-26T05:00:00.000Z
    CHECK(at >= previous);
    CHECK(at <= written_at);
    previous = at;
  }

  // Search by source id, destination id; export as CSV.
  std::string sid = deal_id.substr(deal_id.find('/') + 1);
  auto found = cl.get_json("/api/search?q=" + net::url_encode(sid));
  REQUIRE_FALSE(found.at("matches").as_array().empty());
  std::string did(rec.at("destination_id").as_string());
  auto by_dest = cl.get_json("/api/search?q=" + net::url_encode(did));
  // Destination ids are per destination object: another object's record may share this one.
  bool dest_hit = false;
  for (const auto& m : by_dest.at("matches").as_array())
    dest_hit = dest_hit || (m.at("object") == "deals" && m.at("source_id").as_string() == sid &&
                            m.at("matched_by") == "destination_id");
  CHECK(dest_hit);
  auto csv = cl.send("GET", "/api/audit/export?format=csv&id=" + net::url_encode(deal_id));
  REQUIRE(csv.status == 200);
  CHECK(csv.body.rfind("seq,time,action", 0) == 0);
  CHECK(csv.body.find(",written,") != std::string::npos);
  CHECK(csv.header("Content-Disposition").find("attachment") == 0);
  auto events = cl.get_json("/api/audit/events?limit=10");
  CHECK(events.at("events").as_array().size() == 10);
  CHECK(events.at("events").at(0).at("seq").to_number<std::uint64_t>() ==
        events.at("total").to_number<std::uint64_t>());
  auto older = cl.get_json("/api/audit/events?limit=10&before=" +
                           std::to_string(events.at("next_before").to_number<std::uint64_t>()));
  CHECK(older.at("events").at(0).at("seq").to_number<std::uint64_t>() + 10 ==
        events.at("events").at(0).at("seq").to_number<std::uint64_t>());
}

TEST_CASE("console: a record's name holding <script> comes back as JSON text and is found by email") {
  Scenario sc;
  {
    auto m = Migration::open(sc.config());
    REQUIRE(m.is_ok());
    REQUIRE((*m)->plan(true, "Avery").is_ok());
    REQUIRE((*m)->run(RunOptions{}).is_ok());
  }
  auto console = make_console(sc);
  Client cl = connect(*console);
  std::string sid = sc.manifest.script_person_id;
  REQUIRE_FALSE(sid.empty());
  auto rec = cl.send("GET", "/api/record?id=contacts/" + net::url_encode(sid));
  REQUIRE(rec.status == 200);
  CHECK(rec.header("Content-Type").find("application/json") == 0);
  auto v = json::parse(rec.body);
  CHECK(std::string(v.at("label").as_string()).find("<script>") != std::string::npos);
  // By email: the person's source email finds the same record.
  const auto& fields = v.at("source").as_object();
  std::string email;
  if (const auto* e = fields.if_contains("email")) {
    if (e->is_string()) email = std::string(e->as_string());
    if (e->is_array() && !e->as_array().empty()) {
      const auto& first = e->as_array()[0];
      email = first.is_object() ? std::string(first.at("value").as_string()) : std::string(first.as_string());
    }
  }
  if (!email.empty()) {
    auto found = cl.get_json("/api/search?q=" + net::url_encode(email));
    bool hit = false;
    for (const auto& m : found.at("matches").as_array()) hit = hit || m.at("source_id").as_string() == sid;
    CHECK(hit);
  }
}

TEST_CASE("console: reprocess while a run holds the lock is refused as locked (409), without waiting") {
  Scenario sc;
  auto console = make_console(sc);
  Client cl = connect(*console);
  auto lock = store::RunLock::acquire(sc.config().state_dir);
  REQUIRE(lock.is_ok());
  auto r = cl.send("POST", "/api/queue/reprocess", "{}");
  CHECK(r.status == 409);
  CHECK(r.body.find("locked") != std::string::npos);
  auto job = cl.get_json("/api/job");
  CHECK(job.at("job").at("state").as_string() == "locked");
}

TEST_CASE("console: the queue index follows queue changes through the audit log without rebuilding") {
  TempDir dir;
  auto env = store::Env::open(dir.path());
  REQUIRE(env.is_ok());
  auto put_item = [&](const std::string& object, const std::string& sid, const std::string& reason,
                      const std::string& status, const std::string& field) {
    REQUIRE(
        (*env)
            ->write([&](store::Txn& t) -> Status {
              json::object item{
                  {"id", object + "/" + sid},
                  {"object", object},
                  {"source_id", sid},
                  {"reason", reason},
                  {"status", status},
                  {"problems", json::array{json::object{{"field", field}, {"value", "Ünïcode <b>X</b>"}}}},
                  {"source", json::object{{"name", "Name " + sid}}}};
              CMG_RETURN_IF_ERROR(state::put_json(t, state::kQueue, store::key_of({object, sid}), item));
              return state::append_audit(t, json::object{{"action", "queued"}, {"object", object}, {"source_id", sid}});
            })
            .is_ok());
  };
  for (int i = 0; i < 300; ++i)
    put_item(i % 3 ? "deals" : "contacts", std::to_string(1000 + i), i % 2 ? "unmapped_value" : "owner_unprovisioned",
             "open", i % 2 ? "dealstage" : "hubspot_owner_id");
  web::QueueIndex idx;
  REQUIRE(idx.refresh(**env).is_ok());
  CHECK(idx.size() == 300);
  CHECK(idx.rebuilds() == 1);

  web::QueueQuery q;
  q.reason = "unmapped_value";
  q.limit = 20;
  auto page = idx.query(q);
  CHECK(page.total == 150);
  CHECK(page.keys.size() == 20);
  CHECK(page.by_reason["owner_unprovisioned"] == 150);  // facet ignores its own filter
  q.object = "contacts";
  CHECK(idx.query(q).total == 50);
  q = {};
  q.field = "hubspot_owner_id";
  CHECK(idx.query(q).total == 150);
  q = {};
  q.text = "name 1007";
  CHECK(idx.query(q).total == 1);
  q.text = "<B>X</B>";
  CHECK(idx.query(q).total == 300);
  q = {};
  q.offset = 290;
  q.limit = 50;
  CHECK(idx.query(q).keys.size() == 10);

  // A fix and a new item arrive with their audit events: followed without a rebuild.
  put_item("deals", "1001", "unmapped_value", "fixed", "dealstage");
  put_item("deals", "9999", "missing_required", "open", "amount");
  REQUIRE(idx.refresh(**env).is_ok());
  CHECK(idx.rebuilds() == 1);
  CHECK(idx.size() == 301);
  q = {};
  q.status = "fixed";
  auto fixed = idx.query(q);
  CHECK(fixed.total == 1);
  REQUIRE(fixed.keys.size() == 1);
  CHECK(fixed.keys[0] == store::key_of({"deals", "1001"}));
  q = {};
  q.reason = "missing_required";
  CHECK(idx.query(q).total == 1);
  q = {};  // open + fixed
  CHECK(idx.query(q).total == 301);

  // A change without an audit event (not done by the pipeline) is caught by the size check.
  REQUIRE((*env)
              ->write([&](store::Txn& t) {
                return t.del(state::kQueue, store::key_of({"deals", "9999"})).status();
              })
              .is_ok());
  REQUIRE((*env)
              ->write([&](store::Txn& t) {
                return state::append_audit(t, json::object{{"action", "unrelated"}});
              })
              .is_ok());
  REQUIRE(idx.refresh(**env).is_ok());
  CHECK(idx.size() == 300);
}
