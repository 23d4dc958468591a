// HubSpot connector (see crmmigrate/connectors/hubspot.hpp). Request building and result mapping
// live here; body parsing is in parse.cpp (pure functions, fuzzable).
#include "crmmigrate/connectors/hubspot.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include "connectors/hubspot/hubspot_parse.hpp"
#include "crmmigrate/core/dedup.hpp"
#include "crmmigrate/net/http_client.hpp"

namespace cmg::hubspot {

namespace json = boost::json;

namespace {

constexpr std::size_t kBatchMax = 100;
// The search API answers at most 10,000 results per query (after + limit <= 10,000).
constexpr std::int64_t kSearchCap = 10000;

const std::vector<std::string>& default_objects() {
  static const std::vector<std::string> k = {"companies", "contacts", "deals", "notes",
                                             "calls",     "meetings", "tasks", "emails"};
  return k;
}

std::vector<std::string> default_associations(const std::string& o) {
  if (o == "contacts") return {"companies"};
  if (o == "deals") return {"companies", "contacts"};
  if (o == "notes") return {"contacts", "deals", "companies"};
  if (o == "calls" || o == "meetings" || o == "tasks" || o == "emails") return {"contacts", "deals"};
  return {};
}

// What HubSpot refuses to create without (the UI and API both insist on these).
std::vector<std::string> default_required(const std::string& o) {
  if (o == "deals") return {"dealname", "pipeline", "dealstage"};
  if (o == "notes") return {"hs_note_body", "hs_timestamp"};
  if (o == "tasks") return {"hs_timestamp", "hs_task_subject"};
  if (o == "calls" || o == "meetings" || o == "emails") return {"hs_timestamp"};
  return {};
}

bool is_numeric_id(std::string_view s) {
  return !s.empty() && s.size() <= 19 && s.find_first_not_of("0123456789") == std::string_view::npos;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// HubSpot property values are strings.
json::value property_value(const json::value& v) {
  if (v.is_string()) return v;
  if (v.is_null()) return json::string();
  if (const auto* a = v.if_array()) {
    std::vector<std::string> parts;
    for (const auto& e : *a) parts.push_back(value_to_text(e));
    return json::string(join(parts, ";"));
  }
  return json::string(value_to_text(v));
}

constexpr std::string_view kAssocPrefix = "associations.";

bool is_assoc_field(std::string_view f) { return f.substr(0, kAssocPrefix.size()) == kAssocPrefix; }

Result<std::vector<std::string>> string_list(const json::value& v, const std::string& path) {
  const auto* a = v.if_array();
  if (!a) return config_error(path + ": expected an array of strings");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < a->size(); ++i) {
    const auto* s = (*a)[i].if_string();
    if (!s || s->empty()) return config_error(path + "[" + std::to_string(i) + "]: expected a non-empty string");
    out.emplace_back(*s);
  }
  return out;
}

}  // namespace

net::QuotaLimits default_limits() {
  net::QuotaLimits l;
  l.burst_requests = 100;
  l.burst_window_ms = 10000;
  l.daily_requests = 250000;
  return l;
}

Result<Options> options_from_json(const json::value& v, const std::string& path, const std::string& base_dir) {
  const auto* o = v.if_object();
  if (!o) return config_error(path + ": expected an object");
  Options out;
  out.limits = default_limits();
  for (const auto& [k, val] : *o) {
    std::string at = path + "." + std::string(k);
    auto need_string = [&]() -> Result<std::string> {
      if (!val.is_string() || val.get_string().empty()) return config_error(at + ": expected a non-empty string");
      return std::string(val.get_string());
    };
    if (k == "base_url") {
      CMG_ASSIGN_OR_RETURN(out.base_url, need_string());
    } else if (k == "token_env") {
      CMG_ASSIGN_OR_RETURN(out.token_env, need_string());
    } else if (k == "ca_file") {
      CMG_ASSIGN_OR_RETURN(out.ca_file, need_string());
      if (out.ca_file.front() != '/' && !base_dir.empty()) out.ca_file = base_dir + "/" + out.ca_file;
    } else if (k == "limits") {
      CMG_ASSIGN_OR_RETURN(out.limits, net::quota_limits_from_json(val, at, out.limits));
    } else if (k == "max_connections" || k == "timeout_ms") {
      if (!val.is_int64() || val.get_int64() < 1 || val.get_int64() > 3600000)
        return config_error(at + ": expected a positive whole number");
      if (k == "max_connections") {
        if (val.get_int64() > 64) return config_error(at + ": at most 64");
        out.max_connections = static_cast<unsigned>(val.get_int64());
      } else {
        out.timeout = std::chrono::milliseconds(val.get_int64());
      }
    } else if (k == "objects") {
      const auto* objs = val.if_object();
      if (!objs) return config_error(at + ": expected an object (object name → options)");
      for (const auto& [name, ov] : *objs) {
        std::string oat = at + "." + std::string(name);
        const auto* oo = ov.if_object();
        if (!oo) return config_error(oat + ": expected an object");
        ObjectOptions obj;
        for (const auto& [ok, x] : *oo) {
          std::string kat = oat + "." + std::string(ok);
          if (ok == "id_property" || ok == "updated_property") {
            if (!x.is_string() || x.get_string().empty()) return config_error(kat + ": expected a non-empty string");
            (ok == "id_property" ? obj.id_property : obj.updated_property) = std::string(x.get_string());
          } else if (ok == "properties") {
            CMG_ASSIGN_OR_RETURN(obj.properties, string_list(x, kat));
          } else if (ok == "associations") {
            CMG_ASSIGN_OR_RETURN(obj.associations, string_list(x, kat));
            obj.associations_set = true;
          } else if (ok == "required") {
            CMG_ASSIGN_OR_RETURN(obj.required, string_list(x, kat));
          } else {
            return config_error(kat + ": unknown key (allowed: id_property, properties, associations, updated_property, required)");
          }
        }
        out.objects.emplace(std::string(name), std::move(obj));
      }
    } else {
      return config_error(at + ": unknown key (allowed: base_url, token_env, ca_file, objects, limits, max_connections, timeout_ms)");
    }
  }
  if (out.token_env.empty())
    return config_error(path + ".token_env: required (the environment variable that holds the HubSpot private-app token)");
  const char* token = std::getenv(out.token_env.c_str());
  if (!token || !*token)
    return config_error(path + ".token_env: the environment variable " + out.token_env + " is not set or empty");
  out.token = token;
  return out;
}

// ---------------------------------------------------------------------------------------------

namespace {

// One scheduler per HubSpot account in this process: the same origin, token and declared limits
// (and quota clock). Connectors made one after the other for the same account — a run, then the
// reprocess of its queue; the console beside a run — share its burst log, so the second does not
// start from an empty log while the first one's requests are still in the platform's window (it
// would take a 429 for it). A scheduler is dropped once idle (nothing of ours left in its window).
std::shared_ptr<net::QuotaScheduler> account_quota(const Options& o) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<net::QuotaScheduler>> by_account;
  const net::QuotaLimits& l = o.limits;
  std::string key = o.base_url + '\x1f' + std::to_string(std::hash<std::string>{}(o.token)) + '\x1f' +
                    std::to_string(l.burst_requests) + '/' + std::to_string(l.burst_window_ms) + '/' +
                    std::to_string(l.daily_requests) + '/' + std::to_string(l.reserve) + '/' +
                    std::to_string(l.margin_ms) + '/' + std::to_string(l.max_wait_ms) + '\x1f' +
                    std::to_string(reinterpret_cast<std::uintptr_t>(o.clock.get()));
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = by_account.begin(); it != by_account.end();) {
    if (it->first != key && it->second.use_count() == 1 && it->second->idle()) it = by_account.erase(it);
    else ++it;
  }
  auto& q = by_account[key];
  if (!q) q = std::make_shared<net::QuotaScheduler>(l, o.clock);
  return q;
}

}  // namespace

struct Connector::Impl {
  Options opts;
  std::unique_ptr<net::HttpClient> http;
  std::shared_ptr<net::QuotaScheduler> account;  // shared with other connectors to the same account
  net::QuotaScheduler& quota;
  net::QuotaStats stats_at_start;  // quota_stats() counts from here
  std::mutex mu;
  std::optional<Schema> schema_cache;
  std::atomic<std::int64_t> last_retry_after{0};

  Impl(Options o, std::unique_ptr<net::HttpClient> h)
      : opts(std::move(o)), http(std::move(h)), account(account_quota(opts)), quota(*account),
        stats_at_start(quota.stats()) {}

  // ---- objects and their options ----

  std::vector<std::string> object_names() const {
    if (opts.objects.empty()) return default_objects();
    std::vector<std::string> out;
    for (const auto& [k, v] : opts.objects) out.push_back(k);
    return out;
  }
  ObjectOptions object_options(const std::string& o) const {
    ObjectOptions oo;
    if (auto it = opts.objects.find(o); it != opts.objects.end()) oo = it->second;
    if (!oo.associations_set) oo.associations = default_associations(o);
    if (oo.required.empty()) oo.required = default_required(o);
    if (oo.updated_property.empty()) oo.updated_property = o == "contacts" ? "lastmodifieddate" : "hs_lastmodifieddate";
    return oo;
  }
  Status known_object(std::string_view o) const {
    for (const auto& n : object_names())
      if (n == o) return Status::ok();
    return invalid_argument("hubspot: unknown object '" + std::string(o) + "' (configured: " + join(object_names(), ", ") + ")");
  }

  // ---- secrets ----

  std::string redact(std::string s) const {
    if (opts.token.size() >= 4) {
      for (auto p = s.find(opts.token); p != std::string::npos; p = s.find(opts.token, p))
        s.replace(p, opts.token.size(), "[redacted]");
    }
    return s;
  }
  Status redact(const Status& s) const { return s.is_ok() ? s : Status(s.code(), redact(s.message())); }

  // ---- requests ----

  // One request through the quota. Transport failures come back as a Status (kUnavailable).
  Result<net::HttpResponse> send(const std::string& method, const std::string& target, const std::string& body,
                                 bool* maybe_sent = nullptr) {
    if (maybe_sent) *maybe_sent = false;
    std::uint64_t ticket = 0;
    CMG_RETURN_IF_ERROR(quota.acquire(&ticket));
    net::HttpRequest req;
    req.method = method;
    req.target = target;
    if (!body.empty()) {
      req.headers.emplace_back("Content-Type", "application/json");
      req.body = body;
    }
    auto r = http->send(req, maybe_sent);
    if (!r.is_ok()) return redact(Status(r.status().code(), "hubspot: " + r.status().message()));
    quota.observe(r->status, r->headers, ticket);
    return r;
  }

  std::string what(const std::string& method, const std::string& target) const {
    return "hubspot " + method + " " + target.substr(0, target.find('?'));
  }

  static bool transient(int status) { return status == 429 || (status >= 500 && status != 501); }

  Status http_error(const net::HttpResponse& r, const std::string& w) {
    BatchError e = parse_error_body(r.body);
    std::string detail = "HTTP " + std::to_string(r.status);
    if (!e.category.empty()) detail += " " + e.category;
    if (!e.message.empty()) detail += ": " + e.message.substr(0, 300);
    if (r.status == 401 || r.status == 403)
      return Status(Code::kPermissionDenied,
                    redact(w + ": HubSpot refused the token in $" + opts.token_env + " (" + detail + ")"));
    if (transient(r.status)) {
      std::int64_t ra = net::parse_retry_after_ms(r.header("Retry-After"));
      last_retry_after = ra > 0 ? ra : 0;
      return Status(Code::kUnavailable, redact(w + ": " + detail));
    }
    if (r.status == 404) return not_found(redact(w + ": " + detail));
    return Status(Code::kInvalidArgument, redact(w + ": " + detail));
  }

  // A read-only call: retried on 429/5xx/transport errors (the quota waits out Retry-After), then
  // any non-2xx status becomes a Status.
  Result<net::HttpResponse> read_call(const std::string& method, const std::string& target, const std::string& body) {
    std::string w = what(method, target);
    Status last;
    for (int attempt = 1; attempt <= std::max(1, opts.max_read_attempts); ++attempt) {
      auto r = send(method, target, body);
      if (r.is_ok() && r->status >= 200 && r->status < 300) {
        last_retry_after = 0;
        return r;
      }
      if (r.is_ok()) {
        last = http_error(*r, w);
        if (!transient(r->status)) return last;
      } else {
        last = r.status();
        if (last.code() != Code::kUnavailable || last.message().find("budget") != std::string::npos) return last;
        last_retry_after = 0;
      }
      if (attempt < opts.max_read_attempts)
        quota.defer(std::min<std::int64_t>(200LL << (attempt - 1), 10000));
    }
    return last;
  }

  // ---- schema ----

  Result<Schema> schema() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (schema_cache) return *schema_cache;
    }
    Schema s;
    std::string after;
    do {
      std::string target = "/crm/v3/owners?limit=100&archived=false";
      if (!after.empty()) target += "&after=" + net::url_encode(after);
      CMG_ASSIGN_OR_RETURN(auto r, read_call("GET", target, ""));
      std::string next;
      CMG_ASSIGN_OR_RETURN(auto users, parse_owners(r.body, next, what("GET", target)));
      for (auto& u : users) s.users.push_back(std::move(u));
      if (next == after) break;  // a server repeating its cursor would loop forever
      after = next;
    } while (!after.empty());

    for (const auto& name : object_names()) {
      ObjectOptions oo = object_options(name);
      std::string target = "/crm/v3/properties/" + net::url_encode(name);
      CMG_ASSIGN_OR_RETURN(auto r, read_call("GET", target, ""));
      CMG_ASSIGN_OR_RETURN(auto fields, parse_properties(r.body, what("GET", target)));
      ObjectSchema os;
      os.name = name;
      os.fields = std::move(fields);
      for (auto& f : os.fields)
        if (std::find(oo.required.begin(), oo.required.end(), f.name) != oo.required.end()) f.required = true;
      if (name == "deals") {
        CMG_ASSIGN_OR_RETURN(auto pr, read_call("GET", "/crm/v3/pipelines/deals", ""));
        CMG_ASSIGN_OR_RETURN(auto pipes, parse_pipelines(pr.body, what("GET", "/crm/v3/pipelines/deals")));
        for (auto& f : os.fields) {
          if (f.name == "pipeline") {
            f.type = FieldType::kEnum;
            f.options.clear();
            for (const auto& p : pipes) f.options.push_back({p.id, p.label});
          } else if (f.name == "dealstage") {
            f.type = FieldType::kEnum;
            f.options.clear();
            f.options_by = "pipeline";
            for (const auto& p : pipes) f.options_by_value[p.id] = p.stages;
          }
        }
      }
      for (const auto& to : oo.associations) {
        FieldSchema f;
        f.name = std::string(kAssocPrefix) + to;
        f.label = "Associated " + to;
        f.type = FieldType::kReference;
        f.references = to;
        os.fields.push_back(std::move(f));
      }
      os.id_property = oo.id_property;
      if (os.id_property.empty()) {
        std::vector<std::string> unique;
        for (const auto& f : os.fields)
          if (f.unique && !f.read_only && f.name != "hs_object_id" && f.name != "email") unique.push_back(f.name);
        if (unique.size() == 1) os.id_property = unique.front();
      } else if (!os.field(os.id_property)) {
        return config_error("hubspot: objects." + name + ".id_property: HubSpot has no property '" + os.id_property + "'");
      }
      s.objects.emplace(name, std::move(os));
    }
    std::lock_guard<std::mutex> lock(mu);
    schema_cache = s;
    return s;
  }

  Result<const ObjectSchema*> object_schema(std::string_view object, Schema& holder) {
    CMG_RETURN_IF_ERROR(known_object(object));
    CMG_ASSIGN_OR_RETURN(holder, schema());
    const ObjectSchema* os = holder.object(object);
    if (!os) return invalid_argument("hubspot: unknown object '" + std::string(object) + "'");
    return os;
  }

  // Properties to ask for and association targets to fetch, from ReadOptions::fields.
  void chosen(const ObjectSchema& os, const std::vector<std::string>& fields, std::vector<std::string>& props,
              std::vector<std::string>& assocs) {
    ObjectOptions oo = object_options(os.name);
    props.clear();
    assocs.clear();
    if (fields.empty()) {
      if (!oo.properties.empty()) props = oo.properties;
      else
        for (const auto& f : os.fields)
          if (!is_assoc_field(f.name)) props.push_back(f.name);
      assocs = oo.associations;
    } else {
      for (const auto& f : fields) {
        if (is_assoc_field(f)) assocs.push_back(f.substr(kAssocPrefix.size()));
        else props.push_back(f);
      }
    }
    if (std::find(props.begin(), props.end(), oo.updated_property) == props.end() && os.field(oo.updated_property))
      props.push_back(oo.updated_property);
  }

  // Associated ids of `ids` in each target of `assocs` (v4 batch read, 100 ids per request; the
  // requests side by side on up to max_connections connections). out[t][id] = ids in target t.
  using AssocMaps = std::vector<std::map<std::string, std::vector<std::string>>>;
  Status fetch_associations(const std::string& object, const std::vector<std::string>& ids,
                            const std::vector<std::string>& assocs, AssocMaps& out) {
    out.assign(assocs.size(), {});
    if (ids.empty() || assocs.empty()) return Status::ok();
    struct Part {
      std::size_t target;
      std::size_t from;
      std::map<std::string, std::vector<std::string>> found;
    };
    std::vector<Part> parts;
    for (std::size_t t = 0; t < assocs.size(); ++t)
      for (std::size_t i = 0; i < ids.size(); i += kBatchMax) parts.push_back({t, i, {}});
    std::vector<std::function<Status()>> tasks;
    for (auto& part : parts) {
      tasks.push_back([&, p = &part]() -> Status {
        std::string target = "/crm/v4/associations/" + net::url_encode(object) + "/" +
                             net::url_encode(assocs[p->target]) + "/batch/read";
        json::array inputs;
        for (std::size_t j = p->from; j < std::min(ids.size(), p->from + kBatchMax); ++j)
          inputs.push_back(json::object{{"id", ids[j]}});
        CMG_ASSIGN_OR_RETURN(auto r, send_post_tolerant(target, json::serialize(json::object{{"inputs", std::move(inputs)}})));
        CMG_ASSIGN_OR_RETURN(p->found, parse_association_batch(r.body, what("POST", target)));
        return Status::ok();
      });
    }
    CMG_RETURN_IF_ERROR(run_parallel(tasks));
    for (auto& part : parts)
      for (auto& [id, to] : part.found) out[part.target][id] = std::move(to);
    return Status::ok();
  }

  // Sets `associations.<to>` of each record from maps fetched by fetch_associations (the first,
  // i.e. smallest, associated id — what the sandbox and the pipeline keep as the reference).
  static void apply_associations(std::vector<Record>& recs, const std::vector<std::string>& assocs, const AssocMaps& maps) {
    for (std::size_t t = 0; t < assocs.size() && t < maps.size(); ++t)
      for (auto& rec : recs) {
        auto it = maps[t].find(rec.id);
        if (it != maps[t].end() && !it->second.empty())
          rec.fields[std::string(kAssocPrefix) + assocs[t]] = it->second.front();
      }
  }

  // Fills `associations.<to>` of each record.
  Status attach_associations(const std::string& object, std::vector<Record>& recs,
                             const std::vector<std::string>& assocs) {
    if (recs.empty() || assocs.empty()) return Status::ok();
    std::vector<std::string> ids;
    for (const auto& r : recs) ids.push_back(r.id);
    AssocMaps maps;
    CMG_RETURN_IF_ERROR(fetch_associations(object, ids, assocs, maps));
    apply_associations(recs, assocs, maps);
    return Status::ok();
  }

  // POST read that accepts 207 (some inputs missing) as success.
  Result<net::HttpResponse> send_post_tolerant(const std::string& target, const std::string& body) {
    return read_call("POST", target, body);
  }

  void use_updated_property(const std::string& object, std::vector<Record>& recs) {
    std::string up = object_options(object).updated_property;
    for (auto& r : recs) {
      if (const auto* v = r.fields.if_contains(up); v && v->is_string()) {
        std::int64_t t = parse_hubspot_time(v->get_string());
        if (t) r.updated_at = t;
      }
    }
  }

  // Batch read by id (or by `id_property` values); results keyed by the id/value asked for.
  Result<std::vector<Record>> batch_read(const std::string& object, const std::vector<std::string>& keys,
                                         const std::string& id_property, const std::vector<std::string>& props) {
    std::vector<Record> out;
    std::string target = "/crm/v3/objects/" + net::url_encode(object) + "/batch/read";
    for (std::size_t i = 0; i < keys.size(); i += kBatchMax) {
      json::array inputs;
      for (std::size_t j = i; j < std::min(keys.size(), i + kBatchMax); ++j) inputs.push_back(json::object{{"id", keys[j]}});
      json::array pj;
      for (const auto& p : props) pj.push_back(json::string(p));
      json::object body{{"properties", std::move(pj)}, {"inputs", std::move(inputs)}};
      if (!id_property.empty()) body["idProperty"] = id_property;
      CMG_ASSIGN_OR_RETURN(auto r, send_post_tolerant(target, json::serialize(body)));
      CMG_ASSIGN_OR_RETURN(auto br, parse_batch_response(r.body, what("POST", target)));
      for (auto& res : br.results) {
        Record rec;
        rec.object = object;
        rec.id = res.id;
        rec.fields = std::move(res.properties);
        rec.updated_at = res.updated_at;
        out.push_back(std::move(rec));
      }
    }
    use_updated_property(object, out);
    return out;
  }

  Result<std::vector<Record>> search_all(const std::string& object, const json::array& filter_groups,
                                         const std::vector<std::string>& props) {
    std::vector<Record> out;
    std::string target = "/crm/v3/objects/" + net::url_encode(object) + "/search";
    std::string after;
    for (;;) {
      json::array pj;
      for (const auto& p : props) pj.push_back(json::string(p));
      json::object body{{"filterGroups", filter_groups},
                        {"sorts", json::array{json::object{{"propertyName", "hs_object_id"}, {"direction", "ASCENDING"}}}},
                        {"properties", std::move(pj)},
                        {"limit", 100}};
      if (!after.empty()) body["after"] = after;
      CMG_ASSIGN_OR_RETURN(auto r, read_call("POST", target, json::serialize(body)));
      CMG_ASSIGN_OR_RETURN(auto page, parse_object_page(r.body, object, what("POST", target)));
      for (auto& rec : page.records) out.push_back(std::move(rec));
      if (page.after.empty() || page.after == after) break;
      char* end = nullptr;
      long long a = std::strtoll(page.after.c_str(), &end, 10);
      if (a + 100 > kSearchCap) {
        // Restart past the last id instead of paging into the cap.
        return internal_error(what("POST", target) + ": more than 10,000 matches for one find() chunk");
      }
      after = page.after;
    }
    use_updated_property(object, out);
    return out;
  }

  // ---- writes ----

  struct Pending {
    std::size_t index;  // into ops / results
  };

  void fail_all(std::vector<WriteResult>& results, const std::vector<std::size_t>& idx, int status, bool retryable,
                bool unknown, int retry_after, const std::string& message) {
    for (auto i : idx) {
      WriteResult& w = results[i];
      w = WriteResult{};
      w.outcome = WriteResult::Outcome::kFailed;
      w.status = status;
      w.retryable = retryable;
      w.outcome_unknown = unknown;
      w.retry_after_ms = retry_after;
      w.message = redact(message);
    }
  }

  void apply_error(WriteResult& w, const WriteOp& op, const BatchError& e, int http_status) {
    w = WriteResult{};
    w.outcome = WriteResult::Outcome::kFailed;
    if (e.status == 409 || http_status == 409 || !e.existing_id.empty()) w.status = 409;
    else if (e.category == "OBJECT_NOT_FOUND" || http_status == 404) w.status = 404;
    else w.status = http_status >= 400 && http_status < 500 ? http_status : 400;
    w.existing_id = w.status == 409 ? e.existing_id : std::string();
    w.message = redact((e.category.empty() ? "" : e.category + ": ") + e.message.substr(0, 500));
    for (auto f : e.fields) {
      if (const auto* v = op.fields.if_contains(f.field)) f.value = value_to_text(*v);
      f.message = redact(f.message);
      w.errors.push_back(std::move(f));
    }
    if (w.status == 409 && w.errors.empty()) {
      FieldError f;
      f.code = "DUPLICATE_VALUE";
      f.message = w.message;
      w.errors.push_back(std::move(f));
    }
  }

  json::object properties_of(const WriteOp& op) {
    json::object p;
    for (const auto& [k, v] : op.fields)
      if (!is_assoc_field(k)) p[k] = property_value(v);
    return p;
  }

  // Sends ops[idx] as one batch (upsert or update) and fills their results; bisects a batch the
  // platform refused as a whole without saying which input was wrong.
  Status send_batch(const std::string& object, const ObjectSchema& os, const std::vector<WriteOp>& ops,
                    const std::vector<std::size_t>& idx, bool upsert, std::vector<WriteResult>& results) {
    if (idx.empty()) return Status::ok();
    std::string target = "/crm/v3/objects/" + net::url_encode(object) + (upsert ? "/batch/upsert" : "/batch/update");
    std::string w = what("POST", target);
    json::array inputs;
    for (auto i : idx) {
      const WriteOp& op = ops[i];
      json::object in;
      if (upsert) {
        in["idProperty"] = os.id_property;
        in["id"] = op.idempotency_key;
        json::object props = properties_of(op);
        props[os.id_property] = op.idempotency_key;
        in["properties"] = std::move(props);
      } else {
        in["id"] = op.id;
        in["properties"] = properties_of(op);
      }
      inputs.push_back(std::move(in));
    }
    bool maybe_sent = false;
    auto r = send("POST", target, json::serialize(json::object{{"inputs", std::move(inputs)}}), &maybe_sent);
    if (!r.is_ok()) {
      bool budget = r.status().message().find("budget") != std::string::npos ||
                    r.status().message().find("pause") != std::string::npos;
      fail_all(results, idx, 0, true, maybe_sent && !budget, 0, r.status().message());
      return Status::ok();
    }
    const net::HttpResponse& resp = *r;
    if (resp.status == 401 || resp.status == 403) return http_error(resp, w);
    if (transient(resp.status)) {
      std::int64_t ra = net::parse_retry_after_ms(resp.header("Retry-After"));
      BatchError e = parse_error_body(resp.body);
      fail_all(results, idx, resp.status, true, resp.status == 502 || resp.status == 504,
               static_cast<int>(std::clamp<std::int64_t>(ra, 0, 86400000)),
               w + ": HTTP " + std::to_string(resp.status) + (e.category.empty() ? "" : " " + e.category));
      return Status::ok();
    }
    auto key_of = [&](std::size_t i) { return upsert ? ops[i].idempotency_key : ops[i].id; };
    auto bisect = [&]() -> Status {
      std::vector<std::size_t> a(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(idx.size() / 2));
      std::vector<std::size_t> b(idx.begin() + static_cast<std::ptrdiff_t>(idx.size() / 2), idx.end());
      CMG_RETURN_IF_ERROR(send_batch(object, os, ops, a, upsert, results));
      return send_batch(object, os, ops, b, upsert, results);
    };
    if (resp.status >= 200 && resp.status < 300) {
      auto br = parse_batch_response(resp.body, w);
      if (!br.is_ok()) {
        // The platform answered but we cannot tell what it did: resolve through the idempotency key.
        fail_all(results, idx, resp.status, true, true, 0, br.status().message());
        return Status::ok();
      }
      std::vector<bool> done(idx.size(), false);
      std::vector<const BatchResult*> by_pos(idx.size(), nullptr);
      bool echoed = false;
      for (const BatchResult& res : br->results) {
        std::string key = res.id;
        if (upsert) {
          const auto* v = res.properties.if_contains(os.id_property);
          key = v ? value_to_text(*v) : std::string();
        }
        if (key.empty()) continue;
        echoed = true;
        for (std::size_t p = 0; p < idx.size(); ++p) {
          if (by_pos[p] || key_of(idx[p]) != key) continue;
          by_pos[p] = &res;
          break;
        }
      }
      // A reply that does not echo the keys: only a complete, error-free one can be matched by position.
      if (!echoed && br->errors.empty() && br->results.size() == idx.size())
        for (std::size_t p = 0; p < idx.size(); ++p) by_pos[p] = &br->results[p];
      std::vector<const BatchError*> unattributed;
      for (const auto& e : br->errors) {
        bool hit = false;
        for (std::size_t p = 0; p < idx.size(); ++p) {
          if (by_pos[p] || done[p]) continue;
          if (std::find(e.ids.begin(), e.ids.end(), key_of(idx[p])) == e.ids.end()) continue;
          apply_error(results[idx[p]], ops[idx[p]], e, resp.status == 207 ? 0 : resp.status);
          done[p] = true;
          hit = true;
        }
        if (!hit) unattributed.push_back(&e);
      }
      std::vector<std::size_t> rest;
      for (std::size_t p = 0; p < idx.size(); ++p) {
        if (done[p]) continue;
        if (by_pos[p]) {
          WriteResult& wr = results[idx[p]];
          wr = WriteResult{};
          wr.id = by_pos[p]->id;
          wr.outcome = upsert && by_pos[p]->created ? WriteResult::Outcome::kCreated : WriteResult::Outcome::kUpdated;
          wr.status = wr.outcome == WriteResult::Outcome::kCreated ? 201 : 200;
          continue;
        }
        rest.push_back(idx[p]);
      }
      if (rest.empty()) return Status::ok();
      if (!unattributed.empty() && rest.size() == 1) {
        apply_error(results[rest[0]], ops[rest[0]], *unattributed.front(), 0);
        return Status::ok();
      }
      if (!unattributed.empty()) {
        std::vector<std::size_t> saved = rest;
        // Errors that name no input: resend those inputs in halves until each error has its input.
        std::vector<std::size_t> a(saved.begin(), saved.begin() + static_cast<std::ptrdiff_t>(saved.size() / 2));
        std::vector<std::size_t> b(saved.begin() + static_cast<std::ptrdiff_t>(saved.size() / 2), saved.end());
        CMG_RETURN_IF_ERROR(send_batch(object, os, ops, a, upsert, results));
        return send_batch(object, os, ops, b, upsert, results);
      }
      fail_all(results, rest, resp.status, true, true, 0, w + ": the reply does not mention this input");
      return Status::ok();
    }
    // A 4xx for the whole batch.
    BatchError e = parse_error_body(resp.body);
    if (idx.size() > 1) {
      if (!e.ids.empty()) {
        // It names the culprits: fail them, resend the others.
        std::vector<std::size_t> others;
        for (auto i : idx) {
          if (std::find(e.ids.begin(), e.ids.end(), key_of(i)) != e.ids.end()) apply_error(results[i], ops[i], e, resp.status);
          else others.push_back(i);
        }
        if (others.size() < idx.size()) return send_batch(object, os, ops, others, upsert, results);
      }
      return bisect();
    }
    apply_error(results[idx[0]], ops[idx[0]], e, resp.status);
    return Status::ok();
  }

  // v4 default associations for the `associations.*` fields of the ops that succeeded. The requests
  // (one per target object and 100 inputs) are independent, so they are sent side by side on up to
  // max_connections connections; each collects its failures apart and they are merged afterwards
  // (an op linked to two targets may fail in both: a permanent refusal wins over a transient one).
  Status associate(const std::string& object, const std::vector<WriteOp>& ops, std::vector<WriteResult>& results) {
    std::map<std::string, std::vector<std::size_t>> by_target;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (results[i].outcome == WriteResult::Outcome::kFailed) continue;
      for (const auto& [k, v] : ops[i].fields)
        if (is_assoc_field(k) && !value_is_blank(v)) by_target[std::string(k.substr(kAssocPrefix.size()))].push_back(i);
    }
    struct Chunk {
      std::string to;
      std::vector<std::size_t> idx;
      std::map<std::size_t, WriteResult> failed;
    };
    std::vector<Chunk> chunks;
    for (auto& [to, idx] : by_target) {
      for (std::size_t s = 0; s < idx.size(); s += kBatchMax)
        chunks.push_back({to,
                          std::vector<std::size_t>(idx.begin() + static_cast<std::ptrdiff_t>(s),
                                                   idx.begin() + static_cast<std::ptrdiff_t>(std::min(idx.size(), s + kBatchMax))),
                          {}});
    }
    std::vector<std::function<Status()>> tasks;
    for (auto& c : chunks)
      tasks.push_back([&, cp = &c] { return associate_chunk(object, cp->to, ops, cp->idx, results, cp->failed); });
    CMG_RETURN_IF_ERROR(run_parallel(tasks));
    for (auto& c : chunks) {
      for (auto& [i, f] : c.failed) {
        WriteResult& w = results[i];
        if (w.outcome == WriteResult::Outcome::kFailed && !w.retryable) continue;  // already refused for good
        if (w.outcome == WriteResult::Outcome::kFailed && f.retryable) continue;    // keep the first transient one
        w = std::move(f);
      }
    }
    return Status::ok();
  }

  // Runs `tasks` on up to max_connections threads (the calling one included); the first error wins.
  Status run_parallel(std::vector<std::function<Status()>>& tasks) {
    const std::size_t width = std::min<std::size_t>(tasks.size(), std::max(1u, opts.max_connections));
    if (width <= 1) {
      for (auto& t : tasks) CMG_RETURN_IF_ERROR(t());
      return Status::ok();
    }
    std::vector<Status> st(tasks.size());
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
      for (std::size_t i = next++; i < tasks.size(); i = next++) st[i] = tasks[i]();
    };
    std::vector<std::thread> threads;
    for (std::size_t k = 1; k < width; ++k) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    for (auto& x : st) CMG_RETURN_IF_ERROR(x);
    return Status::ok();
  }

  // One association request for ops[idx] (whose results hold their record ids; read only here).
  // Failures go to `failed` (op index → result), never to `results`, so chunks can run in parallel.
  Status associate_chunk(const std::string& object, const std::string& to, const std::vector<WriteOp>& ops,
                         const std::vector<std::size_t>& idx, const std::vector<WriteResult>& results,
                         std::map<std::size_t, WriteResult>& failed) {
    if (idx.empty()) return Status::ok();
    std::string field = std::string(kAssocPrefix) + to;
    std::string target = "/crm/v4/associations/" + net::url_encode(object) + "/" + net::url_encode(to) +
                         "/batch/associate/default";
    std::string w = what("POST", target);
    json::array inputs;
    for (auto i : idx)
      inputs.push_back(json::object{{"from", json::object{{"id", results[i].id}}},
                                    {"to", json::object{{"id", value_to_text(ops[i].fields.at(field))}}}});
    // Associating a pair twice is harmless (associate/default keeps one default link), so a
    // transient failure — 429, 5xx, reset, timeout, lost reply — is retried here, for this request
    // only; the records themselves are already written and are not sent again for it.
    const std::string body = json::serialize(json::object{{"inputs", std::move(inputs)}});
    Result<net::HttpResponse> r = Status(Code::kUnavailable, w + ": not sent");
    for (int attempt = 1; attempt <= std::max(1, opts.max_read_attempts); ++attempt) {
      r = send("POST", target, body);
      bool again = r.is_ok() ? transient(r->status)
                             : r.status().message().find("budget") == std::string::npos &&
                                   r.status().message().find("pause") == std::string::npos;
      if (!again || attempt == std::max(1, opts.max_read_attempts)) break;
      quota.defer(std::min<std::int64_t>(200LL << (attempt - 1), 10000));
    }
    auto transient_fail = [&](int status, int retry_after, const std::string& msg) {
      // The records are written; sending the same ops again is harmless (upsert + idempotent associate).
      for (auto i : idx) {
        WriteResult& f = failed[i];
        f = WriteResult{};
        f.outcome = WriteResult::Outcome::kFailed;
        f.id = results[i].id;
        f.status = status;
        f.retryable = true;
        f.retry_after_ms = retry_after;
        f.message = redact(msg);
      }
    };
    if (!r.is_ok()) {
      transient_fail(0, 0, r.status().message());
      return Status::ok();
    }
    if (r->status == 401 || r->status == 403) return http_error(*r, w);
    if (transient(r->status)) {
      std::int64_t ra = net::parse_retry_after_ms(r->header("Retry-After"));
      transient_fail(r->status, static_cast<int>(std::clamp<std::int64_t>(ra, 0, 86400000)),
                     w + ": HTTP " + std::to_string(r->status));
      return Status::ok();
    }
    bool ok = r->status >= 200 && r->status < 300;
    std::vector<BatchError> errors;
    if (ok) {
      auto br = parse_batch_response(r->body, w);
      if (br.is_ok()) errors = std::move(br->errors);
    } else {
      errors.push_back(parse_error_body(r->body));
    }
    if (errors.empty()) return Status::ok();
    if (idx.size() > 1) {
      std::vector<std::size_t> a(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(idx.size() / 2));
      std::vector<std::size_t> b(idx.begin() + static_cast<std::ptrdiff_t>(idx.size() / 2), idx.end());
      CMG_RETURN_IF_ERROR(associate_chunk(object, to, ops, a, results, failed));
      return associate_chunk(object, to, ops, b, results, failed);
    }
    std::size_t i = idx[0];
    WriteResult& wr = failed[i];
    wr = WriteResult{};
    wr.outcome = WriteResult::Outcome::kFailed;
    wr.id = results[i].id;
    wr.status = 400;
    wr.message = redact("association " + object + " " + wr.id + " → " + to + " refused: " + errors.front().message.substr(0, 300));
    wr.errors.push_back(FieldError{field, value_to_text(ops[i].fields.at(field)), "INVALID_ASSOCIATION", wr.message});
    return Status::ok();
  }

  // A batch upsert without a usable reply (reset, timeout, lost reply, cut-off body, 502/504) may or
  // may not have been applied. Resolved here by reading its keys back on idProperty (batch read,
  // retried like any read): found → applied, with the id HubSpot gave it, so its associations are
  // made now like those of any other success; not found → not applied, and sending it again is safe
  // (an upsert on idProperty updates the record it finds, it never creates a second one). When the
  // read-back itself keeps failing the op is reported retryable but not outcome_unknown: the caller
  // then sends it again (safe, as above) instead of confirming it by a look-up of its key, which
  // would leave the record without the associations that follow the upsert.
  void resolve_unknown_upserts(const std::string& object, const ObjectSchema& os, const std::vector<WriteOp>& ops,
                               const std::vector<std::size_t>& idx, std::vector<WriteResult>& results) {
    std::vector<std::string> keys;
    for (auto i : idx)
      if (results[i].outcome == WriteResult::Outcome::kFailed && results[i].outcome_unknown)
        keys.push_back(ops[i].idempotency_key);
    if (keys.empty()) return;
    auto found = batch_read(object, keys, os.id_property, {os.id_property});
    if (!found.is_ok()) {
      // Still unknown. Sending the upsert again is safe all the same (it finds the record by its
      // key), and unlike a look-up by the caller it also makes the record's associations.
      for (auto i : idx) {
        WriteResult& w = results[i];
        if (w.outcome != WriteResult::Outcome::kFailed || !w.outcome_unknown) continue;
        w.outcome_unknown = false;
        w.message += redact(" (read-back on " + os.id_property + " failed: " + found.status().message().substr(0, 200) +
                            "; the upsert is sent again, which cannot duplicate the record)");
      }
      return;
    }
    std::map<std::string, std::string> id_of;  // key → record id
    for (const auto& rec : *found)
      if (const auto* v = rec.fields.if_contains(os.id_property)) id_of.emplace(value_to_text(*v), rec.id);
    for (auto i : idx) {
      WriteResult& w = results[i];
      if (w.outcome != WriteResult::Outcome::kFailed || !w.outcome_unknown) continue;
      auto it = id_of.find(ops[i].idempotency_key);
      if (it == id_of.end()) {
        w.outcome_unknown = false;  // not applied: the caller sends it again
        w.message += " (not applied: no record with " + os.id_property + " " + ops[i].idempotency_key + ")";
        continue;
      }
      w = WriteResult{};
      w.id = it->second;
      w.outcome = WriteResult::Outcome::kUpdated;
      w.status = 200;
    }
  }

  Result<std::vector<WriteResult>> write(std::string_view object_sv, const std::vector<WriteOp>& ops) {
    std::string object(object_sv);
    Schema holder;
    CMG_ASSIGN_OR_RETURN(const ObjectSchema* os, object_schema(object, holder));
    std::vector<WriteResult> results(ops.size());
    // Upserts: at most 100 per request and one input per key per request (HubSpot refuses a batch
    // that names the same record twice).
    std::vector<std::vector<std::size_t>> upsert_batches, update_batches;
    auto place = [](std::vector<std::vector<std::size_t>>& batches, std::vector<std::set<std::string>>& keys,
                    std::size_t i, const std::string& key) {
      for (std::size_t b = 0; b < batches.size(); ++b) {
        if (batches[b].size() < kBatchMax && !keys[b].count(key)) {
          batches[b].push_back(i);
          keys[b].insert(key);
          return;
        }
      }
      batches.push_back({i});
      keys.push_back({key});
    };
    std::vector<std::set<std::string>> upsert_keys, update_keys;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const WriteOp& op = ops[i];
      if (op.kind == WriteOp::Kind::kUpsert) {
        if (os->id_property.empty() || op.idempotency_key.empty()) {
          results[i].message = "hubspot: object " + object + " has no id_property for upserts (set objects." + object + ".id_property)";
          results[i].status = 400;
          continue;
        }
        place(upsert_batches, upsert_keys, i, op.idempotency_key);
      } else {
        if (!is_numeric_id(op.id)) {
          results[i].status = 404;
          results[i].message = "hubspot: '" + op.id + "' is not a HubSpot record id";
          continue;
        }
        place(update_batches, update_keys, i, op.id);
      }
    }
    for (const auto& b : upsert_batches) {
      CMG_RETURN_IF_ERROR(send_batch(object, *os, ops, b, true, results));
      resolve_unknown_upserts(object, *os, ops, b, results);
    }
    for (const auto& b : update_batches) CMG_RETURN_IF_ERROR(send_batch(object, *os, ops, b, false, results));
    CMG_RETURN_IF_ERROR(associate(object, ops, results));
    return results;
  }
};

// ---------------------------------------------------------------------------------------------
// Readers

namespace {

bool cursor_less(const Record& a, const Record& b) {
  return a.updated_at != b.updated_at ? a.updated_at < b.updated_at : id_less(a.id, b.id);
}

// Every record in ascending id order: GET /crm/v3/objects/{o} with `after` paging.
class ListReader final : public RecordReader {
 public:
  ListReader(std::shared_ptr<Connector::Impl> impl, std::string object, std::vector<std::string> props,
             std::vector<std::string> assocs, std::size_t batch)
      : impl_(std::move(impl)), object_(std::move(object)), props_(std::move(props)), assocs_(std::move(assocs)),
        batch_(std::max<std::size_t>(1, batch)) {}

  Result<bool> next(RecordBatch& out) override {
    out.clear();
    while (!done_ && out.size() < batch_) {
      std::string target = "/crm/v3/objects/" + net::url_encode(object_) + "?limit=100&archived=false";
      if (!props_.empty()) target += "&properties=" + net::url_encode(join(props_, ","));
      if (!after_.empty()) target += "&after=" + net::url_encode(after_);
      CMG_ASSIGN_OR_RETURN(auto r, impl_->read_call("GET", target, ""));
      CMG_ASSIGN_OR_RETURN(auto page, parse_object_page(r.body, object_, impl_->what("GET", target)));
      for (auto& rec : page.records) out.push_back(std::move(rec));
      done_ = page.after.empty() || page.after == after_;
      after_ = page.after;
    }
    impl_->use_updated_property(object_, out);
    CMG_RETURN_IF_ERROR(impl_->attach_associations(object_, out, assocs_));
    return !out.empty() || !done_;
  }

 private:
  std::shared_ptr<Connector::Impl> impl_;
  std::string object_;
  std::vector<std::string> props_, assocs_;
  std::size_t batch_;
  std::string after_;
  bool done_ = false;
};

// Records changed at/after (since, since_id), in (updated_at, id) order, through the search API:
//   "greater" phase: updated > T sorted by updated, first page only. Every record older than the
//       page's last timestamp T' is in the page; those are emitted. Then
//   "equal" phase: updated == T' sorted by hs_object_id, paged, restarting past the last id before
//       the 10,000-result cap — so any number of records sharing one timestamp is read in id order.
class DeltaReader final : public RecordReader {
 public:
  DeltaReader(std::shared_ptr<Connector::Impl> impl, std::string object, std::vector<std::string> props,
              std::vector<std::string> assocs, std::size_t batch, std::int64_t since, std::string since_id)
      : impl_(std::move(impl)), object_(std::move(object)), props_(std::move(props)), assocs_(std::move(assocs)),
        batch_(std::max<std::size_t>(1, batch)), ts_(since), id_from_(std::move(since_id)) {
    up_ = impl_->object_options(object_).updated_property;
  }

  Result<bool> next(RecordBatch& out) override {
    out.clear();
    while (phase_ != Phase::kDone && out.size() < batch_) {
      if (phase_ == Phase::kEqual) {
        CMG_RETURN_IF_ERROR(equal_page(out));
      } else {
        CMG_RETURN_IF_ERROR(greater_page(out));
      }
    }
    CMG_RETURN_IF_ERROR(impl_->attach_associations(object_, out, assocs_));
    return !out.empty() || phase_ != Phase::kDone;
  }

 private:
  enum class Phase { kEqual, kGreater, kDone };

  json::object body(json::array filters, const std::string& sort_by) const {
    json::array pj;
    for (const auto& p : props_) pj.push_back(json::string(p));
    return json::object{{"filterGroups", json::array{json::object{{"filters", std::move(filters)}}}},
                        {"sorts", json::array{json::object{{"propertyName", sort_by}, {"direction", "ASCENDING"}}}},
                        {"properties", std::move(pj)},
                        {"limit", 100}};
  }

  Result<ObjectPage> search(const json::object& b) {
    std::string target = "/crm/v3/objects/" + net::url_encode(object_) + "/search";
    CMG_ASSIGN_OR_RETURN(auto r, impl_->read_call("POST", target, json::serialize(b)));
    CMG_ASSIGN_OR_RETURN(auto page, parse_object_page(r.body, object_, impl_->what("POST", target)));
    impl_->use_updated_property(object_, page.records);
    return page;
  }

  Status equal_page(RecordBatch& out) {
    json::array filters{json::object{{"propertyName", up_}, {"operator", "EQ"}, {"value", std::to_string(ts_)}}};
    if (!id_from_.empty())
      filters.push_back(json::object{{"propertyName", "hs_object_id"}, {"operator", id_inclusive_ ? "GTE" : "GT"},
                                     {"value", id_from_}});
    json::object b = body(std::move(filters), "hs_object_id");
    if (!after_.empty()) b["after"] = after_;
    CMG_ASSIGN_OR_RETURN(auto page, search(b));
    for (auto& r : page.records) {
      if (r.updated_at != ts_) continue;  // changed again since the search index saw it: a later pass has it
      last_id_ = r.id;
      out.push_back(std::move(r));
    }
    std::int64_t next_after = std::strtoll(page.after.c_str(), nullptr, 10);
    if (page.after.empty() || page.after == after_) {
      phase_ = Phase::kGreater;
      after_.clear();
    } else if (next_after + 100 > kSearchCap) {
      // Restart the query past the last id instead of paging into the cap.
      id_from_ = last_id_;
      id_inclusive_ = false;
      after_.clear();
    } else {
      after_ = page.after;
    }
    return Status::ok();
  }

  Status greater_page(RecordBatch& out) {
    json::array filters{json::object{{"propertyName", up_}, {"operator", "GT"}, {"value", std::to_string(ts_)}}};
    CMG_ASSIGN_OR_RETURN(auto page, search(body(std::move(filters), up_)));
    if (page.records.empty()) {
      phase_ = Phase::kDone;
      return Status::ok();
    }
    std::vector<Record> recs = std::move(page.records);
    std::sort(recs.begin(), recs.end(), cursor_less);
    if (page.after.empty()) {  // the whole rest fits in this page
      for (auto& r : recs)
        if (r.updated_at > ts_) out.push_back(std::move(r));
      phase_ = Phase::kDone;
      return Status::ok();
    }
    std::int64_t last = recs.back().updated_at;
    if (last <= ts_)  // the platform ignored the filter: stop rather than loop
      return parse_error(impl_->what("POST", "/crm/v3/objects/" + object_ + "/search") + ": results not after " +
                         std::to_string(ts_) + " although the filter asked for that");
    for (auto& r : recs)
      if (r.updated_at > ts_ && r.updated_at < last) out.push_back(std::move(r));
    ts_ = last;
    id_from_.clear();
    id_inclusive_ = true;
    phase_ = Phase::kEqual;
    return Status::ok();
  }

  std::shared_ptr<Connector::Impl> impl_;
  std::string object_;
  std::vector<std::string> props_, assocs_;
  std::size_t batch_;
  std::string up_;
  Phase phase_ = Phase::kEqual;
  std::int64_t ts_;
  std::string id_from_;
  bool id_inclusive_ = true;
  std::string after_, last_id_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

Result<std::shared_ptr<Connector>> Connector::create(Options options) {
  if (options.token.empty()) return config_error("hubspot: no token (set token_env to a variable holding it)");
  net::ClientOptions co;
  co.base_url = options.base_url;
  co.ca_file = options.ca_file;
  co.secret_headers = {{"Authorization", "Bearer " + options.token}};
  co.default_headers = {{"Accept", "application/json"}, {"User-Agent", std::string("crmmigrate/") + CMG_VERSION_STRING}};
  co.max_connections = options.max_connections;
  co.read_timeout = options.timeout;
  co.write_timeout = options.timeout;
  auto http = net::HttpClient::create(co);
  if (!http.is_ok()) return config_error("hubspot options: " + http.status().message());
  auto impl = std::make_shared<Impl>(std::move(options), std::move(*http));
  return std::shared_ptr<Connector>(new Connector(std::move(impl)));
}

Connector::Connector(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connector::~Connector() = default;

Status Connector::check_access() {
  // Retried like any read: a 429/5xx/reset says nothing about the token (only 401/403 do, and
  // read_call returns those at once as kPermissionDenied).
  return impl_->read_call("GET", "/crm/v3/owners?limit=1", "").status();
}

Result<Schema> Connector::schema() { return impl_->schema(); }

Result<std::int64_t> Connector::count(std::string_view object) {
  CMG_RETURN_IF_ERROR(impl_->known_object(object));
  std::string target = "/crm/v3/objects/" + net::url_encode(std::string(object)) + "/search";
  json::object body{{"filterGroups", json::array{}}, {"properties", json::array{json::string("hs_object_id")}}, {"limit", 1}};
  CMG_ASSIGN_OR_RETURN(auto r, impl_->read_call("POST", target, json::serialize(body)));
  CMG_ASSIGN_OR_RETURN(auto page, parse_object_page(r.body, std::string(object), impl_->what("POST", target)));
  return page.total;
}

Result<std::unique_ptr<RecordReader>> Connector::read(std::string_view object, const ReadOptions& opts) {
  Schema holder;
  CMG_ASSIGN_OR_RETURN(const ObjectSchema* os, impl_->object_schema(object, holder));
  if (opts.batch_size == 0) return invalid_argument("hubspot: batch_size must be > 0");
  std::vector<std::string> props, assocs;
  impl_->chosen(*os, opts.fields, props, assocs);
  if (opts.since_updated_at) {
    if (!opts.since_id.empty() && !is_numeric_id(opts.since_id))
      return invalid_argument("hubspot: since_id '" + opts.since_id + "' is not a HubSpot record id");
    return std::unique_ptr<RecordReader>(new DeltaReader(impl_, std::string(object), std::move(props), std::move(assocs),
                                                         opts.batch_size, *opts.since_updated_at, opts.since_id));
  }
  return std::unique_ptr<RecordReader>(
      new ListReader(impl_, std::string(object), std::move(props), std::move(assocs), opts.batch_size));
}

Result<std::unique_ptr<RecordReader>> Connector::list(std::string_view object, const ReadOptions& opts) {
  ReadOptions o = opts;
  o.since_updated_at.reset();
  o.since_id.clear();
  return read(object, o);
}

Result<std::optional<Record>> Connector::get(std::string_view object, std::string_view id) {
  CMG_ASSIGN_OR_RETURN(auto v, read(object, std::vector<std::string>{std::string(id)}));
  if (v.empty()) return std::optional<Record>();
  return std::move(v.front());
}

Result<std::vector<std::optional<Record>>> Connector::read(std::string_view object, const std::vector<std::string>& ids) {
  Schema holder;
  CMG_ASSIGN_OR_RETURN(const ObjectSchema* os, impl_->object_schema(object, holder));
  std::vector<std::string> props, assocs, ask;
  impl_->chosen(*os, {}, props, assocs);
  for (const auto& id : ids)
    if (is_numeric_id(id) && std::find(ask.begin(), ask.end(), id) == ask.end()) ask.push_back(id);
  // The records and their associations are asked for side by side (the ids are known up front).
  std::vector<Record> recs;
  Impl::AssocMaps maps;
  std::vector<std::function<Status()>> tasks;
  tasks.push_back([&]() -> Status {
    CMG_ASSIGN_OR_RETURN(recs, impl_->batch_read(std::string(object), ask, "", props));
    return Status::ok();
  });
  tasks.push_back([&]() { return impl_->fetch_associations(std::string(object), ask, assocs, maps); });
  CMG_RETURN_IF_ERROR(impl_->run_parallel(tasks));
  Impl::apply_associations(recs, assocs, maps);
  std::vector<std::optional<Record>> out(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (const auto& r : recs)
      if (r.id == ids[i]) {
        out[i] = r;
        break;
      }
  return out;
}

Result<std::vector<Record>> Connector::find(std::string_view object, std::string_view field,
                                            const std::vector<std::string>& values) {
  Schema holder;
  CMG_ASSIGN_OR_RETURN(const ObjectSchema* os, impl_->object_schema(object, holder));
  std::string o(object), f(field);
  if (!os->field(f) && f != "id") return invalid_argument("hubspot: object " + o + " has no property '" + f + "'");
  std::vector<std::string> props, assocs, vals;
  impl_->chosen(*os, {}, props, assocs);
  for (const auto& v : values)
    if (!v.empty() && std::find(vals.begin(), vals.end(), v) == vals.end()) vals.push_back(v);
  std::vector<Record> recs;
  if (f == "id" || f == "hs_object_id") {
    std::vector<std::string> ids;
    for (const auto& v : vals)
      if (is_numeric_id(v)) ids.push_back(v);
    CMG_ASSIGN_OR_RETURN(recs, impl_->batch_read(o, ids, "", props));
  } else if (f == os->id_property) {
    CMG_ASSIGN_OR_RETURN(recs, impl_->batch_read(o, vals, f, props));
  } else {
    for (std::size_t i = 0; i < vals.size(); i += kBatchMax) {
      json::array vs;
      for (std::size_t j = i; j < std::min(vals.size(), i + kBatchMax); ++j) vs.push_back(json::string(vals[j]));
      json::array groups{json::object{
          {"filters", json::array{json::object{{"propertyName", f}, {"operator", "IN"}, {"values", std::move(vs)}}}}}};
      CMG_ASSIGN_OR_RETURN(auto part, impl_->search_all(o, groups, props));
      for (auto& r : part) recs.push_back(std::move(r));
    }
  }
  std::sort(recs.begin(), recs.end(), [](const Record& a, const Record& b) { return id_less(a.id, b.id); });
  recs.erase(std::unique(recs.begin(), recs.end(), [](const Record& a, const Record& b) { return a.id == b.id; }),
             recs.end());
  CMG_RETURN_IF_ERROR(impl_->attach_associations(o, recs, assocs));
  return recs;
}

Result<std::vector<WriteResult>> Connector::write(std::string_view object, const std::vector<WriteOp>& ops) {
  return impl_->write(object, ops);
}

Quota Connector::quota() const {
  net::QuotaLimits l = impl_->quota.limits();
  l.burst_requests = impl_->quota.effective_burst();
  l.daily_requests = impl_->quota.effective_daily();
  return net::to_quota(l, static_cast<int>(kBatchMax));
}

std::int64_t Connector::last_retry_after_ms() const { return impl_->last_retry_after.load(); }

net::QuotaStats Connector::quota_stats() const {
  net::QuotaStats s = impl_->quota.stats();
  s.acquired -= impl_->stats_at_start.acquired;
  s.throttled -= impl_->stats_at_start.throttled;
  s.waited_ms -= impl_->stats_at_start.waited_ms;
  return s;
}

std::int64_t Connector::eta_ms(std::int64_t n) const { return impl_->quota.eta_ms(n); }

std::size_t Connector::connections_opened() const { return impl_->http->connections_opened(); }

}  // namespace cmg::hubspot
