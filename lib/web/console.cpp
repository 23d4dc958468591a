// The review console's request handler: security rules, the JSON API and the embedded UI
// (see crmmigrate/web/console.hpp).
#include "crmmigrate/web/console.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include "assets.hpp"
#include "crmmigrate/core/normalize.hpp"
#include "crmmigrate/core/problem.hpp"
#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/time.hpp"
#include "pipeline/state_internal.hpp"
#include "queue_index.hpp"
#include "records.hpp"

extern char** environ;

namespace cmg::web {

namespace json = boost::json;
namespace fs = std::filesystem;
using net::HttpRequest;
using net::HttpResponse;

// ---------------------------------------------------------------------------------------------
// Small pure helpers

std::string random_token(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) return {};
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 5 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_loopback_ipv4(std::string_view s) {
  int parts = 0;
  int first = -1;
  while (!s.empty()) {
    auto dot = s.find('.');
    std::string_view p = s.substr(0, dot);
    if (p.empty() || p.size() > 3 || !all_digits(p)) return false;
    int v = std::stoi(std::string(p));
    if (v > 255) return false;
    if (parts == 0) first = v;
    ++parts;
    if (dot == std::string_view::npos) break;
    s = s.substr(dot + 1);
    if (s.empty()) return false;  // trailing dot
  }
  return parts == 4 && first == 127;
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !all_digits(rest.substr(1)))) return false;
    return host.substr(1, close - 1) == "::1";
  }
  std::string_view name = host;
  if (auto colon = name.find(':'); colon != std::string_view::npos) {
    if (!all_digits(name.substr(colon + 1))) return false;
    name = name.substr(0, colon);
  }
  std::string lower = ascii_lower(name);
  return lower == "localhost" || is_loopback_ipv4(lower);
}

namespace {

bool equal_secret(std::string_view a, std::string_view b) {
  return !a.empty() && a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Value of cookie `name` in a Cookie header ("a=1; b=2").
std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return std::string(pair.substr(eq + 1));
  }
  return {};
}

// Every response: no caching of API answers, a strict CSP, no sniffing, no framing, no referrer.
void secure(HttpResponse& r) {
  r.set_header("Content-Security-Policy",
               "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  r.set_header("X-Content-Type-Options", "nosniff");
  r.set_header("X-Frame-Options", "DENY");
  r.set_header("Referrer-Policy", "no-referrer");
  r.set_header("Cross-Origin-Opener-Policy", "same-origin");
  r.set_header("Cross-Origin-Resource-Policy", "same-origin");
  if (r.header("Cache-Control").empty()) r.set_header("Cache-Control", "no-store");
}

HttpResponse json_response(int status, const json::value& v) {
  HttpResponse r;
  r.status = status;
  r.body = json::serialize(v);
  r.set_header("Content-Type", "application/json; charset=utf-8");
  return r;
}

HttpResponse error_response(int status, std::string_view error, std::string_view message) {
  return json_response(status, json::object{{"error", error}, {"message", message}});
}

int http_status_of(const Status& st) {
  switch (st.code()) {
    case Code::kInvalidArgument:
    case Code::kConfig:
    case Code::kParse:
      return 400;
    case Code::kNotFound:
      return 404;
    case Code::kLocked:
      return 409;
    case Code::kUnavailable:
    case Code::kPermissionDenied:
      return 503;
    default:
      return 500;
  }
}

HttpResponse status_response(const Status& st) {
  return error_response(http_status_of(st), cmg::code_name(st.code()), st.message());
}

std::size_t parse_size(const std::string& s, std::size_t dflt, std::size_t max) {
  if (s.empty() || s.size() > 12 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return dflt;
  return std::min<std::size_t>(std::stoull(s), max);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A reviewer name or note from a request body: trimmed, bounded, no control characters.
Result<std::string> text_field(const json::object& body, std::string_view key, bool required, std::size_t max) {
  const auto* v = body.if_contains(key);
  if (!v || v->is_null()) {
    if (required) return invalid_argument("\"" + std::string(key) + "\" is required");
    return std::string();
  }
  if (!v->is_string()) return invalid_argument("\"" + std::string(key) + "\" must be a string");
  std::string s(v->get_string());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  s.erase(0, std::min(s.find_first_not_of(" \t\r\n"), s.size()));
  if (required && s.empty()) return invalid_argument("\"" + std::string(key) + "\" is required");
  if (s.size() > max)
    return invalid_argument("\"" + std::string(key) + "\" is longer than " + std::to_string(max) + " bytes");
  for (unsigned char c : s)
    if (c < 0x20 && c != '\n' && c != '\t')
      return invalid_argument("\"" + std::string(key) + "\" holds a control character");
  return s;
}

json::object first_problem(const json::object& item) {
  if (const auto* ps = item.if_contains("problems"); ps && ps->is_array() && !ps->get_array().empty())
    if (const auto* p = ps->get_array()[0].if_object()) return *p;
  return {};
}

void csv_cell(std::string& out, const std::string& s) {
  // Cells a spreadsheet would evaluate as a formula are prefixed with a quote (CSV injection).
  std::string v = s;
  if (!v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@')) v.insert(0, "'");
  if (v.find_first_of(",\"\r\n") == std::string::npos) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

const char* const kCsvColumns[] = {"seq", "time", "action", "object",   "source_id", "destination_id",
                                   "key", "rule", "reason", "reviewer", "note"};

std::string csv_header() {
  std::string line;
  for (const char* c : kCsvColumns) line += std::string(line.empty() ? "" : ",") + c;
  return line + "\n";
}

std::string csv_line(const json::object& e) {
  std::string line;
  bool first = true;
  for (const char* c : kCsvColumns) {
    if (!first) line += ',';
    first = false;
    const auto* v = e.if_contains(c);
    csv_cell(line, v ? value_to_text(*v) : "");
  }
  return line + "\n";
}

struct Job {
  std::int64_t id = 0;
  std::string kind;   // reprocess | reconcile
  std::string state;  // running | finished | locked | failed
  int exit_code = -1;
  std::string started_at, finished_at, message;
  json::value report;
  pid_t pid = -1;
  std::string out_path, err_path;

  json::object to_json() const {
    json::object o{{"id", id}, {"kind", kind}, {"state", state}, {"started_at", started_at}};
    if (!finished_at.empty()) o["finished_at"] = finished_at;
    if (exit_code >= 0) o["exit_code"] = exit_code;
    if (!message.empty()) o["message"] = message;
    o["report"] = report;
    return o;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Console::Impl

struct Console::Impl {
  ConsoleOptions opts;
  std::string token, csrf, cookie_name;
  std::string scratch;
  bool own_scratch = false;

  // The state: the Migration (one LMDB environment per process), the queue index and caches. Every
  // access is serialised: Migration is single-threaded, and LMDB must not remap (map growth) while
  // another thread of this process reads.
  std::mutex state_mu;
  std::unique_ptr<Migration> m;
  std::string open_error;  // why m is null after a failed reopen
  QueueIndex index;
  std::optional<json::object> plan_cache;
  std::optional<Report> status_cache;
  std::uint64_t status_seq = 0;
  std::chrono::steady_clock::time_point status_at;
  std::optional<fs::file_time_type> config_mtime;
  json::value last_reconcile = nullptr;

  std::mutex job_mu;
  std::optional<Job> job;
  std::int64_t job_seq = 0;

  ~Impl() {
    std::lock_guard<std::mutex> lock(job_mu);
    poll_job_locked();
    bool child_running = job && job->state == "running" && job->pid > 0;
    // A running child keeps writing its report into the scratch directory: leave both alone.
    if (own_scratch && !child_running) {
      std::error_code ec;
      fs::remove_all(scratch, ec);
    }
  }

  HttpResponse handle(const HttpRequest& req);
  HttpResponse route(const HttpRequest& req, const std::string& path);
  std::optional<HttpResponse> refuse(const HttpRequest& req, bool is_post, bool is_api);

  // Under state_mu.
  Status ensure_open();
  HttpResponse api_session();
  HttpResponse api_status();
  HttpResponse api_plan(bool refresh);
  HttpResponse api_plan_approve(const json::object& body);
  HttpResponse api_queue(const HttpRequest& req);
  HttpResponse api_queue_item(const std::string& id);
  HttpResponse api_queue_review(const json::object& body, bool fix);
  HttpResponse api_record(const std::string& id);
  HttpResponse api_search(const std::string& q);
  HttpResponse api_events(const HttpRequest& req);
  HttpResponse api_export(const HttpRequest& req);
  HttpResponse api_reconcile_get();
  HttpResponse start_job(const std::string& kind);

  // Under job_mu.
  void poll_job_locked();
  json::value job_json();
};

Status Console::Impl::ensure_open() {
  if (!opts.config_path.empty()) {
    std::error_code ec;
    auto mt = fs::last_write_time(opts.config_path, ec);
    if (!ec && config_mtime && mt != *config_mtime) {
      // The reviewer edited the config (e.g. added a stage translation): plan and reprocess must
      // see it. Close first: one LMDB environment per process at a time.
      m.reset();
      index = QueueIndex{};
      plan_cache.reset();
      status_cache.reset();
      auto reopened = opts.reopen();
      if (reopened.is_ok()) {
        m = std::move(*reopened);
        open_error.clear();
      } else {
        open_error = reopened.status().message();
      }
    }
    if (!ec) config_mtime = mt;
  }
  if (!m) return Status(Code::kConfig, "the console could not reopen the migration: " + open_error);
  return Status::ok();
}

std::optional<HttpResponse> Console::Impl::refuse(const HttpRequest& req, bool is_post, bool is_api) {
  // DNS rebinding: a page of evil.example re-resolved to 127.0.0.1 still sends Host: evil.example.
  if (!is_loopback_host(req.header("Host")))
    return error_response(403, "host_not_allowed",
                          "the console answers only to a loopback Host (127.0.0.1, localhost, [::1])");
  std::string presented = cookie_value(req.header("Cookie"), cookie_name);
  std::string_view auth = req.header("Authorization");
  if (auth.size() > 7 && ascii_lower(auth.substr(0, 7)) == "bearer ") presented = std::string(auth.substr(7));
  if (!equal_secret(presented, token))
    return error_response(401, "unauthorized",
                          "this console needs its access token: open the URL that `crmmigrate serve` printed");
  std::string_view site = req.header("Sec-Fetch-Site");
  if ((is_post || is_api) && (site == "cross-site" || site == "same-site"))
    return error_response(403, "cross_site", "cross-site requests are refused");
  if (!is_post) return std::nullopt;
  std::string_view origin = req.header("Origin");
  if (!origin.empty() && origin != "http://" + std::string(req.header("Host")))
    return error_response(403, "cross_site", "the request's Origin is not this console");
  std::string ctype = ascii_lower(req.header("Content-Type"));
  if (ctype.rfind("application/json", 0) != 0)
    return error_response(415, "unsupported_media_type", "state-changing requests need Content-Type: application/json");
  if (!equal_secret(req.header("X-CSRF-Token"), csrf))
    return error_response(403, "csrf", "missing or wrong X-CSRF-Token (GET /api/session gives it)");
  return std::nullopt;
}

HttpResponse Console::Impl::handle(const HttpRequest& req) {
  HttpResponse r;
  const std::string path(req.path());
  const bool is_get = req.method == "GET" || req.method == "HEAD";
  const bool is_post = req.method == "POST";
  if (!is_get && !is_post) {
    r = error_response(405, "method_not_allowed", "the console accepts GET and POST");
    r.set_header("Allow", "GET, HEAD, POST");
  } else if (is_get && path == "/" && !req.query("token").empty()) {
    // The first load: trade the URL's token for a cookie, then drop it from the address bar.
    if (!is_loopback_host(req.header("Host"))) {
      r = error_response(403, "host_not_allowed", "the console answers only to a loopback Host");
    } else if (!equal_secret(req.query("token"), token)) {
      r = error_response(401, "unauthorized", "wrong access token");
    } else {
      r.status = 303;
      r.set_header("Location", "/");
      r.set_header("Set-Cookie", cookie_name + "=" + token + "; Path=/; HttpOnly; SameSite=Strict");
    }
  } else if (auto refusal = refuse(req, is_post, path.rfind("/api/", 0) == 0)) {
    r = std::move(*refusal);
  } else {
    try {
      r = route(req, path);
    } catch (const std::exception& e) {
      r = error_response(500, "internal", std::string("internal error: ") + e.what());
    }
  }
  secure(r);
  if (req.method == "HEAD") r.body.clear();
  return r;
}

HttpResponse Console::Impl::route(const HttpRequest& req, const std::string& path) {
  const bool post = req.method == "POST";
  if (path.rfind("/api/", 0) != 0) {
    if (post) return error_response(405, "method_not_allowed", "static files are read-only");
    const Asset* a = find_asset(path);
    if (!a) return error_response(404, "not_found", "no such page");
    HttpResponse r;
    r.set_header("Content-Type", a->content_type);
    r.set_header("ETag", a->etag);
    r.set_header("Cache-Control", "no-cache");
    if (req.header("If-None-Match") == a->etag) {
      r.status = 304;
      return r;
    }
    r.body.assign(reinterpret_cast<const char*>(a->data), a->size);
    return r;
  }
  json::object body;
  if (post) {
    boost::system::error_code ec;
    json::value v = json::parse(req.body.empty() ? std::string("{}") : req.body, ec);
    if (ec || !v.is_object()) return error_response(400, "bad_json", "the request body must be a JSON object");
    body = std::move(v.get_object());
  }
  // Jobs have their own lock: their state is answered while a job runs.
  if (path == "/api/job" && !post) {
    std::lock_guard<std::mutex> lock(job_mu);
    return json_response(200, json::object{{"job", job_json()}});
  }
  if (path == "/api/session" && !post) {
    return json_response(200, json::object{{"csrf", csrf}});
  }
  std::lock_guard<std::mutex> lock(state_mu);
  if (Status st = ensure_open(); !st.is_ok()) return status_response(st);
  if (!post) {
    if (path == "/api/meta") return api_session();
    if (path == "/api/status") return api_status();
    if (path == "/api/plan") return api_plan(req.query("refresh") == "1");
    if (path == "/api/queue") return api_queue(req);
    if (path == "/api/queue/item") return api_queue_item(req.query("id"));
    if (path == "/api/record") return api_record(req.query("id"));
    if (path == "/api/search") return api_search(req.query("q"));
    if (path == "/api/audit/events") return api_events(req);
    if (path == "/api/audit/export") return api_export(req);
    if (path == "/api/reconcile") return api_reconcile_get();
  } else {
    if (path == "/api/plan/approve") return api_plan_approve(body);
    if (path == "/api/queue/fix") return api_queue_review(body, true);
    if (path == "/api/queue/skip") return api_queue_review(body, false);
    if (path == "/api/queue/reprocess") return start_job("reprocess");
    if (path == "/api/reconcile") return start_job("reconcile");
  }
  return error_response(404, "not_found", "no such API endpoint: " + req.method + " " + path);
}

// ---- status, meta ----

HttpResponse Console::Impl::api_session() {
  const auto& cfg = m->config();
  json::array objects, reasons;
  for (const auto& oc : cfg.objects) {
    json::object o{{"name", oc.name}, {"source", oc.source}};
    o["destination"] =
        oc.route_by.empty() ? json::value(oc.destination) : json::value(state::to_array(oc.destination_objects()));
    objects.push_back(std::move(o));
  }
  for (const auto& r : reason_names()) reasons.push_back(json::string(r));
  return json_response(200, json::object{{"migration", cfg.name},
                                         {"version", CMG_VERSION_STRING},
                                         {"objects", std::move(objects)},
                                         {"reasons", std::move(reasons)}});
}

HttpResponse Console::Impl::api_status() {
  // Migration::status scans every record and queue item (about 0.2 s of CPU at 100k queue items):
  // the overview and the header badge poll it, so an answer is reused while no audit event was
  // appended, for at most 2 s (changes without audit events, e.g. extraction, show within that).
  std::uint64_t seq_now = 0;
  (void)m->state_env().read([&](store::Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto sv, t.get(state::kMeta, "audit_seq"));
    if (sv) seq_now = std::strtoull(std::string(*sv).c_str(), nullptr, 10);
    return Status::ok();
  });
  auto now = std::chrono::steady_clock::now();
  if (!status_cache || status_seq != seq_now || now - status_at > std::chrono::seconds(2)) {
    auto fresh = m->status();
    if (!fresh.is_ok()) return status_response(fresh.status());
    status_cache = std::move(*fresh);
    status_seq = seq_now;
    status_at = now;
  }
  const Report* rep = &*status_cache;
  json::object out;
  json::object report = rep->to_json();
  json::object equation;
  for (const auto& [name, c] : rep->objects) {
    std::int64_t accounted = c.written + c.merged + c.queued + c.skipped;
    equation[name] = json::object{
        {"source", c.source}, {"accounted", accounted}, {"holds", c.pending == 0 && c.source == accounted}};
  }
  json::array alerts;
  json::value signoff = nullptr, stored = nullptr;
  std::uint64_t seq = 0;
  Status st = m->state_env().read([&](store::Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto s, state::get_json(t, state::kMeta, "signoff"));
    if (s) signoff = *s;
    CMG_ASSIGN_OR_RETURN(auto rs, state::get_json(t, state::kMeta, "state"));
    if (rs) stored = *rs;
    CMG_ASSIGN_OR_RETURN(auto sv, t.get(state::kMeta, "audit_seq"));
    if (sv) seq = std::strtoull(std::string(*sv).c_str(), nullptr, 10);
    // Recent alerts: the latest alert events among the last few thousand audit events.
    std::size_t looked = 0;
    return t.scan_reverse(state::kAudit, "", [&](std::string_view, std::string_view v) {
      if (v.find("\"action\":\"alert\"") != std::string_view::npos)
        if (auto e = state::parse_object(v)) alerts.push_back(std::move(*e));
      return ++looked < 5000 && alerts.size() < 20;
    });
  });
  if (!st.is_ok()) return status_response(st);
  out["report"] = std::move(report);
  out["equation"] = std::move(equation);
  out["alerts"] = std::move(alerts);
  out["signoff"] = std::move(signoff);
  out["stored_state"] = std::move(stored);
  out["audit_seq"] = seq;
  out["migration"] = m->config().name;
  {
    std::lock_guard<std::mutex> lock(job_mu);
    out["job"] = job_json();
  }
  return json_response(200, out);
}

// ---- plan ----

HttpResponse Console::Impl::api_plan(bool refresh) {
  if (!plan_cache || refresh) {
    auto p = m->plan(false, "");
    if (!p.is_ok()) return status_response(p.status());
    plan_cache = std::move(*p);
  }
  return json_response(200, *plan_cache);
}

HttpResponse Console::Impl::api_plan_approve(const json::object& body) {
  auto reviewer = text_field(body, "reviewer", true, 200);
  if (!reviewer.is_ok()) return status_response(reviewer.status());
  auto p = m->plan(true, *reviewer);
  if (!p.is_ok()) return status_response(p.status());
  plan_cache = std::move(*p);
  return json_response(200, *plan_cache);
}

// ---- queue ----

HttpResponse Console::Impl::api_queue(const HttpRequest& req) {
  QueueQuery q;
  q.reason = req.query("reason");
  q.object = req.query("object");
  q.field = req.query("field");
  q.text = req.query("text");
  q.status = req.query("status");
  q.offset = parse_size(req.query("offset"), 0, SIZE_MAX / 4);
  q.limit = parse_size(req.query("limit"), 50, 500);
  if (!q.status.empty() && q.status != "all" && q.status != "open" && q.status != "fixed" && q.status != "resolved" &&
      q.status != "skipped")
    return error_response(400, "invalid_argument", "status must be open, fixed, resolved, skipped or all");
  if (Status st = index.refresh(m->state_env()); !st.is_ok()) return status_response(st);
  QueuePage page = index.query(q);
  json::array items;
  Status st = m->state_env().read([&](store::Txn& t) -> Status {
    for (const auto& k : page.keys) {
      CMG_ASSIGN_OR_RETURN(auto item, state::get_json(t, state::kQueue, k));
      if (!item) continue;
      CMG_ASSIGN_OR_RETURN(auto rec, state::get_json(t, state::kRecords, k));
      json::object s;
      for (const char* f : {"id", "object", "source_id", "reason", "status", "stage", "queued_at", "updated_at"})
        s[f] = state::str(*item, f);
      const auto* src = item->if_contains("source");
      s["label"] = src && src->is_object() ? record_label(src->get_object()) : std::string();
      s["problem"] = first_problem(*item);
      const auto* ps = item->if_contains("problems");
      s["problems"] = ps && ps->is_array() ? ps->get_array().size() : 0;
      s["outcome"] = outcome_of(rec ? state::str(*rec, "s") : std::string());
      items.push_back(std::move(s));
    }
    return Status::ok();
  });
  if (!st.is_ok()) return status_response(st);
  auto facet = [](const std::map<std::string, std::size_t>& m) {
    json::object o;
    for (const auto& [k, v] : m) o[k] = v;
    return o;
  };
  return json_response(200, json::object{{"total", page.total},
                                         {"offset", q.offset},
                                         {"limit", q.limit},
                                         {"items", std::move(items)},
                                         {"facets", json::object{{"reason", facet(page.by_reason)},
                                                                 {"object", facet(page.by_object)},
                                                                 {"status", facet(page.by_status)}}}});
}

HttpResponse Console::Impl::api_queue_item(const std::string& id) {
  auto slash = id.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == id.size())
    return error_response(400, "invalid_argument", "id must be object/source id");
  std::string object = id.substr(0, slash), sid = id.substr(slash + 1);
  const ObjectConfig* oc = m->config().object(object);
  if (!oc) return error_response(404, "not_found", "no object named '" + object + "' in the config");
  auto rec = record_timeline(m->state_env(), m->config(), object, sid);
  if (!rec.is_ok()) return status_response(rec.status());
  json::object out = std::move(*rec);
  if (!out["queue"].is_object()) return error_response(404, "not_found", "no queue item '" + id + "'");
  const json::object& item = out["queue"].get_object();
  // Suggestions: the pipeline's own (closest picklist value…), and for an untranslated value the
  // destination values the translation table already uses.
  json::array suggestions;
  std::set<std::string> fields;
  if (const auto* ps = item.if_contains("problems"); ps && ps->is_array())
    for (const auto& pv : ps->get_array()) {
      if (!pv.is_object()) continue;
      const auto& p = pv.get_object();
      std::string field = state::str(p, "field");
      if (!field.empty()) fields.insert(field);
      if (std::string sug = state::str(p, "suggestion"); !sug.empty()) {
        // A translation's suggestion reads "value (label)": offer the value itself.
        auto open = sug.find(" (");
        if (state::str(p, "rule").rfind("translation:", 0) == 0 && open != std::string::npos && sug.back() == ')')
          sug = sug.substr(0, open);
        suggestions.push_back(json::object{{"field", field}, {"value", sug}, {"why", "closest valid value"}});
      }
      if (state::str(item, "reason") != "unmapped_value") continue;
      for (const auto& t : oc->translations) {
        // The table answers the problem when it feeds the field: offer every field it sets (a
        // deal stage needs its pipeline too).
        bool hit = t.name == field || std::find(t.to.begin(), t.to.end(), field) != t.to.end() ||
                   std::find(t.from.begin(), t.from.end(), field) != t.from.end();
        if (!hit) continue;
        for (std::size_t i = 0; i < t.to.size(); ++i) {
          fields.insert(t.to[i]);
          std::set<std::string> values;
          for (const auto& [k, row] : t.table)
            if (i < row.size()) values.insert(row[i]);
          for (const auto& v : values)
            suggestions.push_back(
                json::object{{"field", t.to[i]}, {"value", v}, {"why", "used in translation '" + t.name + "'"}});
        }
      }
    }
  out["suggestions"] = std::move(suggestions);
  out["fix_fields"] = state::to_array(std::vector<std::string>(fields.begin(), fields.end()));
  return json_response(200, out);
}

HttpResponse Console::Impl::api_queue_review(const json::object& body, bool fix) {
  auto reviewer = text_field(body, "reviewer", true, 200);
  if (!reviewer.is_ok()) return status_response(reviewer.status());
  auto note = text_field(body, "note", !fix, 2000);
  if (!note.is_ok()) return status_response(note.status());
  json::object set;
  if (fix) {
    const auto* sv = body.if_contains("set");
    if (sv && !sv->is_object())
      return error_response(400, "invalid_argument", "\"set\" must be an object field → value");
    if (sv)
      for (const auto& [k, v] : sv->get_object()) {
        if (k.empty() || k.size() > 200)
          return error_response(400, "invalid_argument", "a field name in \"set\" is empty or too long");
        if (!(v.is_string() || v.is_number() || v.is_bool() || v.is_null()))
          return error_response(400, "invalid_argument",
                                "\"set." + std::string(k) + "\" must be a string, number, boolean or null");
        set[k] = v;
      }
  }
  std::vector<QueueFilter> filters;
  const auto* idv = body.if_contains("id");
  const auto* fv = body.if_contains("filter");
  if (idv && idv->is_string()) {
    QueueFilter f;
    f.id = std::string(idv->get_string());
    if (f.id.find('/') == std::string::npos)
      return error_response(400, "invalid_argument", "id must be object/source id");
    filters.push_back(std::move(f));
  } else if (fv && fv->is_object()) {
    const auto& fo = fv->get_object();
    QueueQuery q;
    q.reason = state::str(fo, "reason");
    q.object = state::str(fo, "object");
    q.field = state::str(fo, "field");
    q.text = state::str(fo, "text");
    q.status = state::str(fo, "status");
    if (q.reason.empty() && q.object.empty() && q.field.empty() && q.text.empty())
      return error_response(400, "invalid_argument", "a bulk action needs a filter (reason, object, field or text)");
    if (q.text.empty()) {
      QueueFilter f;
      f.reason = q.reason;
      f.object = q.object;
      f.field = q.field;
      f.status = q.status;
      filters.push_back(std::move(f));
    } else {
      // The console's text search is its own (case-insensitive, without history): act on exactly
      // the items it shows, one by one, and refuse what would take too long for one request.
      if (Status st = index.refresh(m->state_env()); !st.is_ok()) return status_response(st);
      constexpr std::size_t kCap = 1000;
      auto keys = index.matching_keys(q, kCap);
      if (keys.size() > kCap)
        return error_response(400, "too_many",
                              "a bulk action with a text filter is limited to 1000 items: narrow the filter");
      for (const auto& k : keys) {
        auto parts = store::split_key(k);
        QueueFilter f;
        f.id = std::string(parts[0]) + "/" + std::string(parts.size() > 1 ? parts[1] : std::string_view{});
        filters.push_back(std::move(f));
      }
    }
  } else {
    return error_response(400, "invalid_argument", "give \"id\" (object/source id) or \"filter\"");
  }
  std::int64_t n = 0;
  for (const auto& f : filters) {
    auto r = fix ? m->queue_fix(f, set, *reviewer, *note) : m->queue_skip(f, *reviewer, *note);
    if (!r.is_ok()) return status_response(r.status());
    n += *r;
  }
  return json_response(200, json::object{{fix ? "fixed" : "skipped", n}});
}

// ---- records and audit ----

HttpResponse Console::Impl::api_record(const std::string& id) {
  auto slash = id.find('/');
  if (slash == std::string::npos) return error_response(400, "invalid_argument", "id must be object/source id");
  auto r = record_timeline(m->state_env(), m->config(), id.substr(0, slash), id.substr(slash + 1));
  if (!r.is_ok()) return status_response(r.status());
  return json_response(200, *r);
}

HttpResponse Console::Impl::api_search(const std::string& q) {
  if (q.size() > 500) return error_response(400, "invalid_argument", "the search text is too long");
  std::vector<std::string> candidates;
  if (q.find('@') != std::string::npos) {
    // Queued records are found by their email through the queue index (in memory), not by a scan.
    if (Status st = index.refresh(m->state_env()); !st.is_ok()) return status_response(st);
    QueueQuery qq;
    qq.text = normalize_email(q).value_or(q);
    qq.status = "all";
    candidates = index.matching_keys(qq, 50);
  }
  auto r = search_records(m->state_env(), m->config(), q, 50, candidates);
  if (!r.is_ok()) return status_response(r.status());
  return json_response(200, json::object{{"q", q}, {"matches", std::move(*r)}});
}

HttpResponse Console::Impl::api_events(const HttpRequest& req) {
  std::size_t limit = parse_size(req.query("limit"), 100, 1000);
  std::uint64_t before = parse_size(req.query("before"), 0, SIZE_MAX / 4);
  json::array events;
  std::uint64_t total = 0, lo = 0;
  Status st = m->state_env().read([&](store::Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto sv, t.get(state::kMeta, "audit_seq"));
    total = sv ? std::strtoull(std::string(*sv).c_str(), nullptr, 10) : 0;
    std::uint64_t hi = before ? std::min<std::uint64_t>(before - 1, total) : total;
    if (hi == 0) return Status::ok();
    // Sequences are dense (1, 2, …): the page is the key range [lo, hi], read forward from lo.
    lo = hi >= limit ? hi - limit + 1 : 1;
    std::string end = store::be64(hi);
    CMG_RETURN_IF_ERROR(t.scan(
        state::kAudit, "",
        [&](std::string_view k, std::string_view v) {
          if (k > end) return false;
          if (auto e = state::parse_object(v)) events.push_back(std::move(*e));
          return true;
        },
        store::be64(lo - 1)));
    return Status::ok();
  });
  if (!st.is_ok()) return status_response(st);
  std::reverse(events.begin(), events.end());
  return json_response(200, json::object{{"total", total},
                                         {"events", std::move(events)},
                                         {"next_before", lo > 1 ? json::value(lo) : json::value(nullptr)}});
}

HttpResponse Console::Impl::api_export(const HttpRequest& req) {
  std::string format = req.query("format");
  if (format.empty()) format = "jsonl";
  if (format != "jsonl" && format != "csv")
    return error_response(400, "invalid_argument", "format must be jsonl or csv");
  std::string id = req.query("id");
  std::string out = format == "csv" ? csv_header() : std::string();
  auto emit = [&](const json::object& e) { out += format == "csv" ? csv_line(e) : json::serialize(e) + "\n"; };
  std::string filename = "audit";
  Status st;
  if (!id.empty()) {
    auto slash = id.find('/');
    if (slash == std::string::npos) return error_response(400, "invalid_argument", "id must be object/source id");
    st = m->audit(id, [&](const json::object& e) {
      emit(e);
      return true;
    });
    filename += "-" + id.substr(0, slash);
    for (char c : id.substr(slash + 1)) filename += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  } else {
    // The whole log can be millions of events: export it in ranges (the CLI streams it all).
    std::uint64_t from = std::max<std::uint64_t>(1, parse_size(req.query("from"), 1, SIZE_MAX / 4));
    std::size_t limit = parse_size(req.query("limit"), 100000, 100000);
    st = m->state_env().read([&](store::Txn& t) -> Status {
      std::size_t n = 0;
      return t.scan(
          state::kAudit, "",
          [&](std::string_view, std::string_view v) {
            if (auto e = state::parse_object(v)) emit(*e);
            return ++n < limit;
          },
          store::be64(from - 1));
    });
    filename += "-from-" + std::to_string(from);
  }
  if (!st.is_ok()) return status_response(st);
  HttpResponse r;
  r.body = std::move(out);
  r.set_header("Content-Type", format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8");
  r.set_header("Content-Disposition", "attachment; filename=\"" + filename + "." + format + "\"");
  return r;
}

// ---- jobs: reprocess and reconcile ----

HttpResponse Console::Impl::api_reconcile_get() {
  json::object out{{"report", last_reconcile}};
  std::lock_guard<std::mutex> lock(job_mu);
  out["job"] = job_json();
  return json_response(200, out);
}

void Console::Impl::poll_job_locked() {
  if (!job || job->state != "running" || job->pid <= 0) return;
  int status = 0;
  pid_t r = ::waitpid(job->pid, &status, WNOHANG);
  if (r == 0) return;
  job->exit_code = r < 0 ? 127 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  job->pid = -1;
  job->finished_at = format_timestamp_ms(state::now_ms());
  std::string out = read_file(job->out_path), err = read_file(job->err_path);
  boost::system::error_code ec;
  json::value v = json::parse(out, ec);
  if (!ec && v.is_object()) job->report = v;
  // Exit codes of DESIGN §5: 0 complete, 1 incomplete, 3 halted and 5 paused are reports; 4 locked.
  if (job->exit_code == 4) {
    job->state = "locked";
  } else if (job->report.is_object()) {
    job->state = "finished";
    if (job->kind == "reconcile") last_reconcile = json::object{{"at", job->finished_at}, {"report", job->report}};
  } else {
    job->state = "failed";
  }
  // stderr holds the CLI's one-line errors and ALERT lines; keep its tail for the UI.
  if (err.size() > 2000) err = err.substr(err.size() - 2000);
  job->message = err;
  std::error_code fec;
  fs::remove(job->out_path, fec);
  fs::remove(job->err_path, fec);
}

json::value Console::Impl::job_json() {
  poll_job_locked();
  return job ? json::value(job->to_json()) : json::value(nullptr);
}

HttpResponse Console::Impl::start_job(const std::string& kind) {
  std::unique_lock<std::mutex> jl(job_mu);
  poll_job_locked();
  if (job && job->state == "running")
    return error_response(409, "busy", "a " + job->kind + " started from this console is still running");
  // A run in progress holds the run lock: report it instead of starting something that would wait.
  auto rep = m->status();
  if (rep.is_ok() && rep->state == "running")
    return error_response(409, "locked",
                          "a run is in progress (it holds the migration's run lock); try again when it ends");
  Job j;
  j.id = ++job_seq;
  j.kind = kind;
  j.state = "running";
  j.started_at = format_timestamp_ms(state::now_ms());
  if (opts.job_command.empty()) {
    // In-process: the request returns with the job done (the state mutex is held meanwhile).
    Result<Report> r = kind == "reprocess" ? m->reprocess(RunOptions{}) : m->reconcile(RunOptions{});
    j.finished_at = format_timestamp_ms(state::now_ms());
    if (r.is_ok()) {
      j.state = "finished";
      j.report = r->to_json();
      j.exit_code = r->state == "complete" ? 0 : r->state == "halted" ? 3 : r->state == "paused" ? 5 : 1;
      if (kind == "reconcile") last_reconcile = json::object{{"at", j.finished_at}, {"report", j.report}};
    } else {
      j.state = r.status().code() == Code::kLocked ? "locked" : "failed";
      j.message = r.status().message();
      j.exit_code = r.status().code() == Code::kLocked ? 4 : 2;
    }
    job = j;
    if (j.state == "locked") return error_response(409, "locked", j.message);
    if (j.state == "failed") return status_response(r.status());
    return json_response(200, json::object{{"job", job->to_json()}});
  }
  j.out_path = scratch + "/job-" + std::to_string(j.id) + ".out";
  j.err_path = scratch + "/job-" + std::to_string(j.id) + ".err";
  std::vector<std::string> args = opts.job_command;
  if (kind == "reprocess") {
    args.insert(args.end(), {"queue", "reprocess"});
  } else {
    args.push_back("reconcile");
  }
  args.insert(args.end(), {"-c", opts.config_path, "--json"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, j.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, j.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  // The server blocks SIGINT/SIGTERM in its threads (it waits for them): the child must not inherit that.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return error_response(500, "internal", std::string("cannot start ") + args[0] + ": " + std::strerror(rc));
  j.pid = pid;
  job = j;
  return json_response(202, json::object{{"job", job->to_json()}});
}

// ---------------------------------------------------------------------------------------------
// Console

Result<std::unique_ptr<Console>> Console::create(std::unique_ptr<Migration> migration, ConsoleOptions options) {
  if (!migration) return invalid_argument("Console::create: migration is null");
  if (!options.config_path.empty() && !options.reopen)
    return invalid_argument("Console::create: config_path needs a reopen function");
  if (!options.job_command.empty() && options.config_path.empty())
    return invalid_argument("Console::create: job_command needs config_path (the child reads the config)");
  auto impl = std::make_unique<Impl>();
  impl->token = options.token.empty() ? random_token() : options.token;
  impl->csrf = random_token();
  std::string instance = random_token(4);
  if (impl->token.empty() || impl->csrf.empty() || instance.empty())
    return Status(Code::kInternal, "no random bytes from the system for the console's tokens");
  // Cookies ignore ports: a per-instance name keeps two consoles on one host from overwriting each other's.
  impl->cookie_name = "cmg_console_" + instance;
  if (options.scratch_dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "crmmigrate-console-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      return io_error("cannot create a scratch directory under " + fs::temp_directory_path().string());
    impl->scratch = tmpl;
    impl->own_scratch = true;
  } else {
    impl->scratch = options.scratch_dir;
  }
  impl->m = std::move(migration);
  if (!options.config_path.empty()) {
    std::error_code ec;
    auto mt = fs::last_write_time(options.config_path, ec);
    if (!ec) impl->config_mtime = mt;
  }
  impl->opts = std::move(options);
  return std::unique_ptr<Console>(new Console(std::move(impl)));
}

Console::Console(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Console::~Console() = default;

HttpResponse Console::handle(const HttpRequest& request) { return impl_->handle(request); }
const std::string& Console::token() const { return impl_->token; }
std::string Console::entry_path() const { return "/?token=" + impl_->token; }

}  // namespace cmg::web
