// Conformance driver: runs the Pipedrive connector against Prism mocks of Pipedrive's own OpenAPI
// files (v1 and v2, started with request validation and `--errors`) and fails when Prism rejects
// any request the connector sends.
//
//   pipedrive_mock_driver V1_URL V2_URL
//
// Prism serves a spec's paths without the servers' base path (/v1, /api/v2), so the connector talks
// to a loopback proxy started here: it strips the prefix, forwards to the right mock and records
// every request with Prism's verdict — a 4xx problem+json answer (422 validation, 404 no path
// matched, 401 security, 405 method) or an `sl-violations` header is a violation. The proxy also
// shapes the mock's example answers so the connector's logic can run on them (paging stops after
// the second page; the *Fields lists gain the source-ID custom field) — the requests stay the
// connector's own. Prints one JSON object (endpoints exercised, violations); exit 0 only when
// every endpoint the connector uses was exercised, no request was rejected, and a deliberately
// invalid canary request was (so a mock without validation cannot pass).
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/connectors/pipedrive.hpp"
#include "crmmigrate/net/http_client.hpp"
#include "crmmigrate/net/http_server.hpp"

namespace json = boost::json;
namespace net = cmg::net;
namespace pd = cmg::pipedrive;

namespace {

const char* kSourceIdHash = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

// Spec path template of a request path ("/api/v2/persons/12" -> "v2 /persons/{id}").
std::string template_of(const std::string& version, std::string path) {
  std::string out;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i + 1);
    std::string seg = path.substr(i, j == std::string::npos ? std::string::npos : j - i);
    bool digits = seg.size() > 1 && seg.find_first_not_of("/0123456789") == std::string::npos;
    out += digits ? "/{id}" : seg;
    if (j == std::string::npos) break;
    i = j;
  }
  return version + " " + out;
}

struct Proxy {
  std::unique_ptr<net::HttpClient> v1, v2;
  std::mutex mu;
  std::map<std::string, int> exercised;  // "METHOD v2 /persons/{id}" -> requests
  json::array violations;
  std::size_t requests = 0;

  net::HttpResponse handle(const net::HttpRequest& in) {
    std::string path(in.path());
    std::string version;
    net::HttpClient* up = nullptr;
    net::HttpRequest out = in;
    out.remote_address.clear();
    if (path.rfind("/v1/", 0) == 0) {
      version = "v1";
      up = v1.get();
      out.target = in.target.substr(3);
    } else if (path.rfind("/api/v2/", 0) == 0) {
      version = "v2";
      up = v2.get();
      out.target = in.target.substr(7);
    }
    std::string key = in.method + " " + template_of(version.empty() ? "?" : version,
                                                    version == "v1" ? path.substr(3) : version == "v2" ? path.substr(7) : path);
    {
      std::lock_guard<std::mutex> lock(mu);
      ++requests;
      ++exercised[key];
    }
    net::HttpResponse res;
    if (!up) {
      record(key, in, 404, "request outside /v1 and /api/v2");
      res.status = 404;
      res.body = R"({"success":false,"error":"no such API"})";
      return res;
    }
    // Hop-by-hop and host headers are the proxy client's business.
    net::Headers h;
    for (const auto& [k, v] : in.headers) {
      std::string lk = k;
      for (auto& c : lk) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lk == "host" || lk == "connection" || lk == "content-length" || lk == "keep-alive") continue;
      h.emplace_back(k, v);
    }
    out.headers = std::move(h);
    auto r = up->send(out);
    if (!r.is_ok()) {
      record(key, in, 0, r.status().message());
      res.status = 502;
      res.body = R"({"success":false,"error":"mock unreachable"})";
      return res;
    }
    res = std::move(*r);
    std::string viol(res.header("sl-violations"));
    std::string ctype(res.header("Content-Type"));
    if (!viol.empty()) record(key, in, res.status, viol);
    else if (res.status >= 400 && ctype.find("problem+json") != std::string::npos) record(key, in, res.status, res.body);
    shape(in, path, res);
    return res;
  }

  void record(const std::string& key, const net::HttpRequest& in, int status, const std::string& detail) {
    std::lock_guard<std::mutex> lock(mu);
    violations.push_back(json::object{{"endpoint", key},
                                      {"target", in.target},
                                      {"body", in.body.substr(0, 400)},
                                      {"status", status},
                                      {"detail", detail.substr(0, 1500)}});
  }

  // Makes the mock's static examples usable by the connector's logic (see the file comment).
  static void shape(const net::HttpRequest& in, const std::string& path, net::HttpResponse& res) {
    if (res.status < 200 || res.status >= 300) return;
    boost::system::error_code ec;
    json::value v = json::parse(res.body, ec);
    if (ec || !v.is_object()) return;
    auto& o = v.as_object();
    bool later_page = !in.query("cursor").empty() || !in.query("start").empty();
    if (auto* ad = o.if_contains("additional_data"); ad && ad->is_object()) {
      auto& a = ad->as_object();
      if (later_page && a.contains("next_cursor")) a["next_cursor"] = nullptr;
      if (auto* pg = a.if_contains("pagination"); pg && pg->is_object() && later_page)
        pg->as_object()["more_items_in_collection"] = false;
    }
    bool fields = path.size() > 6 && path.compare(path.size() - 6, 6, "Fields") == 0;
    if (fields && !later_page && path.rfind("/api/v2/", 0) == 0) {
      if (auto* d = o.if_contains("data"); d && d->is_array())
        d->as_array().push_back(json::object{{"field_name", "crm_source_id"},
                                             {"field_code", kSourceIdHash},
                                             {"field_type", "varchar"},
                                             {"options", nullptr},
                                             {"is_custom_field", true},
                                             {"is_optional_response_field", false}});
    }
    res.body = json::serialize(v);
  }
};

int fail(const std::string& m) {
  std::cerr << "pipedrive_mock_driver: " << m << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return fail("usage: pipedrive_mock_driver V1_URL V2_URL");
  Proxy proxy;
  for (int i = 1; i <= 2; ++i) {
    net::ClientOptions co;
    co.base_url = argv[i];
    co.read_timeout = std::chrono::milliseconds(60000);
    auto c = net::HttpClient::create(co);
    if (!c.is_ok()) return fail(c.status().message());
    (i == 1 ? proxy.v1 : proxy.v2) = std::move(*c);
  }
  net::ServerOptions so;
  so.threads = 2;
  auto server = net::HttpServer::start(so, [&](const net::HttpRequest& r) { return proxy.handle(r); });
  if (!server.is_ok()) return fail(server.status().message());

  pd::Options o;
  o.base_url = "http://127.0.0.1:" + std::to_string((*server)->port());
  o.token = "conformance-token";
  o.limits = net::QuotaLimits{};
  o.page_size = 50;
  o.get_attempts = 1;
  auto made = pd::make_connector(o);
  if (!made.is_ok()) return fail(made.status().message());
  auto& c = **made;

  json::array notes;  // what the connector said (not verdicts: the mock's data is only examples)
  auto note = [&](const std::string& step, const cmg::Status& s) {
    if (!s.is_ok()) notes.push_back(json::object{{"step", step}, {"status", s.to_string().substr(0, 300)}});
  };

  note("check_access", c.check_access());
  auto schema = c.schema();
  note("schema", schema.status());
  const std::vector<std::string> objects = {"organizations", "persons", "deals", "notes", "activities"};
  for (const auto& obj : objects) {
    cmg::ReadOptions ro;
    ro.batch_size = 50;
    auto reader = c.read(obj, ro);
    note("read " + obj, reader.status());
    if (reader.is_ok()) {
      cmg::RecordBatch b;
      for (int i = 0; i < 3; ++i) {
        auto more = (*reader)->next(b);
        note("read " + obj + " page", more.status());
        if (!more.is_ok() || !*more) break;
      }
    }
    cmg::ReadOptions since = ro;
    since.since_updated_at = 1735689600000;  // 2025-01-01T00:00:00Z
    since.since_id = "1";
    auto sreader = c.read(obj, since);
    note("read since " + obj, sreader.status());
    if (sreader.is_ok()) {
      cmg::RecordBatch b;
      note("read since " + obj + " page", (*sreader)->next(b).status());
    }
    note("get " + obj, c.get(obj, "1").status());
    note("read ids " + obj, c.read(obj, std::vector<std::string>{"1", "2"}).status());
  }
  note("find persons emails", c.find("persons", "emails", {"jane@example.com"}).status());
  note("find organizations name", c.find("organizations", "name", {"Acme"}).status());
  note("find deals title", c.find("deals", "title", {"Big deal"}).status());
  note("find persons source id", c.find("persons", "crm_source_id", {"src-1"}).status());

  auto upsert = [&](const std::string& obj, json::object fields) {
    cmg::WriteOp op;
    op.kind = cmg::WriteOp::Kind::kUpsert;
    op.idempotency_key = "src-" + obj;
    op.fields = std::move(fields);
    auto w = c.write(obj, {op});
    note("upsert " + obj, w.status());
    cmg::WriteOp up;
    up.kind = cmg::WriteOp::Kind::kUpdate;
    up.id = "1";
    up.fields = op.fields;
    note("update " + obj, c.write(obj, {up}).status());
  };
  upsert("organizations", json::object{{"name", "Acme"}, {"address", "1 Main St"}, {"owner_id", "1"}, {"visible_to", 3}});
  upsert("persons", json::object{{"name", "Jane Doe"},
                                 {"emails", json::array{json::object{{"value", "jane@example.com"}, {"primary", true}, {"label", "work"}}}},
                                 {"phones", "+1 555 0100"},
                                 {"org_id", "1"},
                                 {"owner_id", "1"}});
  upsert("deals", json::object{{"title", "Big deal"}, {"value", 1000.5}, {"currency", "USD"}, {"pipeline_id", "1"},
                               {"stage_id", "1"}, {"person_id", "1"}, {"org_id", "1"}, {"owner_id", "1"},
                               {"expected_close_date", "2025-03-01"}, {"probability", 50}, {"status", "open"}});
  upsert("notes", json::object{{"content", "<p>Hello</p>"}, {"person_id", "1"}, {"deal_id", "1"}, {"user_id", "1"}});
  upsert("activities", json::object{{"type", "call"}, {"subject", "Intro"}, {"note", "n"}, {"due_date", "2025-03-01"},
                                    {"due_time", "10:00"}, {"done", true}, {"person_id", "1"}, {"deal_id", "1"},
                                    {"owner_id", "1"}});
  (*server)->stop();

  // Canary: a request the spec forbids must be rejected, or the checks above prove nothing (a Prism
  // started without validation, or one whose error shape changed).
  bool canary_rejected = false;
  {
    net::HttpRequest bad;
    bad.target = "/persons?sort_by=not_a_field";
    bad.headers.emplace_back("x-api-token", "conformance-token");
    auto r = proxy.v2->send(bad);
    canary_rejected = r.is_ok() && r->status == 422 &&
                      std::string(r->header("Content-Type")).find("problem+json") != std::string::npos;
  }

  // Every endpoint the connector uses (README of the connector header).
  const std::set<std::string> expected = {
      "GET v1 /users/me", "GET v1 /users", "GET v2 /pipelines", "GET v2 /stages",
      "GET v2 /personFields", "GET v2 /organizationFields", "GET v2 /dealFields", "GET v2 /activityFields",
      "GET v1 /noteFields", "GET v2 /persons", "GET v2 /organizations", "GET v2 /deals", "GET v2 /activities",
      "GET v1 /notes", "GET v2 /persons/{id}", "GET v2 /organizations/{id}", "GET v2 /deals/{id}",
      "GET v2 /activities/{id}", "GET v1 /notes/{id}", "GET v2 /persons/search", "GET v2 /organizations/search",
      "GET v2 /deals/search", "POST v2 /persons", "PATCH v2 /persons/{id}", "POST v2 /organizations",
      "PATCH v2 /organizations/{id}", "POST v2 /deals", "PATCH v2 /deals/{id}", "POST v2 /activities",
      "PATCH v2 /activities/{id}", "POST v1 /notes", "PUT v1 /notes/{id}"};
  json::object ex;
  for (const auto& [k, n] : proxy.exercised) ex[k] = n;
  json::array missing;
  for (const auto& e : expected)
    if (!proxy.exercised.count(e)) missing.push_back(json::string(e));
  json::array unexpected;
  for (const auto& [k, n] : proxy.exercised)
    if (!expected.count(k)) unexpected.push_back(json::string(k));
  bool ok = canary_rejected && proxy.violations.empty() && missing.empty() && unexpected.empty();
  json::object report{{"ok", ok},
                      {"canary_rejected", canary_rejected},
                      {"requests", proxy.requests},
                      {"endpoints", ex},
                      {"missing", missing},
                      {"unexpected", unexpected},
                      {"violations", proxy.violations},
                      {"connector_notes", notes}};
  std::cout << json::serialize(report) << "\n";
  return ok ? 0 : 1;
}
