// The Pipedrive dialect of `sandbox serve`: API v2 persons, organizations, deals, activities,
// pipelines, stages, field definitions and search; API v1 notes, users and note fields, over a
// "pipedrive" sandbox (docs/http-dialects.md). Shapes follow Pipedrive's published OpenAPI files.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <fmt/format.h>
#include <openssl/sha.h>

#include "crmmigrate/core/time.hpp"
#include "sandbox/serve_internal.hpp"

namespace cmg::sandbox::serve_internal {
namespace {

constexpr std::size_t kV2LimitMax = 500;
constexpr std::size_t kV1LimitMax = 500;

net::HttpResponse error(int status, std::string_view, std::string_view message) {
  return pipedrive_error(status, message);
}

net::HttpResponse ok(json::value data, std::optional<json::object> additional = std::nullopt) {
  json::object body{{"success", true}, {"data", std::move(data)}};
  if (additional) body["additional_data"] = std::move(*additional);
  return json_reply(200, body);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A 40-hex key for a field that is not one of Pipedrive's standard fields: custom fields are keyed
// by such hashes on the real platform.
std::string custom_key(std::string_view object, std::string_view field) {
  std::string text = std::string(object) + "." + std::string(field);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string out;
  for (unsigned char b : digest) out += fmt::format("{:02x}", b);
  return out;
}

// "2024-05-01 10:00:00" (sandbox, Pipedrive v1) → "2024-05-01T10:00:00Z" (v2).
std::string rfc3339(const json::value* v) {
  if (!v || !v->is_string()) return {};
  auto ms = parse_timestamp_ms(v->get_string());
  if (!ms) return std::string(v->get_string());
  std::string iso = format_timestamp_ms(*ms);  // "…T10:00:00.000Z"
  return iso.size() > 5 ? iso.substr(0, iso.size() - 5) + "Z" : iso;
}

std::string v1_time(const json::value* v) {
  if (!v || !v->is_string()) return {};
  return std::string(v->get_string());
}

std::optional<std::int64_t> int_of(const json::value* v) {
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  if (v->is_string()) {
    std::string s(v->get_string());
    if (!s.empty() && s[0] == '-') {
      auto n = parse_int(s.substr(1));
      return n ? std::optional<std::int64_t>(-*n) : std::nullopt;
    }
    return parse_int(s);
  }
  return std::nullopt;
}

std::optional<double> number_of(const json::value* v) {
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  if (v->is_string()) {
    std::string s(v->get_string());
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() && *end == 0) return d;
  }
  return std::nullopt;
}

// Pipedrive email/phone lists: [{"value","primary","label"}]; a bare string becomes one entry.
json::array contact_list(const json::value* v) {
  json::array out;
  if (!v || v->is_null()) return out;
  auto entry = [](const json::value& e, bool first) {
    json::object o;
    if (const auto* eo = e.if_object()) {
      const auto* val = eo->if_contains("value");
      o["value"] = val ? value_to_text(*val) : std::string();
      const auto* p = eo->if_contains("primary");
      o["primary"] = p && p->is_bool() ? p->get_bool() : first;
      const auto* l = eo->if_contains("label");
      o["label"] = l && l->is_string() ? std::string(l->get_string()) : std::string("work");
    } else {
      o["value"] = value_to_text(e);
      o["primary"] = first;
      o["label"] = "work";
    }
    return o;
  };
  if (const auto* a = v->if_array()) {
    bool first = true;
    for (const auto& e : *a) {
      json::object o = entry(e, first);
      first = false;
      if (!o["value"].get_string().empty()) out.push_back(std::move(o));
    }
  } else if (!value_is_blank(*v)) {
    out.push_back(entry(*v, true));
  }
  return out;
}

struct Entity {
  const char* path;         // "persons"
  const char* object;       // sandbox object
  const char* singular;     // "person" (search item type)
  const char* owner_field;  // sandbox field that holds the owner
};

const Entity kEntities[] = {{"persons", "persons", "person", "owner_id"},
                            {"organizations", "organizations", "organization", "owner_id"},
                            {"deals", "deals", "deal", "user_id"},
                            {"activities", "activities", "activity", "user_id"}};

const Entity* entity_of(std::string_view path) {
  for (const auto& e : kEntities)
    if (path == e.path) return &e;
  return nullptr;
}

// Standard fields of each object in the v2 shape (sandbox name → API name where they differ).
const std::set<std::string>& standard_fields(std::string_view object) {
  static const std::map<std::string, std::set<std::string>, std::less<>> fields = {
      {"persons", {"id", "name", "first_name", "last_name", "email", "phone", "org_id", "owner_id", "label", "visible_to",
                   "add_time", "update_time"}},
      {"organizations", {"id", "name", "address", "owner_id", "visible_to", "label", "add_time", "update_time"}},
      {"deals", {"id", "title", "value", "currency", "status", "pipeline_id", "stage_id", "person_id", "org_id", "user_id",
                 "expected_close_date", "probability", "add_time", "update_time"}},
      {"activities", {"id", "type", "subject", "note", "due_date", "due_time", "done", "person_id", "deal_id", "org_id",
                      "user_id", "add_time", "update_time"}},
      {"notes", {"id", "content", "person_id", "deal_id", "org_id", "user_id", "add_time", "update_time"}}};
  static const std::set<std::string> none;
  auto it = fields.find(object);
  return it == fields.end() ? none : it->second;
}

void put_int(json::object& o, const char* key, const json::value* v) {
  if (auto n = int_of(v)) o[key] = *n;
}

void put_str(json::object& o, const char* key, const json::value* v) {
  if (v && !v->is_null()) o[key] = value_to_text(*v);
}

json::object v2_json(const Entity& e, const Record& r) {
  const auto& f = r.fields;
  auto at = [&](const char* k) { return f.if_contains(k); };
  json::object o;
  o["id"] = parse_int(r.id).value_or(0);
  std::string object = e.object;
  if (object == "persons") {
    put_str(o, "name", at("name"));
    put_str(o, "first_name", at("first_name"));
    put_str(o, "last_name", at("last_name"));
    put_int(o, "owner_id", at("owner_id"));
    put_int(o, "org_id", at("org_id"));
    o["emails"] = contact_list(at("email"));
    o["phones"] = contact_list(at("phone"));
  } else if (object == "organizations") {
    put_str(o, "name", at("name"));
    put_int(o, "owner_id", at("owner_id"));
    if (const auto* a = at("address"); a && !value_is_blank(*a)) o["address"] = json::object{{"value", value_to_text(*a)}};
  } else if (object == "deals") {
    put_str(o, "title", at("title"));
    put_int(o, "owner_id", at("user_id"));
    put_int(o, "person_id", at("person_id"));
    put_int(o, "org_id", at("org_id"));
    put_int(o, "pipeline_id", at("pipeline_id"));
    put_int(o, "stage_id", at("stage_id"));
    if (auto v = number_of(at("value"))) o["value"] = *v;
    put_str(o, "currency", at("currency"));
    put_str(o, "status", at("status"));
    put_int(o, "probability", at("probability"));
    put_str(o, "expected_close_date", at("expected_close_date"));
  } else if (object == "activities") {
    put_str(o, "subject", at("subject"));
    put_str(o, "type", at("type"));
    put_int(o, "owner_id", at("user_id"));
    put_int(o, "deal_id", at("deal_id"));
    put_int(o, "person_id", at("person_id"));
    put_int(o, "org_id", at("org_id"));
    put_str(o, "due_date", at("due_date"));
    put_str(o, "due_time", at("due_time"));
    put_str(o, "note", at("note"));
    if (const auto* d = at("done")) o["done"] = d->is_bool() ? d->get_bool() : value_to_text(*d) == "true" || value_to_text(*d) == "1";
  }
  if (object == "persons" || object == "organizations") {
    put_int(o, "visible_to", at("visible_to"));
    json::array labels;
    if (auto l = int_of(at("label"))) labels.push_back(*l);
    o["label_ids"] = std::move(labels);
  }
  o["add_time"] = rfc3339(at("add_time"));
  o["update_time"] = rfc3339(at("update_time"));
  o["is_deleted"] = false;
  if (object != "activities") {
    json::object custom;
    const auto& std_fields = standard_fields(object);
    for (const auto& [k, v] : f)
      if (!std_fields.count(std::string(k))) custom[custom_key(object, k)] = v;
    o["custom_fields"] = std::move(custom);
  }
  return o;
}

json::object v1_note_json(const Record& r) {
  const auto& f = r.fields;
  json::object o;
  o["id"] = parse_int(r.id).value_or(0);
  put_str(o, "content", f.if_contains("content"));
  put_int(o, "person_id", f.if_contains("person_id"));
  put_int(o, "deal_id", f.if_contains("deal_id"));
  put_int(o, "org_id", f.if_contains("org_id"));
  put_int(o, "user_id", f.if_contains("user_id"));
  o["add_time"] = v1_time(f.if_contains("add_time"));
  o["update_time"] = v1_time(f.if_contains("update_time"));
  o["active_flag"] = true;
  return o;
}

// A v2 write body → sandbox fields. Returns "" or the problem.
std::string v2_to_fields(const Entity& e, const ObjectSchema& obj, const json::object& in, json::object& out) {
  std::string object = e.object;
  for (const auto& [k, v] : in) {
    std::string key(k);
    if (key == "emails" && object == "persons") {
      out["email"] = v;
    } else if (key == "phones" && object == "persons") {
      out["phone"] = v;
    } else if (key == "owner_id") {
      out[e.owner_field] = v;
    } else if (key == "label_ids") {
      if (const auto* a = v.if_array(); a && !a->empty()) {
        out["label"] = (*a)[0];
      } else {
        out["label"] = nullptr;
      }
    } else if (key == "address" && object == "organizations") {
      if (const auto* o = v.if_object()) {
        const auto* val = o->if_contains("value");
        out["address"] = val ? *val : json::value();
      } else {
        out["address"] = v;
      }
    } else if ((key == "pipeline_id" || key == "stage_id") && object == "deals") {
      out[key] = v.is_null() ? json::value() : json::value(value_to_text(v));
    } else if (key == "type" && object == "activities") {
      out[key] = v;
    } else if (key == "custom_fields") {
      const auto* co = v.if_object();
      if (!co) return "custom_fields must be an object";
      for (const auto& [ck, cv] : *co) {
        bool found = false;
        for (const auto& f : obj.fields) {
          if (custom_key(object, f.name) == ck && !standard_fields(object).count(f.name)) {
            out[f.name] = cv;
            found = true;
          }
        }
        if (!found) return "Unknown custom field " + std::string(ck);
      }
    } else {
      out[key] = v;
    }
  }
  return {};
}

std::string first_error(const WriteResult& r) {
  if (!r.message.empty()) return r.message;
  if (!r.errors.empty()) return r.errors.front().message;
  return "Bad request";
}

// Cursor over (sort key, id): "<key>:<id>", opaque to clients.
struct Cursor {
  std::int64_t key = 0;
  std::int64_t id = 0;
};

std::optional<Cursor> parse_cursor(const std::string& s) {
  auto colon = s.find(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string a = s.substr(0, colon);
  bool neg = !a.empty() && a[0] == '-';
  auto k = parse_int(neg ? a.substr(1) : a);
  auto i = parse_int(s.substr(colon + 1));
  if (!k || !i) return std::nullopt;
  return Cursor{neg ? -*k : *k, *i};
}

class Pipedrive {
 public:
  Pipedrive(Context& ctx, const net::HttpRequest& req) : ctx_(ctx), req_(req) {}

  net::HttpResponse run() {
    auto schema_r = ctx_.crm->schema();
    if (!schema_r.is_ok()) return pipedrive_error(500, "sandbox schema unavailable");
    schema_ = std::move(schema_r).value();
    auto seg = split_path(req_.path());
    auto res = route(seg, req_.method);
    if (!res.is_ok()) return pipedrive_error(500, "sandbox error: " + res.status().message());
    return std::move(res).value();
  }

 private:
  Result<net::HttpResponse> route(const std::vector<std::string>& seg, const std::string& m) {
    if (seg.size() >= 3 && seg[0] == "api" && seg[1] == "v2") {
      std::vector<std::string> rest(seg.begin() + 2, seg.end());
      if (rest.size() == 1 && m == "GET") {
        if (rest[0] == "pipelines") return pipelines();
        if (rest[0] == "stages") return stages();
        if (rest[0] == "personFields") return fields_v2("persons");
        if (rest[0] == "organizationFields") return fields_v2("organizations");
        if (rest[0] == "dealFields") return fields_v2("deals");
        if (rest[0] == "activityFields") return fields_v2("activities");
      }
      const Entity* e = entity_of(rest[0]);
      if (e) {
        if (rest.size() == 1 && m == "GET") return list_v2(*e);
        if (rest.size() == 1 && m == "POST") return write_v2(*e, "");
        if (rest.size() == 2 && rest[1] == "search" && m == "GET") return search_v2(*e);
        if (rest.size() == 2 && m == "GET") return get_v2(*e, rest[1]);
        if (rest.size() == 2 && m == "PATCH") return write_v2(*e, rest[1]);
      }
    }
    if (seg.size() >= 2 && seg[0] == "v1") {
      std::vector<std::string> rest(seg.begin() + 1, seg.end());
      if (rest.size() == 1 && rest[0] == "users" && m == "GET") return users();
      if (rest.size() == 2 && rest[0] == "users" && m == "GET") return user(rest[1]);
      if (rest.size() == 1 && rest[0] == "noteFields" && m == "GET") return note_fields();
      if (rest.size() == 2 && rest[0] == "deals" && rest[1] == "summary" && m == "GET") return deals_summary();
      if (rest[0] == "notes") {
        if (rest.size() == 1 && m == "GET") return list_notes();
        if (rest.size() == 1 && m == "POST") return write_note("");
        if (rest.size() == 2 && m == "GET") return get_note(rest[1]);
        if (rest.size() == 2 && m == "PUT") return write_note(rest[1]);
      }
    }
    return pipedrive_error(404, "Unknown method .");
  }

  // ---- v2 lists ----

  // Sort key of a record for sort_by (id / update_time / add_time).
  static std::int64_t sort_key(const Record& r, const std::string& by) {
    if (by == "update_time") return r.updated_at;
    if (by == "add_time") {
      const auto* v = r.fields.if_contains("add_time");
      if (v && v->is_string())
        if (auto ms = parse_timestamp_ms(v->get_string())) return *ms;
      return 0;
    }
    return parse_int(r.id).value_or(0);
  }

  // Pages `records` by cursor; fills the reply.
  Result<net::HttpResponse> page_v2(std::vector<Record> records, const std::function<json::object(const Record&)>& to_json) {
    std::string by = req_.query("sort_by");
    if (by.empty()) by = "id";
    if (by != "id" && by != "update_time" && by != "add_time")
      return pipedrive_error(400, "Invalid sort_by: supported fields are id, update_time, add_time");
    std::string dir = req_.query("sort_direction");
    if (dir.empty()) dir = "asc";
    if (dir != "asc" && dir != "desc") return pipedrive_error(400, "Invalid sort_direction: asc or desc");
    const bool desc = dir == "desc";
    std::size_t limit = 100;
    if (!req_.query("limit").empty()) {
      auto l = parse_int(req_.query("limit"));
      if (!l || *l < 1 || *l > static_cast<std::int64_t>(kV2LimitMax))
        return pipedrive_error(400, fmt::format("Invalid limit: must be between 1 and {}", kV2LimitMax));
      limit = static_cast<std::size_t>(*l);
    }
    std::optional<Cursor> cursor;
    if (std::string c = req_.query("cursor"); !c.empty()) {
      cursor = parse_cursor(c);
      if (!cursor) return pipedrive_error(400, "Invalid cursor");
    }
    std::vector<std::pair<Cursor, const Record*>> keyed;
    keyed.reserve(records.size());
    for (const auto& r : records) keyed.push_back({Cursor{sort_key(r, by), parse_int(r.id).value_or(0)}, &r});
    auto less = [](const Cursor& a, const Cursor& b) { return a.key != b.key ? a.key < b.key : a.id < b.id; };
    std::sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
      return desc ? less(b.first, a.first) : less(a.first, b.first);
    });
    json::array data;
    std::optional<Cursor> next;
    for (const auto& [k, r] : keyed) {
      // The cursor names the first item of the next page (inclusive).
      if (cursor && (desc ? less(*cursor, k) : less(k, *cursor))) continue;
      if (data.size() == limit) {
        next = k;
        break;
      }
      data.push_back(to_json(*r));
    }
    json::object additional;
    if (next) additional["next_cursor"] = fmt::format("{}:{}", next->key, next->id);
    return ok(std::move(data), std::move(additional));
  }

  // Records of `object` filtered by ids / updated_since / updated_until / owner and link filters.
  Result<std::optional<std::vector<Record>>> filtered(const Entity& e, net::HttpResponse& bad) {
    std::optional<std::int64_t> since;
    std::optional<std::int64_t> until;
    if (std::string s = req_.query("updated_since"); !s.empty()) {
      since = parse_timestamp_ms(s);
      if (!since) {
        bad = pipedrive_error(400, "Invalid updated_since: use RFC3339, e.g. 2025-01-01T10:20:00Z");
        return std::optional<std::vector<Record>>();
      }
    }
    if (std::string s = req_.query("updated_until"); !s.empty()) {
      until = parse_timestamp_ms(s);
      if (!until) {
        bad = pipedrive_error(400, "Invalid updated_until: use RFC3339, e.g. 2025-01-01T10:20:00Z");
        return std::optional<std::vector<Record>>();
      }
    }
    auto ids = query_list(req_, "ids");
    if (ids.size() > 100) {
      bad = pipedrive_error(400, "Invalid ids: at most 100 ids");
      return std::optional<std::vector<Record>>();
    }
    std::vector<Record> records;
    if (!ids.empty()) {
      for (const auto& id : ids) {
        if (!parse_int(id)) continue;
        CMG_ASSIGN_OR_RETURN(auto rec, ctx_.crm->get(e.object, id));
        if (rec) records.push_back(std::move(*rec));
      }
    } else {
      CMG_ASSIGN_OR_RETURN(records, all_records(*ctx_.crm, e.object));
    }
    std::vector<std::pair<std::string, std::string>> eq;  // query param → sandbox field
    if (std::string v = req_.query("owner_id"); !v.empty()) eq.emplace_back(e.owner_field, v);
    for (const char* link : {"org_id", "person_id", "deal_id", "pipeline_id", "stage_id"})
      if (std::string v = req_.query(link); !v.empty()) eq.emplace_back(link, v);
    if (std::string v = req_.query("status"); !v.empty() && std::string(e.object) == "deals") eq.emplace_back("status", v);
    std::vector<Record> out;
    for (auto& r : records) {
      if (since && r.updated_at < *since) continue;
      if (until && r.updated_at >= *until) continue;
      bool keep = true;
      for (const auto& [field, want] : eq) {
        const auto* v = r.fields.if_contains(field);
        keep = keep && v && value_to_text(*v) == want;
      }
      if (keep) out.push_back(std::move(r));
    }
    return std::optional<std::vector<Record>>(std::move(out));
  }

  Result<net::HttpResponse> list_v2(const Entity& e) {
    if (auto f = read_fault(ctx_, error)) return *f;
    net::HttpResponse bad;
    CMG_ASSIGN_OR_RETURN(auto records, filtered(e, bad));
    if (!records) return bad;
    return page_v2(std::move(*records), [&](const Record& r) { return v2_json(e, r); });
  }

  Result<net::HttpResponse> get_v2(const Entity& e, const std::string& id) {
    if (auto f = read_fault(ctx_, error)) return *f;
    if (!parse_int(id)) return pipedrive_error(400, "Invalid id");
    CMG_ASSIGN_OR_RETURN(auto rec, ctx_.crm->get(e.object, id));
    if (!rec) return pipedrive_error(404, std::string(e.singular) + " not found");
    return ok(v2_json(e, *rec));
  }

  Result<net::HttpResponse> search_v2(const Entity& e) {
    if (auto f = read_fault(ctx_, error)) return *f;
    std::string term = req_.query("term");
    if (term.size() < 2 && req_.query("exact_match") != "true")
      return pipedrive_error(400, "term must be at least 2 characters long");
    if (term.empty()) return pipedrive_error(400, "term is required");
    bool exact = req_.query("exact_match") == "true";
    auto fields = query_list(req_, "fields");
    const auto& std_fields = standard_fields(e.object);
    auto searched = [&](const std::string& field) {
      if (fields.empty()) return field != "id" && field != "add_time" && field != "update_time";
      for (const auto& f : fields) {
        if (f == "custom_fields" && !std_fields.count(field)) return true;
        if (f == field || (f == "email" && field == "email") || (f == "phone" && field == "phone")) return true;
      }
      return false;
    };
    auto hit = [&](const json::value& v) {
      std::vector<std::string> texts;
      if (const auto* a = v.if_array()) {
        for (const auto& x : *a) {
          const auto* xo = x.if_object();
          const auto* val = xo ? xo->if_contains("value") : nullptr;
          texts.push_back(val ? value_to_text(*val) : value_to_text(x));
        }
      } else {
        texts.push_back(value_to_text(v));
      }
      for (const auto& t : texts) {
        if (exact ? lower(t) == lower(term) : lower(t).find(lower(term)) != std::string::npos) return true;
      }
      return false;
    };
    CMG_ASSIGN_OR_RETURN(auto records, all_records(*ctx_.crm, e.object));
    std::size_t limit = 100;
    if (auto l = parse_int(req_.query("limit")); l && *l > 0) limit = std::min<std::size_t>(static_cast<std::size_t>(*l), kV2LimitMax);
    std::size_t start = 0;
    if (auto c = parse_int(req_.query("cursor"))) start = static_cast<std::size_t>(*c);
    json::array items;
    std::size_t matched = 0;
    std::optional<std::size_t> next;
    for (const auto& r : records) {
      bool any = false;
      for (const auto& [k, v] : r.fields)
        if (searched(std::string(k)) && hit(v)) any = true;
      if (!any) continue;
      if (matched++ < start) continue;
      if (items.size() == limit) {
        next = matched - 1;
        break;
      }
      json::object item{{"id", parse_int(r.id).value_or(0)}, {"type", e.singular}};
      const auto* name = r.fields.if_contains(std::string(e.object) == "deals" ? "title" : "name");
      if (name && !name->is_null()) item[std::string(e.object) == "deals" ? "title" : "name"] = value_to_text(*name);
      items.push_back(json::object{{"result_score", exact ? 1.0 : 0.5}, {"item", std::move(item)}});
    }
    json::object additional;
    if (next) additional["next_cursor"] = std::to_string(*next);
    return ok(json::object{{"items", std::move(items)}}, std::move(additional));
  }

  Result<net::HttpResponse> write_v2(const Entity& e, const std::string& id) {
    std::string perr;
    auto body = parse_body(req_, perr);
    if (!body || !body->is_object()) return pipedrive_error(400, perr.empty() ? "body must be a JSON object" : perr);
    const ObjectSchema* obj = schema_.object(e.object);
    if (!obj) return pipedrive_error(404, "Unknown method .");
    WriteOp op;
    std::string problem = v2_to_fields(e, *obj, body->get_object(), op.fields);
    if (!problem.empty()) return pipedrive_error(400, problem);
    if (id.empty()) {
      op.kind = WriteOp::Kind::kUpsert;  // the pipedrive preset has no id property: always creates
    } else {
      if (!parse_int(id)) return pipedrive_error(400, "Invalid id");
      op.kind = WriteOp::Kind::kUpdate;
      op.id = id;
    }
    CMG_ASSIGN_OR_RETURN(auto run, run_write(ctx_, e.object, {op}, error));
    if (run.refusal) return *run.refusal;
    if (run.results.empty()) return unapplied_reply(run.fault, ctx_);
    const WriteResult& r = run.results.front();
    net::HttpResponse res;
    if (r.outcome == WriteResult::Outcome::kFailed) {
      res = r.status == 404 ? pipedrive_error(404, std::string(e.singular) + " not found")
                            : pipedrive_error(r.status == 409 ? 409 : 400, first_error(r));
    } else {
      CMG_ASSIGN_OR_RETURN(auto rec, ctx_.crm->get(e.object, r.id));
      json::value data = rec ? json::value(v2_json(e, *rec)) : json::value(json::object{{"id", parse_int(r.id).value_or(0)}});
      res = ok(std::move(data));
    }
    decorate_write_reply(res, run.fault, ctx_);
    return res;
  }

  // ---- v2 pipelines, stages, fields ----

  Result<net::HttpResponse> pipelines() {
    if (auto f = read_fault(ctx_, error)) return *f;
    json::array data;
    int order = 0;
    for (const auto& p : ctx_.crm->pipelines()) {
      data.push_back(json::object{{"id", parse_int(p.id).value_or(0)},
                                  {"name", p.label},
                                  {"order_nr", order++},
                                  {"is_selected", order == 1},
                                  {"is_deal_probability_enabled", false},
                                  {"is_deleted", false},
                                  {"add_time", "2020-01-01T00:00:00Z"},
                                  {"update_time", "2020-01-01T00:00:00Z"}});
    }
    return ok(std::move(data), json::object{});
  }

  Result<net::HttpResponse> stages() {
    if (auto f = read_fault(ctx_, error)) return *f;
    std::string only = req_.query("pipeline_id");
    json::array data;
    for (const auto& p : ctx_.crm->pipelines()) {
      if (!only.empty() && only != p.id) continue;
      int order = 0;
      for (const auto& s : p.stages) {
        data.push_back(json::object{{"id", parse_int(s.value).value_or(0)},
                                    {"order_nr", order++},
                                    {"name", s.label},
                                    {"is_deleted", false},
                                    {"deal_probability", 100},
                                    {"pipeline_id", parse_int(p.id).value_or(0)},
                                    {"is_deal_rot_enabled", false},
                                    {"add_time", "2020-01-01T00:00:00Z"},
                                    {"update_time", "2020-01-01T00:00:00Z"}});
      }
    }
    return ok(std::move(data), json::object{});
  }

  static std::string field_type(const FieldSchema& f) {
    if (f.name == "visible_to") return "visible_to";
    if (f.name == "owner_id" || f.name == "user_id") return "user";
    if (f.name == "org_id") return "org";
    if (f.name == "person_id") return "people";
    if (f.name == "deal_id") return "deal";
    if (f.name == "stage_id") return "stage";
    if (f.name == "status") return "status";
    if (f.name == "email" || f.name == "phone") return f.name == "phone" ? "phone" : "varchar";
    switch (f.type) {
      case FieldType::kInteger: return "int";
      case FieldType::kNumber: return "double";
      case FieldType::kBool: return "boolean";
      case FieldType::kText: return "text";
      case FieldType::kDate: return "date";
      case FieldType::kDateTime: return "date";
      case FieldType::kEnum: return "enum";
      case FieldType::kReference: return "int";
      case FieldType::kPhone: return "phone";
      default: return "varchar";
    }
  }

  // The v2 field code of a sandbox field.
  static std::string field_code(std::string_view object, const std::string& name, const Entity* e) {
    if (!standard_fields(object).count(name)) return custom_key(object, name);
    if (std::string(object) == "persons" && name == "email") return "emails";
    if (std::string(object) == "persons" && name == "phone") return "phones";
    if (name == "label") return "label_ids";
    if (e && name == e->owner_field) return "owner_id";
    return name;
  }

  Result<net::HttpResponse> fields_v2(const std::string& object) {
    if (auto f = read_fault(ctx_, error)) return *f;
    const ObjectSchema* obj = schema_.object(object);
    if (!obj) return pipedrive_error(404, "Unknown method .");
    const Entity* e = entity_of(object);
    json::array data;
    for (const auto& f : obj->fields) {
      json::object o{{"field_name", f.label},
                     {"field_code", field_code(object, f.name, e)},
                     {"field_type", field_type(f)},
                     {"is_custom_field", !standard_fields(object).count(f.name)},
                     {"is_optional_response_field", false}};
      std::vector<Option> opts = f.options;
      if (!f.options_by.empty())
        for (const auto& [k, v] : f.options_by_value) opts.insert(opts.end(), v.begin(), v.end());
      if (!opts.empty()) {
        json::array oa;
        for (const auto& op : opts) {
          json::object oo{{"label", op.label}};
          if (auto n = parse_int(op.value)) {
            oo["id"] = *n;
          } else {
            oo["id"] = op.value;
          }
          oa.push_back(std::move(oo));
        }
        o["options"] = std::move(oa);
      } else {
        o["options"] = nullptr;
      }
      data.push_back(std::move(o));
    }
    return ok(std::move(data), json::object{});
  }

  // ---- v1 deals summary ----

  // GET /v1/deals/summary?status&user_id&pipeline_id&stage_id: counts and values of the deals (the
  // sandbox has no archived deals, so every deal counts), per currency. The sandbox converts no
  // currencies: the "converted" values are the sums as they are. filter_id is not modelled (400).
  Result<net::HttpResponse> deals_summary() {
    if (auto f = read_fault(ctx_, error)) return *f;
    if (!req_.query("filter_id").empty()) return pipedrive_error(400, "filter_id is not supported by the sandbox");
    std::string status = req_.query("status");
    if (!status.empty() && status != "open" && status != "won" && status != "lost")
      return pipedrive_error(400, "Invalid status: open, won or lost");
    std::vector<std::pair<const char*, std::string>> eq;  // sandbox field → wanted value
    if (!status.empty()) eq.emplace_back("status", status);
    if (std::string v = req_.query("user_id"); !v.empty()) eq.emplace_back("user_id", v);
    if (std::string v = req_.query("pipeline_id"); !v.empty()) eq.emplace_back("pipeline_id", v);
    if (std::string v = req_.query("stage_id"); !v.empty()) eq.emplace_back("stage_id", v);
    CMG_ASSIGN_OR_RETURN(auto records, all_records(*ctx_.crm, "deals"));
    struct Sum {
      double value = 0, weighted = 0;
      std::int64_t count = 0;
    };
    std::map<std::string, Sum> by_currency;
    std::int64_t total = 0;
    double total_value = 0, total_weighted = 0;
    auto number = [](const json::value* v) {
      if (!v || v->is_null()) return 0.0;
      if (v->is_number()) return v->to_number<double>();
      try {
        return std::stod(value_to_text(*v));
      } catch (...) {
        return 0.0;
      }
    };
    for (const auto& r : records) {
      bool keep = true;
      for (const auto& [field, want] : eq) {
        const auto* v = r.fields.if_contains(field);
        if (!v || value_to_text(*v) != want) keep = false;
      }
      if (!keep) continue;
      ++total;
      double value = number(r.fields.if_contains("value"));
      const auto* p = r.fields.if_contains("probability");
      double weighted = value * (p && !p->is_null() ? number(p) / 100.0 : 1.0);
      const auto* c = r.fields.if_contains("currency");
      Sum& sum = by_currency[c && !value_is_blank(*c) ? value_to_text(*c) : std::string("EUR")];
      sum.value += value;
      sum.weighted += weighted;
      ++sum.count;
      total_value += value;
      total_weighted += weighted;
    }
    auto formatted = [](const std::string& currency, double v) { return fmt::format("{} {:.2f}", currency, v); };
    json::object values, weighted;
    for (const auto& [cur, sum] : by_currency) {
      values[cur] = json::object{{"value", sum.value},
                                 {"count", sum.count},
                                 {"value_converted", sum.value},
                                 {"value_formatted", formatted(cur, sum.value)},
                                 {"value_converted_formatted", formatted(cur, sum.value)}};
      weighted[cur] = json::object{{"value", sum.weighted}, {"count", sum.count}, {"value_formatted", formatted(cur, sum.weighted)}};
    }
    return ok(json::object{{"values_total", std::move(values)},
                           {"weighted_values_total", std::move(weighted)},
                           {"total_count", total},
                           {"total_currency_converted_value", total_value},
                           {"total_weighted_currency_converted_value", total_weighted},
                           {"total_currency_converted_value_formatted", formatted("EUR", total_value)},
                           {"total_weighted_currency_converted_value_formatted", formatted("EUR", total_weighted)}});
  }

  // ---- v1 users, notes ----

  static json::object user_json(const User& u) {
    json::object o{{"name", u.name}, {"email", u.email}, {"active_flag", u.active}, {"is_admin", 0},
                   {"created", "2020-01-01 00:00:00"}, {"modified", "2020-01-01 00:00:00"},
                   {"lang", 1}, {"locale", "en_US"}, {"timezone_name", "Europe/London"}, {"timezone_offset", "+00:00"},
                   {"default_currency", "EUR"}, {"role_id", 1}, {"has_created_company", false},
                   {"is_you", false}, {"icon_url", nullptr}, {"last_login", "2020-01-01 00:00:00"},
                   {"phone", nullptr}, {"access", json::array{}}};
    if (auto n = parse_int(u.id)) {
      o["id"] = *n;
    } else {
      o["id"] = u.id;
    }
    return o;
  }

  Result<net::HttpResponse> users() {
    if (auto f = read_fault(ctx_, error)) return *f;
    json::array data;
    for (const auto& u : schema_.users) data.push_back(user_json(u));
    return ok(std::move(data));
  }

  Result<net::HttpResponse> user(const std::string& id) {
    if (auto f = read_fault(ctx_, error)) return *f;
    for (const auto& u : schema_.users)
      if (u.id == id || (id == "me" && u.active)) {
        json::object o = user_json(u);
        if (id == "me") o["is_you"] = true;
        return ok(std::move(o));
      }
    return pipedrive_error(404, "User not found");
  }

  Result<net::HttpResponse> note_fields() {
    if (auto f = read_fault(ctx_, error)) return *f;
    const ObjectSchema* obj = schema_.object("notes");
    json::array data;
    int n = 1;
    if (obj) {
      for (const auto& f : obj->fields) {
        // The v1 noteFields schema has a narrower field_type enum than v2 (no int, deal, boolean).
        std::string type = field_type(f);
        if (type == "int" || type == "deal") type = "double";
        if (type == "boolean") type = "enum";
        data.push_back(json::object{{"id", n++},
                                    {"key", f.name},
                                    {"name", f.label},
                                    {"field_type", type},
                                    {"active_flag", true},
                                    {"edit_flag", !f.read_only},
                                    {"bulk_edit_allowed", !f.read_only},
                                    {"mandatory_flag", f.required}});
      }
    }
    return ok(std::move(data),
              json::object{{"pagination", json::object{{"start", 0}, {"limit", static_cast<std::int64_t>(data.size())},
                                                       {"more_items_in_collection", false}}}});
  }

  Result<net::HttpResponse> list_notes() {
    if (auto f = read_fault(ctx_, error)) return *f;
    std::size_t start = 0;
    std::size_t limit = 100;
    if (std::string s = req_.query("start"); !s.empty()) {
      auto n = parse_int(s);
      if (!n) return pipedrive_error(400, "Invalid start");
      start = static_cast<std::size_t>(*n);
    }
    if (std::string s = req_.query("limit"); !s.empty()) {
      auto n = parse_int(s);
      if (!n || *n < 1 || *n > static_cast<std::int64_t>(kV1LimitMax))
        return pipedrive_error(400, fmt::format("Invalid limit: must be between 1 and {}", kV1LimitMax));
      limit = static_cast<std::size_t>(*n);
    }
    std::string sort = req_.query("sort");
    std::string by = "id";
    bool desc = false;
    if (!sort.empty()) {
      auto sp = sort.find(' ');
      by = sort.substr(0, sp);
      std::string dir = sp == std::string::npos ? "ASC" : sort.substr(sp + 1);
      desc = lower(dir) == "desc";
      if (by != "id" && by != "update_time" && by != "add_time")
        return pipedrive_error(400, "Invalid sort field: id, add_time or update_time");
    }
    std::optional<std::int64_t> since;
    if (std::string s = req_.query("updated_since"); !s.empty()) {
      since = parse_timestamp_ms(s);
      if (!since) return pipedrive_error(400, "Invalid updated_since: use RFC3339, e.g. 2025-01-01T10:20:00Z");
    }
    CMG_ASSIGN_OR_RETURN(auto records, all_records(*ctx_.crm, "notes"));
    std::vector<const Record*> hits;
    std::vector<std::pair<std::string, std::string>> eq;
    for (const char* link : {"person_id", "deal_id", "org_id", "user_id"})
      if (std::string v = req_.query(link); !v.empty()) eq.emplace_back(link, v);
    for (const auto& r : records) {
      if (since && r.updated_at < *since) continue;
      bool keep = true;
      for (const auto& [field, want] : eq) {
        const auto* v = r.fields.if_contains(field);
        keep = keep && v && value_to_text(*v) == want;
      }
      if (keep) hits.push_back(&r);
    }
    std::stable_sort(hits.begin(), hits.end(), [&](const Record* a, const Record* b) {
      auto ka = std::make_pair(sort_key(*a, by), parse_int(a->id).value_or(0));
      auto kb = std::make_pair(sort_key(*b, by), parse_int(b->id).value_or(0));
      return desc ? kb < ka : ka < kb;
    });
    json::array data;
    for (std::size_t i = start; i < hits.size() && data.size() < limit; ++i) data.push_back(v1_note_json(*hits[i]));
    bool more = start + limit < hits.size();
    json::object pagination{{"start", static_cast<std::int64_t>(start)},
                            {"limit", static_cast<std::int64_t>(limit)},
                            {"more_items_in_collection", more}};
    if (more) pagination["next_start"] = static_cast<std::int64_t>(start + limit);
    return ok(std::move(data), json::object{{"pagination", std::move(pagination)}});
  }

  Result<net::HttpResponse> get_note(const std::string& id) {
    if (auto f = read_fault(ctx_, error)) return *f;
    if (!parse_int(id)) return pipedrive_error(400, "Invalid id");
    CMG_ASSIGN_OR_RETURN(auto rec, ctx_.crm->get("notes", id));
    if (!rec) return pipedrive_error(404, "Note not found");
    return ok(v1_note_json(*rec));
  }

  Result<net::HttpResponse> write_note(const std::string& id) {
    std::string perr;
    auto body = parse_body(req_, perr);
    if (!body || !body->is_object()) return pipedrive_error(400, perr.empty() ? "body must be a JSON object" : perr);
    WriteOp op;
    op.fields = body->get_object();
    if (id.empty()) {
      op.kind = WriteOp::Kind::kUpsert;
    } else {
      if (!parse_int(id)) return pipedrive_error(400, "Invalid id");
      op.kind = WriteOp::Kind::kUpdate;
      op.id = id;
    }
    CMG_ASSIGN_OR_RETURN(auto run, run_write(ctx_, "notes", {op}, error));
    if (run.refusal) return *run.refusal;
    if (run.results.empty()) return unapplied_reply(run.fault, ctx_);
    const WriteResult& r = run.results.front();
    net::HttpResponse res;
    if (r.outcome == WriteResult::Outcome::kFailed) {
      res = r.status == 404 ? pipedrive_error(404, "Note not found") : pipedrive_error(400, first_error(r));
    } else {
      CMG_ASSIGN_OR_RETURN(auto rec, ctx_.crm->get("notes", r.id));
      json::value data = rec ? json::value(v1_note_json(*rec)) : json::value(json::object{{"id", parse_int(r.id).value_or(0)}});
      res = ok(std::move(data));  // the v1 spec documents 200 for POST /notes
    }
    decorate_write_reply(res, run.fault, ctx_);
    return res;
  }

  Context& ctx_;
  const net::HttpRequest& req_;
  Schema schema_;
};

}  // namespace

net::HttpResponse pipedrive_error(int status, std::string_view message) {
  return json_reply(status, json::object{{"success", false},
                                         {"error", message},
                                         {"errorCode", status},
                                         {"error_info", "Please check developers.pipedrive.com for more information about Pipedrive API."}});
}

net::HttpResponse pipedrive_handle(Context& ctx, const net::HttpRequest& req) { return Pipedrive(ctx, req).run(); }

}  // namespace cmg::sandbox::serve_internal
