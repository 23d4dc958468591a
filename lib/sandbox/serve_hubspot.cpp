// The HubSpot dialect of `sandbox serve`: CRM v3 objects, search, properties, owners, pipelines and
// v4 associations over a "hubspot" sandbox (docs/http-dialects.md).
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <fmt/format.h>

#include "crmmigrate/core/time.hpp"
#include "sandbox/serve_internal.hpp"

namespace cmg::sandbox::serve_internal {
namespace {

constexpr std::size_t kListMax = 100;
constexpr std::size_t kBatchMax = 100;
constexpr std::size_t kSearchMax = 200;
constexpr std::int64_t kSearchCap = 10000;
// Inputs that a create without crm_source_id is upserted under, then cleared (the sandbox only
// creates through its idempotent upsert).
constexpr std::string_view kTempKeyPrefix = "__cmg_create_";

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string singular(std::string_view object) {
  static const std::map<std::string, std::string, std::less<>> names = {
      {"companies", "Company"}, {"contacts", "Contact"}, {"deals", "Deal"},   {"notes", "Note"},
      {"calls", "Call"},        {"meetings", "Meeting"}, {"tasks", "Task"},   {"emails", "Email"}};
  auto it = names.find(object);
  return it == names.end() ? std::string(object) : it->second;
}

// HubSpot's object type ids, used in association replies.
std::string object_type_id(std::string_view object) {
  static const std::map<std::string, std::string, std::less<>> ids = {
      {"contacts", "0-1"}, {"companies", "0-2"}, {"deals", "0-3"}, {"notes", "0-46"},
      {"calls", "0-48"},   {"meetings", "0-47"}, {"tasks", "0-27"}, {"emails", "0-49"}};
  auto it = ids.find(object);
  return it == ids.end() ? std::string(object) : it->second;
}

// HubSpot-defined association type ids for the default association of a pair.
int association_type_id(std::string_view from, std::string_view to) {
  static const std::map<std::pair<std::string, std::string>, int> ids = {
      {{"contacts", "companies"}, 279}, {{"companies", "contacts"}, 280}, {{"deals", "contacts"}, 3},
      {{"contacts", "deals"}, 4},       {{"deals", "companies"}, 341},    {{"companies", "deals"}, 342},
      {{"notes", "contacts"}, 202},     {{"contacts", "notes"}, 201},     {{"notes", "deals"}, 214},
      {{"deals", "notes"}, 213},        {{"notes", "companies"}, 190},    {{"companies", "notes"}, 189},
      {{"calls", "contacts"}, 194},     {{"calls", "deals"}, 206},        {{"meetings", "contacts"}, 200},
      {{"meetings", "deals"}, 212},     {{"tasks", "contacts"}, 204},     {{"tasks", "deals"}, 216},
      {{"emails", "contacts"}, 198},    {{"emails", "deals"}, 210},       {{"contacts", "calls"}, 193},
      {{"deals", "calls"}, 205},        {{"contacts", "meetings"}, 199},  {{"deals", "meetings"}, 211},
      {{"contacts", "tasks"}, 203},     {{"deals", "tasks"}, 215},        {{"contacts", "emails"}, 197},
      {{"deals", "emails"}, 209}};
  auto it = ids.find({std::string(from), std::string(to)});
  return it == ids.end() ? 1 : it->second;
}

net::HttpResponse error(int status, std::string_view category, std::string_view message) {
  return hubspot_error(status, category, message);
}

net::HttpResponse not_found_reply() { return error(404, "OBJECT_NOT_FOUND", "resource not found"); }

bool is_association_field(std::string_view name) { return name.rfind("associations.", 0) == 0; }

// The sandbox field a HubSpot property name reads (aliases of the system properties).
std::string field_for(std::string_view prop) {
  if (prop == "hs_lastmodifieddate") return "lastmodifieddate";
  if (prop == "hs_createdate") return "createdate";
  return std::string(prop);
}

bool known_property(const ObjectSchema& obj, std::string_view prop) {
  if (is_association_field(prop)) return false;
  return obj.field(field_for(prop)) != nullptr;
}

std::string modified_name(const ObjectSchema& obj) {
  return obj.name == "contacts" ? "lastmodifieddate" : "hs_lastmodifieddate";
}

std::vector<std::string> default_properties(const ObjectSchema& obj) {
  std::vector<std::string> out;
  if (obj.name == "contacts") out = {"firstname", "lastname", "email"};
  if (obj.name == "companies") out = {"name", "domain"};
  if (obj.name == "deals") out = {"dealname", "amount", "closedate", "pipeline", "dealstage"};
  return out;
}

std::int64_t created_ms(const Record& r) {
  if (const auto* v = r.fields.if_contains("createdate"); v && v->is_string()) {
    if (auto ms = parse_timestamp_ms(v->get_string())) return *ms;
  }
  return r.updated_at;
}

json::value property_value(const Record& r, std::string_view prop) {
  if (prop == "hs_object_id") return json::value(r.id);
  const auto* v = r.fields.if_contains(field_for(prop));
  if (!v || v->is_null()) return nullptr;
  return json::value(value_to_text(*v));
}

json::object record_json(const ObjectSchema& obj, const Record& r, const std::vector<std::string>& asked) {
  json::object props;
  props["createdate"] = property_value(r, "createdate");
  props["hs_object_id"] = r.id;
  props[modified_name(obj)] = property_value(r, "lastmodifieddate");
  const auto& names = asked.empty() ? default_properties(obj) : asked;
  for (const auto& p : names)
    if (known_property(obj, p) || p == "hs_object_id") props[p] = property_value(r, p);
  json::object o;
  o["id"] = r.id;
  o["properties"] = std::move(props);
  o["createdAt"] = format_timestamp_ms(created_ms(r));
  o["updatedAt"] = format_timestamp_ms(r.updated_at);
  o["archived"] = false;
  return o;
}

std::vector<std::string> string_list(const json::value* v) {
  std::vector<std::string> out;
  if (!v) return out;
  if (const auto* a = v->if_array()) {
    for (const auto& e : *a)
      if (e.is_string()) out.emplace_back(e.get_string());
  } else if (v->is_string()) {
    std::string s(v->get_string());
    std::size_t start = 0;
    while (start <= s.size()) {
      auto c = s.find(',', start);
      std::string item = s.substr(start, c == std::string::npos ? std::string::npos : c - start);
      if (!item.empty()) out.push_back(item);
      if (c == std::string::npos) break;
      start = c + 1;
    }
  }
  return out;
}

std::string str_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return {};
  return v->is_string() ? std::string(v->get_string()) : value_to_text(*v);
}

// ---- errors from write results ----

json::array field_errors_json(const WriteResult& r) {
  json::array out;
  for (const auto& e : r.errors) {
    out.push_back(json::object{{"code", e.code},
                               {"message", e.message},
                               {"in", e.field},
                               {"context", json::object{{"propertyName", json::array{json::value(e.field)}}}}});
  }
  return out;
}

std::string validation_message(const WriteResult& r) {
  json::array items;
  for (const auto& e : r.errors)
    items.push_back(json::object{{"isValid", false}, {"message", e.message}, {"error", e.code}, {"name", e.field}});
  return "Property values were not valid: " + json::serialize(items);
}

std::string conflict_message(const ObjectSchema& obj, const WriteResult& r) {
  std::string field = r.errors.empty() ? "" : r.errors.front().field;
  if (obj.name == "contacts" && field == "email") return singular(obj.name) + " already exists. Existing ID: " + r.existing_id;
  std::string value = r.errors.empty() ? "" : r.errors.front().value;
  return fmt::format("A {} with the unique property \"{}\" value \"{}\" already exists. Existing ID: {}",
                     lower(singular(obj.name)), field, value, r.existing_id);
}

const char* category_of(const WriteResult& r) {
  if (r.status == 409) return "CONFLICT";
  if (r.status == 404) return "OBJECT_NOT_FOUND";
  return "VALIDATION_ERROR";
}

// One entry of a batch reply's "errors" (multi-status shape).
json::object batch_error(const ObjectSchema& obj, const WriteResult& r, const std::string& input_id) {
  json::object e;
  e["status"] = "error";
  e["category"] = category_of(r);
  json::object context{{"ids", json::array{json::value(input_id)}}};
  if (r.status == 409) {
    e["message"] = conflict_message(obj, r);
    context["existingId"] = json::array{json::value(r.existing_id)};
  } else if (r.status == 404) {
    e["message"] = "Could not get some " + obj.name + " objects, they may be deleted or not exist. Check that ids are valid.";
  } else {
    e["message"] = validation_message(r);
    e["errors"] = field_errors_json(r);
  }
  e["context"] = std::move(context);
  return e;
}

net::HttpResponse single_error(const ObjectSchema& obj, const WriteResult& r) {
  if (r.status == 404) return not_found_reply();
  if (r.status == 409) return error(409, "CONFLICT", conflict_message(obj, r));
  net::HttpResponse res = error(r.status ? r.status : 400, "VALIDATION_ERROR", validation_message(r));
  boost::system::error_code ec;
  json::value body = json::parse(res.body, ec);
  if (!ec && body.is_object()) {
    body.as_object()["errors"] = field_errors_json(r);
    res.body = json::serialize(body);
  }
  return res;
}

std::string now_iso() {
  using namespace std::chrono;
  return format_timestamp_ms(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

// ---- the handler ----

class HubSpot {
 public:
  HubSpot(Context& ctx, const net::HttpRequest& req) : ctx_(ctx), req_(req) {}

  net::HttpResponse run() {
    auto schema_r = ctx_.crm->schema();
    if (!schema_r.is_ok()) return error(500, "INTERNAL_ERROR", "sandbox schema unavailable");
    schema_ = std::move(schema_r).value();
    auto seg = split_path(req_.path());
    const std::string& m = req_.method;
    auto res = route(seg, m);
    if (!res.is_ok()) return error(500, "INTERNAL_ERROR", "sandbox error: " + res.status().message());
    return std::move(res).value();
  }

 private:
  Result<net::HttpResponse> route(const std::vector<std::string>& seg, const std::string& m) {
    auto is = [&](std::size_t n, std::initializer_list<const char*> fixed) {
      if (seg.size() != n) return false;
      std::size_t i = 0;
      for (const char* f : fixed) {
        if (f && seg[i] != f) return false;
        ++i;
      }
      return true;
    };
    if (seg.size() >= 2 && seg[0] == "crm" && seg[1] == "v3") {
      if (is(3, {"crm", "v3", "owners"}) && m == "GET") return owners();
      if (is(4, {"crm", "v3", "owners", nullptr}) && m == "GET") return owner(seg[3]);
      if (is(4, {"crm", "v3", "pipelines", nullptr}) && m == "GET") return pipelines(seg[3]);
      if (is(4, {"crm", "v3", "properties", nullptr}) && m == "GET") return properties(seg[3], "");
      if (is(5, {"crm", "v3", "properties", nullptr, nullptr}) && m == "GET") return properties(seg[3], seg[4]);
      if (seg.size() >= 4 && seg[2] == "objects") {
        const ObjectSchema* obj = schema_.object(seg[3]);
        if (!obj) return error(400, "VALIDATION_ERROR", "Unable to infer object type from: " + seg[3]);
        if (seg.size() == 4 && m == "GET") return list(*obj);
        if (seg.size() == 4 && m == "POST") return create(*obj);
        if (seg.size() == 5 && seg[4] == "search" && m == "POST") return search(*obj);
        if (seg.size() == 5 && m == "GET") return get(*obj, seg[4]);
        if (seg.size() == 5 && m == "PATCH") return update(*obj, seg[4]);
        if (seg.size() == 6 && seg[4] == "batch" && m == "POST") return batch(*obj, seg[5]);
      }
    }
    if (seg.size() >= 2 && seg[0] == "crm" && seg[1] == "v4") {
      // PUT /crm/v4/objects/{from}/{id}/associations/default/{to}/{toId}
      if (seg.size() == 9 && seg[2] == "objects" && seg[5] == "associations" && seg[6] == "default" && m == "PUT")
        return associate_one(seg[3], seg[4], seg[7], seg[8]);
      // GET /crm/v4/objects/{from}/{id}/associations/{to}
      if (seg.size() == 7 && seg[2] == "objects" && seg[5] == "associations" && m == "GET")
        return associations_of(seg[3], seg[4], seg[6]);
      // POST /crm/v4/associations/{from}/{to}/batch/{create|read|associate/default}
      if (seg.size() >= 7 && seg[2] == "associations" && seg[5] == "batch" && m == "POST") {
        std::string op = seg[6];
        if (seg.size() == 8) op += "/" + seg[7];
        return association_batch(seg[3], seg[4], op);
      }
    }
    return error(404, "OBJECT_NOT_FOUND", "No route for " + m + " " + std::string(req_.path()));
  }

  // ---- owners, pipelines, properties ----

  json::object owner_json(const User& u) {
    std::string first = u.name;
    std::string last;
    if (auto sp = u.name.find(' '); sp != std::string::npos) {
      first = u.name.substr(0, sp);
      last = u.name.substr(sp + 1);
    }
    std::string created = "2020-01-01T00:00:00.000Z";
    json::object o{{"id", u.id},         {"email", u.email},     {"firstName", first},
                   {"lastName", last},   {"createdAt", created}, {"updatedAt", created},
                   {"archived", !u.active}};
    if (auto n = parse_int(u.id)) o["userId"] = *n;
    return o;
  }

  Result<net::HttpResponse> owners() {
    if (auto f = read_fault(ctx_, error)) return *f;
    std::size_t limit = 100;
    if (auto l = parse_int(req_.query("limit")); l && *l > 0) limit = std::min<std::size_t>(static_cast<std::size_t>(*l), 500);
    std::size_t start = 0;
    if (auto a = parse_int(req_.query("after"))) start = static_cast<std::size_t>(*a);
    std::string email = req_.query("email");
    bool archived = req_.query("archived") == "true";
    std::vector<const User*> users;
    for (const auto& u : schema_.users) {
      if (u.active == archived) continue;
      if (!email.empty() && lower(u.email) != lower(email)) continue;
      users.push_back(&u);
    }
    json::array results;
    for (std::size_t i = start; i < users.size() && results.size() < limit; ++i) results.push_back(owner_json(*users[i]));
    json::object body{{"results", std::move(results)}};
    if (start + limit < users.size()) {
      std::string after = std::to_string(start + limit);
      body["paging"] = json::object{{"next", json::object{{"after", after}, {"link", "?after=" + after}}}};
    }
    return json_reply(200, body);
  }

  Result<net::HttpResponse> owner(const std::string& id) {
    if (auto f = read_fault(ctx_, error)) return *f;
    for (const auto& u : schema_.users)
      if (u.id == id) return json_reply(200, owner_json(u));
    return not_found_reply();
  }

  Result<net::HttpResponse> pipelines(const std::string& object) {
    if (auto f = read_fault(ctx_, error)) return *f;
    if (object != "deals" && object != "0-3") {
      return error(400, "VALIDATION_ERROR", "Pipelines are not supported for object type " + object + " in the sandbox");
    }
    json::array results;
    int order = 0;
    std::string created = "2020-01-01T00:00:00.000Z";
    for (const auto& p : ctx_.crm->pipelines()) {
      json::array stages;
      int so = 0;
      for (const auto& s : p.stages) {
        bool closed = s.value.find("closed") != std::string::npos || s.value == "partner_won";
        std::string prob = s.value == "closedwon" || s.value == "partner_won" ? "1.0" : closed ? "0.0" : "0.5";
        stages.push_back(json::object{{"id", s.value},
                                      {"label", s.label},
                                      {"displayOrder", so++},
                                      {"metadata", json::object{{"isClosed", closed ? "true" : "false"},
                                                                {"probability", prob}}},
                                      {"createdAt", created},
                                      {"updatedAt", created},
                                      {"archived", false}});
      }
      results.push_back(json::object{{"id", p.id},
                                     {"label", p.label},
                                     {"displayOrder", order++},
                                     {"stages", std::move(stages)},
                                     {"createdAt", created},
                                     {"updatedAt", created},
                                     {"archived", false}});
    }
    return json_reply(200, json::object{{"results", std::move(results)}});
  }

  json::object property_json(const ObjectSchema& obj, const FieldSchema& f) {
    std::string type = "string";
    std::string field_type = "text";
    json::array options;
    auto add_options = [&](const std::vector<Option>& opts) {
      int i = 0;
      for (const auto& o : opts)
        options.push_back(json::object{{"label", o.label}, {"value", o.value}, {"displayOrder", i++}, {"hidden", false}});
    };
    switch (f.type) {
      case FieldType::kText: field_type = "textarea"; break;
      case FieldType::kNumber:
      case FieldType::kInteger: type = "number"; field_type = "number"; break;
      case FieldType::kBool:
        type = "bool";
        field_type = "booleancheckbox";
        add_options({{"true", "Yes"}, {"false", "No"}});
        break;
      case FieldType::kDate: type = "date"; field_type = "date"; break;
      case FieldType::kDateTime: type = "datetime"; field_type = "date"; break;
      case FieldType::kEnum: {
        type = "enumeration";
        field_type = "select";
        if (!f.options_by.empty()) {
          for (const auto& [k, opts] : f.options_by_value) add_options(opts);
        } else {
          add_options(f.options);
        }
        break;
      }
      case FieldType::kPhone: type = "phone_number"; field_type = "phonenumber"; break;
      case FieldType::kReference: {
        type = "enumeration";
        field_type = "select";
        std::vector<Option> owners;
        for (const auto& u : schema_.users) owners.push_back({u.id, u.name});
        add_options(owners);
        break;
      }
      default: break;
    }
    const bool system = f.name == "hs_object_id" || f.name == "createdate" || f.name == "lastmodifieddate";
    std::string name = f.name == "lastmodifieddate" ? modified_name(obj) : f.name;
    json::object p{{"name", name},
                   {"label", f.label},
                   {"type", type},
                   {"fieldType", field_type},
                   {"description", ""},
                   {"groupName", lower(singular(obj.name)) + "information"},
                   {"options", std::move(options)},
                   {"displayOrder", -1},
                   {"calculated", false},
                   {"externalOptions", false},
                   {"hasUniqueValue", f.unique},
                   {"hidden", false},
                   {"hubspotDefined", f.name != "crm_source_id"},
                   {"archived", false},
                   {"formField", !f.read_only},
                   {"createdAt", "2020-01-01T00:00:00.000Z"},
                   {"updatedAt", "2020-01-01T00:00:00.000Z"},
                   {"modificationMetadata", json::object{{"archivable", !system && f.name != "crm_source_id"},
                                                         {"readOnlyDefinition", f.name != "crm_source_id"},
                                                         {"readOnlyValue", f.read_only}}}};
    if (f.type == FieldType::kReference) p["referencedObjectType"] = "OWNER";
    return p;
  }

  Result<net::HttpResponse> properties(const std::string& object, const std::string& name) {
    if (auto f = read_fault(ctx_, error)) return *f;
    const ObjectSchema* obj = schema_.object(object);
    if (!obj) return error(400, "VALIDATION_ERROR", "Unable to infer object type from: " + object);
    json::array results;
    for (const auto& f : obj->fields) {
      if (is_association_field(f.name)) continue;
      std::string pname = f.name == "lastmodifieddate" ? modified_name(*obj) : f.name;
      if (!name.empty()) {
        if (name == pname || (name == "lastmodifieddate" && f.name == "lastmodifieddate"))
          return json_reply(200, property_json(*obj, f));
        continue;
      }
      results.push_back(property_json(*obj, f));
    }
    if (!name.empty()) return error(404, "OBJECT_NOT_FOUND", "Unable to find property " + name + " on " + object);
    return json_reply(200, json::object{{"results", std::move(results)}});
  }

  // ---- reads ----

  std::vector<std::string> asked_properties() { return query_list(req_, "properties"); }

  Result<net::HttpResponse> list(const ObjectSchema& obj) {
    if (auto f = read_fault(ctx_, error)) return *f;
    std::size_t limit = 10;
    if (!req_.query("limit").empty()) {
      auto l = parse_int(req_.query("limit"));
      if (!l || *l < 1 || *l > static_cast<std::int64_t>(kListMax))
        return error(400, "VALIDATION_ERROR", fmt::format("limit must be between 1 and {}", kListMax));
      limit = static_cast<std::size_t>(*l);
    }
    std::int64_t after = 0;
    if (!req_.query("after").empty()) {
      auto a = parse_int(req_.query("after"));
      if (!a) return error(400, "VALIDATION_ERROR", "after must be a record id cursor");
      after = *a;
    }
    json::array results;
    json::object body;
    if (req_.query("archived") != "true") {
      CMG_ASSIGN_OR_RETURN(auto records, all_records(*ctx_.crm, obj.name));
      auto props = asked_properties();
      std::string next;
      for (const auto& r : records) {
        auto id = parse_int(r.id).value_or(0);
        if (id <= after) continue;
        if (results.size() == limit) {
          // The cursor is the id of the next record; a page starts after `after - 1` inclusive.
          next = std::to_string(id - 1);
          break;
        }
        results.push_back(record_json(obj, r, props));
      }
      if (!next.empty()) {
        body["paging"] = json::object{{"next", json::object{{"after", next},
                                                           {"link", "?after=" + next}}}};
      }
    }
    body["results"] = std::move(results);
    return json_reply(200, body);
  }

  // Finds one record by id or by the unique `id_property`; nullopt when absent.
  Result<std::optional<Record>> lookup(const ObjectSchema& obj, const std::string& id, const std::string& id_property) {
    if (id_property.empty() || id_property == "hs_object_id") {
      if (!parse_int(id)) return std::optional<Record>();
      return ctx_.crm->get(obj.name, id);
    }
    CMG_ASSIGN_OR_RETURN(auto found, ctx_.crm->find(obj.name, id_property, {id}));
    if (found.empty()) return std::optional<Record>();
    return std::optional<Record>(std::move(found.front()));
  }

  Status check_id_property(const ObjectSchema& obj, const std::string& id_property, net::HttpResponse& res) {
    if (id_property.empty() || id_property == "hs_object_id") return Status::ok();
    const FieldSchema* f = obj.field(id_property);
    if (!f || !f->unique) {
      res = error(400, "VALIDATION_ERROR",
                  "Property \"" + id_property + "\" is not a unique identifier property of " + obj.name);
      return invalid_argument("bad idProperty");
    }
    return Status::ok();
  }

  Result<net::HttpResponse> get(const ObjectSchema& obj, const std::string& id) {
    if (auto f = read_fault(ctx_, error)) return *f;
    std::string id_property = req_.query("idProperty");
    net::HttpResponse bad;
    if (!check_id_property(obj, id_property, bad).is_ok()) return bad;
    CMG_ASSIGN_OR_RETURN(auto rec, lookup(obj, id, id_property));
    if (!rec) return not_found_reply();
    return json_reply(200, record_json(obj, *rec, asked_properties()));
  }

  // ---- search ----

  struct Filter {
    std::string property;
    std::string op;
    std::string value;
    std::string high;
    std::vector<std::string> values;
  };

  std::optional<std::string> prop_text(const ObjectSchema& obj, const Record& r, const std::string& prop) {
    (void)obj;
    if (prop == "hs_object_id") return r.id;
    const auto* v = r.fields.if_contains(field_for(prop));
    if (!v || value_is_blank(*v)) return std::nullopt;
    return value_to_text(*v);
  }

  static bool is_time_prop(const std::string& p) {
    return p == "lastmodifieddate" || p == "hs_lastmodifieddate" || p == "createdate" || p == "hs_createdate";
  }

  // Compares a record's property with a filter value: numbers and times numerically, text
  // case-insensitively. Returns <0, 0, >0; nullopt when incomparable.
  std::optional<int> compare(const ObjectSchema& obj, const std::string& prop, const std::string& have,
                             const std::string& want) {
    const FieldSchema* f = obj.field(field_for(prop));
    bool timey = is_time_prop(prop) || (f && (f->type == FieldType::kDateTime || f->type == FieldType::kDate));
    if (timey) {
      auto a = parse_timestamp_ms(have);
      auto b = parse_timestamp_ms(want);
      if (!a || !b) return std::nullopt;
      return *a < *b ? -1 : *a > *b ? 1 : 0;
    }
    bool numeric = prop == "hs_object_id" || (f && (f->type == FieldType::kNumber || f->type == FieldType::kInteger));
    if (numeric) {
      char* e1 = nullptr;
      char* e2 = nullptr;
      double a = std::strtod(have.c_str(), &e1);
      double b = std::strtod(want.c_str(), &e2);
      if (e1 == have.c_str() || e2 == want.c_str()) return std::nullopt;
      return a < b ? -1 : a > b ? 1 : 0;
    }
    std::string a = lower(have);
    std::string b = lower(want);
    return a < b ? -1 : a > b ? 1 : 0;
  }

  bool matches(const ObjectSchema& obj, const Record& r, const Filter& f) {
    auto have = prop_text(obj, r, f.property);
    if (f.op == "HAS_PROPERTY") return have.has_value();
    if (f.op == "NOT_HAS_PROPERTY") return !have.has_value();
    if (f.op == "NEQ") {
      if (!have) return true;
      auto c = compare(obj, f.property, *have, f.value);
      return !c || *c != 0;
    }
    if (f.op == "NOT_IN") {
      if (!have) return true;
      for (const auto& v : f.values) {
        auto c = compare(obj, f.property, *have, v);
        if (c && *c == 0) return false;
      }
      return true;
    }
    if (!have) return false;
    if (f.op == "IN") {
      for (const auto& v : f.values) {
        auto c = compare(obj, f.property, *have, v);
        if (c && *c == 0) return true;
      }
      return false;
    }
    if (f.op == "CONTAINS_TOKEN") {
      std::string needle = lower(f.value);
      needle.erase(std::remove(needle.begin(), needle.end(), '*'), needle.end());
      return lower(*have).find(needle) != std::string::npos;
    }
    if (f.op == "NOT_CONTAINS_TOKEN") {
      std::string needle = lower(f.value);
      needle.erase(std::remove(needle.begin(), needle.end(), '*'), needle.end());
      return lower(*have).find(needle) == std::string::npos;
    }
    auto c = compare(obj, f.property, *have, f.value);
    if (!c) return false;
    if (f.op == "EQ") return *c == 0;
    if (f.op == "LT") return *c < 0;
    if (f.op == "LTE") return *c <= 0;
    if (f.op == "GT") return *c > 0;
    if (f.op == "GTE") return *c >= 0;
    if (f.op == "BETWEEN") {
      auto c2 = compare(obj, f.property, *have, f.high);
      return *c >= 0 && c2 && *c2 <= 0;
    }
    return false;
  }

  Result<net::HttpResponse> search(const ObjectSchema& obj) {
    std::string perr;
    auto body = parse_body(req_, perr);
    if (!body || !body->is_object()) return error(400, "VALIDATION_ERROR", perr.empty() ? "body must be a JSON object" : perr);
    const json::object& q = body->get_object();
    static const std::set<std::string> kOps = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
                                               "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN",
                                               "NOT_CONTAINS_TOKEN"};
    std::vector<std::vector<Filter>> groups;
    if (const auto* fg = q.if_contains("filterGroups")) {
      if (!fg->is_array()) return error(400, "VALIDATION_ERROR", "filterGroups must be an array");
      if (fg->get_array().size() > 5) return error(400, "VALIDATION_ERROR", "Too many filter groups (max 5)");
      std::size_t total = 0;
      for (const auto& gv : fg->get_array()) {
        const auto* g = gv.if_object();
        const auto* filters = g ? g->if_contains("filters") : nullptr;
        if (!filters || !filters->is_array()) return error(400, "VALIDATION_ERROR", "each filter group needs a filters array");
        std::vector<Filter> group;
        for (const auto& fv : filters->get_array()) {
          const auto* fo = fv.if_object();
          if (!fo) return error(400, "VALIDATION_ERROR", "a filter must be an object");
          Filter f;
          f.property = str_of(*fo, "propertyName");
          f.op = str_of(*fo, "operator");
          f.value = str_of(*fo, "value");
          f.high = str_of(*fo, "highValue");
          if (const auto* vs = fo->if_contains("values"); vs && vs->is_array())
            for (const auto& e : vs->get_array()) f.values.push_back(e.is_string() ? std::string(e.get_string()) : value_to_text(e));
          if (!kOps.count(f.op)) return error(400, "VALIDATION_ERROR", "Unknown filter operator \"" + f.op + "\"");
          if (f.property != "hs_object_id" && !known_property(obj, f.property))
            return error(400, "VALIDATION_ERROR", "Unknown property \"" + f.property + "\" for " + obj.name);
          group.push_back(std::move(f));
        }
        total += group.size();
        if (group.size() > 6) return error(400, "VALIDATION_ERROR", "Too many filters in a group (max 6)");
        groups.push_back(std::move(group));
      }
      if (total > 18) return error(400, "VALIDATION_ERROR", "Too many filters (max 18)");
    }
    std::size_t limit = 10;
    if (const auto* l = q.if_contains("limit")) {
      auto n = l->is_int64() ? std::optional<std::int64_t>(l->get_int64()) : parse_int(str_of(q, "limit"));
      if (!n || *n < 1 || *n > static_cast<std::int64_t>(kSearchMax))
        return error(400, "VALIDATION_ERROR", fmt::format("limit must be between 1 and {}", kSearchMax));
      limit = static_cast<std::size_t>(*n);
    }
    std::int64_t after = 0;
    if (const auto* a = q.if_contains("after"); a && !a->is_null()) {
      auto n = a->is_int64() ? std::optional<std::int64_t>(a->get_int64()) : parse_int(str_of(q, "after"));
      if (!n) return error(400, "VALIDATION_ERROR", "after must be a number");
      after = *n;
    }
    if (after + static_cast<std::int64_t>(limit) > kSearchCap) {
      return error(400, "VALIDATION_ERROR",
                   fmt::format("The search results are capped at {} records: after + limit must not exceed it", kSearchCap));
    }
    std::vector<std::pair<std::string, bool>> sorts;  // property, descending
    if (const auto* s = q.if_contains("sorts"); s && s->is_array()) {
      for (const auto& sv : s->get_array()) {
        if (sv.is_string()) {
          std::string t(sv.get_string());
          bool desc = !t.empty() && t[0] == '-';
          sorts.emplace_back(desc ? t.substr(1) : t, desc);
        } else if (const auto* so = sv.if_object()) {
          sorts.emplace_back(str_of(*so, "propertyName"), str_of(*so, "direction") == "DESCENDING");
        }
      }
    }
    std::string text_query = lower(str_of(q, "query"));
    auto props = string_list(q.if_contains("properties"));
    if (auto f = read_fault(ctx_, error)) return *f;

    CMG_ASSIGN_OR_RETURN(auto records, all_records(*ctx_.crm, obj.name));
    std::vector<const Record*> hits;
    for (const auto& r : records) {
      bool ok = groups.empty();
      for (const auto& g : groups) {
        bool all = true;
        for (const auto& f : g) all = all && matches(obj, r, f);
        if (all) {
          ok = true;
          break;
        }
      }
      if (ok && !text_query.empty()) {
        bool any = false;
        for (const auto& [k, v] : r.fields)
          if (!v.is_array() && lower(value_to_text(v)).find(text_query) != std::string::npos) any = true;
        ok = any;
      }
      if (ok) hits.push_back(&r);
    }
    if (!sorts.empty()) {
      std::stable_sort(hits.begin(), hits.end(), [&](const Record* a, const Record* b) {
        for (const auto& [prop, desc] : sorts) {
          auto ta = prop_text(obj, *a, prop);
          auto tb = prop_text(obj, *b, prop);
          if (!ta && !tb) continue;
          if (!ta || !tb) return desc ? ta.has_value() : !ta.has_value();  // blanks first ascending
          auto c = compare(obj, prop, *ta, *tb);
          if (!c || *c == 0) continue;
          return desc ? *c > 0 : *c < 0;
        }
        return false;
      });
    }
    json::array results;
    for (std::size_t i = static_cast<std::size_t>(after); i < hits.size() && results.size() < limit; ++i)
      results.push_back(record_json(obj, *hits[i], props));
    json::object out{{"total", hits.size()}, {"results", std::move(results)}};
    std::int64_t next = after + static_cast<std::int64_t>(limit);
    if (static_cast<std::size_t>(next) < hits.size() && next < kSearchCap) {
      out["paging"] = json::object{{"next", json::object{{"after", std::to_string(next)}}}};
    }
    return json_reply(200, out);
  }

  // ---- writes ----

  // Properties of a write input: strings as HubSpot sends them; association fields are not
  // writable through properties.
  Result<json::object> input_properties(const json::object& input, std::string& problem) {
    json::object out;
    const auto* p = input.if_contains("properties");
    if (!p) return out;
    if (!p->is_object()) {
      problem = "properties must be an object";
      return out;
    }
    for (const auto& [k, v] : p->get_object()) {
      std::string key(k);
      if (key == "hs_lastmodifieddate") key = "lastmodifieddate";
      if (key == "hs_createdate") key = "createdate";
      out[key] = v;
    }
    return out;
  }

  json::object result_json(const ObjectSchema& obj, const WriteResult& r, bool with_new) {
    auto rec = ctx_.crm->get(obj.name, r.id);
    json::object o;
    if (rec.is_ok() && rec->has_value()) {
      // Writes answer with the properties HubSpot echoes: the ones sent plus the system ones.
      o = record_json(obj, **rec, {});
      json::object& props = o["properties"].as_object();
      for (const auto& [k, v] : (*rec)->fields)
        if (!is_association_field(k) && !v.is_null() && !v.is_array()) props[std::string(k)] = value_to_text(v);
    } else {
      o["id"] = r.id;
    }
    if (with_new) o["new"] = r.outcome == WriteResult::Outcome::kCreated;
    return o;
  }

  // Creates: crm_source_id given → create unless it exists (409 like a unique property conflict);
  // not given → created under a temporary key which is then cleared.
  struct CreatePrep {
    std::vector<WriteOp> ops;
    std::vector<bool> temp;
    std::vector<std::optional<WriteResult>> early;  // conflicts found before writing
  };

  Result<CreatePrep> prepare_creates(const ObjectSchema& obj, const std::vector<json::object>& inputs) {
    CreatePrep prep;
    for (const auto& props : inputs) {
      WriteOp op;
      op.kind = WriteOp::Kind::kUpsert;
      op.fields = props;
      std::string key = obj.id_property.empty() ? std::string() : str_of(props, obj.id_property);
      bool temp = key.empty();
      std::optional<WriteResult> early;
      if (temp) {
        key = std::string(kTempKeyPrefix) + correlation_id();
        op.fields.erase(obj.id_property);
      } else {
        CMG_ASSIGN_OR_RETURN(auto found, ctx_.crm->find(obj.name, obj.id_property, {key}));
        if (!found.empty()) {
          WriteResult r;
          r.status = 409;
          r.existing_id = found.front().id;
          r.errors.push_back(FieldError{obj.id_property, key, "DUPLICATE_VALUE", "duplicate"});
          early = r;
        }
      }
      op.idempotency_key = key;
      prep.ops.push_back(std::move(op));
      prep.temp.push_back(temp);
      prep.early.push_back(std::move(early));
    }
    return prep;
  }

  Status clear_temp_keys(const ObjectSchema& obj, const CreatePrep& prep, const std::vector<WriteResult>& results) {
    for (std::size_t i = 0; i < results.size() && i < prep.temp.size(); ++i) {
      if (!prep.temp[i] || results[i].outcome == WriteResult::Outcome::kFailed) continue;
      CMG_ASSIGN_OR_RETURN(auto rec, ctx_.crm->get(obj.name, results[i].id));
      std::int64_t updated = rec ? rec->updated_at : 0;
      CMG_RETURN_IF_ERROR(ctx_.crm->update_fields(obj.name, results[i].id,
                                                  json::object{{obj.id_property, nullptr}}, updated));
    }
    return Status::ok();
  }

  // Runs the ops that have no early result; merges the early results back in input order.
  Result<WriteRun> write_with_early(const ObjectSchema& obj, const std::vector<WriteOp>& ops,
                                    const std::vector<std::optional<WriteResult>>& early) {
    std::vector<WriteOp> todo;
    for (std::size_t i = 0; i < ops.size(); ++i)
      if (!early[i]) todo.push_back(ops[i]);
    CMG_ASSIGN_OR_RETURN(auto run, run_write(ctx_, obj.name, todo, error));
    if (run.refusal || run.results.empty()) return run;
    std::vector<WriteResult> merged;
    std::size_t next = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) merged.push_back(early[i] ? *early[i] : run.results[next++]);
    run.results = std::move(merged);
    return run;
  }

  Result<net::HttpResponse> create(const ObjectSchema& obj) {
    std::string perr;
    auto body = parse_body(req_, perr);
    if (!body || !body->is_object()) return error(400, "VALIDATION_ERROR", perr.empty() ? "body must be a JSON object" : perr);
    std::string problem;
    CMG_ASSIGN_OR_RETURN(auto props, input_properties(body->get_object(), problem));
    if (!problem.empty()) return error(400, "VALIDATION_ERROR", problem);
    CMG_ASSIGN_OR_RETURN(auto prep, prepare_creates(obj, {props}));
    CMG_ASSIGN_OR_RETURN(auto run, write_with_early(obj, prep.ops, prep.early));
    if (run.refusal) return *run.refusal;
    if (run.results.empty()) return unapplied_reply(run.fault, ctx_);
    CMG_RETURN_IF_ERROR(clear_temp_keys(obj, prep, run.results));
    const WriteResult& r = run.results.front();
    net::HttpResponse res = r.outcome == WriteResult::Outcome::kFailed ? single_error(obj, r)
                                                                       : json_reply(201, result_json(obj, r, false));
    decorate_write_reply(res, run.fault, ctx_);
    return res;
  }

  Result<net::HttpResponse> update(const ObjectSchema& obj, const std::string& id) {
    std::string perr;
    auto body = parse_body(req_, perr);
    if (!body || !body->is_object()) return error(400, "VALIDATION_ERROR", perr.empty() ? "body must be a JSON object" : perr);
    std::string problem;
    CMG_ASSIGN_OR_RETURN(auto props, input_properties(body->get_object(), problem));
    if (!problem.empty()) return error(400, "VALIDATION_ERROR", problem);
    std::string id_property = req_.query("idProperty");
    net::HttpResponse bad;
    if (!check_id_property(obj, id_property, bad).is_ok()) return bad;
    std::string target = id;
    if (!id_property.empty() && id_property != "hs_object_id") {
      CMG_ASSIGN_OR_RETURN(auto rec, lookup(obj, id, id_property));
      if (!rec) return not_found_reply();
      target = rec->id;
    }
    WriteOp op;
    op.kind = WriteOp::Kind::kUpdate;
    op.id = target;
    op.fields = std::move(props);
    CMG_ASSIGN_OR_RETURN(auto run, run_write(ctx_, obj.name, {op}, error));
    if (run.refusal) return *run.refusal;
    if (run.results.empty()) return unapplied_reply(run.fault, ctx_);
    const WriteResult& r = run.results.front();
    net::HttpResponse res = r.outcome == WriteResult::Outcome::kFailed ? single_error(obj, r)
                                                                       : json_reply(200, result_json(obj, r, false));
    decorate_write_reply(res, run.fault, ctx_);
    return res;
  }

  net::HttpResponse batch_reply(const ObjectSchema& obj, const std::vector<WriteResult>& results,
                                const std::vector<std::string>& input_ids, bool with_new, int ok_status,
                                const std::string& started) {
    json::array ok;
    json::array errors;
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (results[i].outcome == WriteResult::Outcome::kFailed) {
        errors.push_back(batch_error(obj, results[i], i < input_ids.size() ? input_ids[i] : ""));
      } else {
        ok.push_back(result_json(obj, results[i], with_new));
      }
    }
    json::object body{{"status", "COMPLETE"}, {"results", std::move(ok)}, {"startedAt", started}, {"completedAt", now_iso()}};
    if (!errors.empty()) {
      body["numErrors"] = errors.size();
      body["errors"] = std::move(errors);
      return json_reply(207, body);
    }
    return json_reply(ok_status, body);
  }

  Result<net::HttpResponse> batch(const ObjectSchema& obj, const std::string& op) {
    const std::string started = now_iso();
    std::string perr;
    auto body = parse_body(req_, perr);
    if (!body || !body->is_object()) return error(400, "VALIDATION_ERROR", perr.empty() ? "body must be a JSON object" : perr);
    const json::object& b = body->get_object();
    const auto* inputs_v = b.if_contains("inputs");
    if (!inputs_v || !inputs_v->is_array()) return error(400, "VALIDATION_ERROR", "inputs must be an array");
    const json::array& inputs = inputs_v->get_array();
    if (inputs.size() > kBatchMax)
      return error(400, "VALIDATION_ERROR", fmt::format("Batch input must contain at most {} inputs (got {})", kBatchMax, inputs.size()));
    std::vector<const json::object*> ins;
    for (const auto& v : inputs) {
      if (!v.is_object()) return error(400, "VALIDATION_ERROR", "each input must be an object");
      ins.push_back(&v.get_object());
    }

    if (op == "read") {
      std::string id_property = str_of(b, "idProperty");
      net::HttpResponse bad;
      if (!check_id_property(obj, id_property, bad).is_ok()) return bad;
      auto props = string_list(b.if_contains("properties"));
      if (auto f = read_fault(ctx_, error)) return *f;
      json::array results;
      json::array missing;
      std::set<std::string> seen;
      for (const auto* in : ins) {
        std::string id = str_of(*in, "id");
        CMG_ASSIGN_OR_RETURN(auto rec, lookup(obj, id, id_property));
        if (!rec) {
          missing.push_back(json::value(id));
        } else if (seen.insert(rec->id).second) {
          results.push_back(record_json(obj, *rec, props));
        }
      }
      json::object out{{"status", "COMPLETE"}, {"results", std::move(results)}, {"startedAt", started}, {"completedAt", now_iso()}};
      if (!missing.empty()) {
        out["numErrors"] = 1;
        out["errors"] = json::array{json::object{
            {"status", "error"},
            {"category", "OBJECT_NOT_FOUND"},
            {"message", "Could not get some " + obj.name + " objects, they may be deleted or not exist. Check that ids are valid."},
            {"context", json::object{{"ids", std::move(missing)}}}}};
        return json_reply(207, out);
      }
      return json_reply(200, out);
    }

    if (op == "upsert") {
      std::vector<WriteOp> ops;
      std::vector<std::string> ids;
      for (const auto* in : ins) {
        std::string id_property = str_of(*in, "idProperty");
        if (id_property.empty()) id_property = str_of(b, "idProperty");
        if (id_property != obj.id_property || obj.id_property.empty()) {
          return error(400, "VALIDATION_ERROR",
                       "idProperty must be \"" + obj.id_property + "\" (the unique property the sandbox upserts on), not \"" +
                           id_property + "\"");
        }
        std::string problem;
        CMG_ASSIGN_OR_RETURN(auto props, input_properties(*in, problem));
        if (!problem.empty()) return error(400, "VALIDATION_ERROR", problem);
        WriteOp w;
        w.kind = WriteOp::Kind::kUpsert;
        w.idempotency_key = str_of(*in, "id");
        w.fields = std::move(props);
        ids.push_back(w.idempotency_key);
        ops.push_back(std::move(w));
      }
      CMG_ASSIGN_OR_RETURN(auto run, run_write(ctx_, obj.name, ops, error));
      if (run.refusal) return *run.refusal;
      if (run.results.empty()) return unapplied_reply(run.fault, ctx_);
      auto res = batch_reply(obj, run.results, ids, true, 200, started);
      decorate_write_reply(res, run.fault, ctx_);
      return res;
    }

    if (op == "create") {
      std::vector<json::object> props_list;
      for (const auto* in : ins) {
        std::string problem;
        CMG_ASSIGN_OR_RETURN(auto props, input_properties(*in, problem));
        if (!problem.empty()) return error(400, "VALIDATION_ERROR", problem);
        props_list.push_back(std::move(props));
      }
      CMG_ASSIGN_OR_RETURN(auto prep, prepare_creates(obj, props_list));
      CMG_ASSIGN_OR_RETURN(auto run, write_with_early(obj, prep.ops, prep.early));
      if (run.refusal) return *run.refusal;
      if (run.results.empty()) return unapplied_reply(run.fault, ctx_);
      CMG_RETURN_IF_ERROR(clear_temp_keys(obj, prep, run.results));
      std::vector<std::string> ids;
      for (std::size_t i = 0; i < prep.ops.size(); ++i)
        ids.push_back(prep.temp[i] ? std::to_string(i) : prep.ops[i].idempotency_key);
      auto res = batch_reply(obj, run.results, ids, false, 201, started);
      decorate_write_reply(res, run.fault, ctx_);
      return res;
    }

    if (op == "update") {
      std::string id_property = str_of(b, "idProperty");
      net::HttpResponse bad;
      if (!check_id_property(obj, id_property, bad).is_ok()) return bad;
      std::vector<WriteOp> ops;
      std::vector<std::string> ids;
      for (const auto* in : ins) {
        std::string problem;
        CMG_ASSIGN_OR_RETURN(auto props, input_properties(*in, problem));
        if (!problem.empty()) return error(400, "VALIDATION_ERROR", problem);
        WriteOp w;
        w.kind = WriteOp::Kind::kUpdate;
        std::string id = str_of(*in, "id");
        w.id = id;
        if (!id_property.empty() && id_property != "hs_object_id") {
          CMG_ASSIGN_OR_RETURN(auto rec, lookup(obj, id, id_property));
          w.id = rec ? rec->id : std::string("0");
        }
        w.fields = std::move(props);
        ids.push_back(id);
        ops.push_back(std::move(w));
      }
      CMG_ASSIGN_OR_RETURN(auto run, run_write(ctx_, obj.name, ops, error));
      if (run.refusal) return *run.refusal;
      if (run.results.empty()) return unapplied_reply(run.fault, ctx_);
      auto res = batch_reply(obj, run.results, ids, false, 200, started);
      decorate_write_reply(res, run.fault, ctx_);
      return res;
    }
    return error(404, "OBJECT_NOT_FOUND", "No batch operation \"" + op + "\"");
  }

  // ---- associations (v4) ----

  // Where the sandbox keeps an association between `from` and `to`: on `from` records in field
  // associations.<to> (forward), or on `to` records in associations.<from> (reverse).
  struct Link {
    const ObjectSchema* holder = nullptr;
    std::string field;
    bool forward = true;
  };

  std::optional<Link> link_of(const std::string& from, const std::string& to) {
    const ObjectSchema* f = schema_.object(from);
    const ObjectSchema* t = schema_.object(to);
    if (!f || !t) return std::nullopt;
    if (f->field("associations." + to)) return Link{f, "associations." + to, true};
    if (t->field("associations." + from)) return Link{t, "associations." + from, false};
    return std::nullopt;
  }

  static std::vector<std::string> ids_in(const json::value* v) {
    std::vector<std::string> out;
    if (!v || v->is_null()) return out;
    if (const auto* a = v->if_array()) {
      for (const auto& e : *a) out.push_back(value_to_text(e));
    } else if (!value_is_blank(*v)) {
      out.push_back(value_to_text(*v));
    }
    return out;
  }

  // The update that sets holder record `id`'s association field to `ids`, in numeric id order: one
  // id as a plain value, several as an array.
  static WriteOp link_update(const Link& link, const std::string& id, std::vector<std::string> ids) {
    std::sort(ids.begin(), ids.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    WriteOp op;
    op.kind = WriteOp::Kind::kUpdate;
    op.id = id;
    if (ids.size() == 1) {
      op.fields[link.field] = ids.front();
    } else {
      json::array a;
      for (const auto& x : ids) a.push_back(json::value(x));
      op.fields[link.field] = std::move(a);
    }
    return op;
  }

  // Adds `other` to the association field of holder record `id`. Returns the failed result, if any.
  Result<WriteRun> add_link(const Link& link, const std::string& id, const std::string& other) {
    CMG_ASSIGN_OR_RETURN(auto rec, ctx_.crm->get(link.holder->name, id));
    std::vector<std::string> ids = rec ? ids_in(rec->fields.if_contains(link.field)) : std::vector<std::string>{};
    if (std::find(ids.begin(), ids.end(), other) == ids.end()) ids.push_back(other);
    return run_write(ctx_, link.holder->name, {link_update(link, id, std::move(ids))}, error);
  }

  json::object association_result(const std::string& from, const std::string& from_id, const std::string& to,
                                   const std::string& to_id) {
    return json::object{
        {"fromObjectTypeId", object_type_id(from)},
        {"fromObjectId", parse_int(from_id).value_or(0)},
        {"toObjectTypeId", object_type_id(to)},
        {"toObjectId", parse_int(to_id).value_or(0)},
        {"labels", json::array{}},
        {"associationTypes",
         json::array{json::object{{"category", "HUBSPOT_DEFINED"}, {"typeId", association_type_id(from, to)}, {"label", nullptr}}}}};
  }

  // Associates from_id with to_id; fills `failure` with an error reply when it cannot.
  Result<std::optional<net::HttpResponse>> associate(const std::string& from, const std::string& from_id,
                                                     const std::string& to, const std::string& to_id,
                                                     json::object* error_entry) {
    auto link = link_of(from, to);
    if (!link) {
      std::string msg = "The sandbox does not model associations between " + from + " and " + to;
      if (error_entry) *error_entry = json::object{{"status", "error"}, {"category", "VALIDATION_ERROR"}, {"message", msg}};
      return std::optional<net::HttpResponse>(error(400, "VALIDATION_ERROR", msg));
    }
    CMG_ASSIGN_OR_RETURN(auto a, ctx_.crm->get(from, from_id));
    CMG_ASSIGN_OR_RETURN(auto b, ctx_.crm->get(to, to_id));
    if (!a || !b) {
      std::string missing = !a ? from_id : to_id;
      std::string msg = fmt::format("No {} with id {} exists", !a ? singular(from) : singular(to), missing);
      if (error_entry) {
        *error_entry = json::object{{"status", "error"},
                                    {"category", "OBJECT_NOT_FOUND"},
                                    {"message", msg},
                                    {"context", json::object{{"ids", json::array{json::value(missing)}}}}};
      }
      return std::optional<net::HttpResponse>(error(404, "OBJECT_NOT_FOUND", msg));
    }
    const std::string& holder_id = link->forward ? from_id : to_id;
    const std::string& other_id = link->forward ? to_id : from_id;
    CMG_ASSIGN_OR_RETURN(auto run, add_link(*link, holder_id, other_id));
    if (run.refusal) return std::optional<net::HttpResponse>(*run.refusal);
    if (run.results.empty()) return std::optional<net::HttpResponse>(unapplied_reply(run.fault, ctx_));
    const WriteResult& r = run.results.front();
    if (r.outcome == WriteResult::Outcome::kFailed) {
      std::string msg = r.message.empty() ? "association rejected" : r.message;
      if (error_entry) {
        *error_entry = json::object{{"status", "error"},
                                    {"category", "VALIDATION_ERROR"},
                                    {"message", msg},
                                    {"context", json::object{{"ids", json::array{json::value(to_id)}}}}};
      }
      return std::optional<net::HttpResponse>(error(400, "VALIDATION_ERROR", msg));
    }
    return std::optional<net::HttpResponse>();
  }

  Result<net::HttpResponse> associate_one(const std::string& from, const std::string& from_id, const std::string& to,
                                          const std::string& to_id) {
    CMG_ASSIGN_OR_RETURN(auto failure, associate(from, from_id, to, to_id, nullptr));
    if (failure) return *failure;
    json::object body{{"status", "COMPLETE"},
                      {"results", json::array{association_result(from, from_id, to, to_id)}},
                      {"startedAt", now_iso()},
                      {"completedAt", now_iso()}};
    return json_reply(200, body);
  }

  // The ids associated with `id` of `from` in `to`.
  Result<std::vector<std::string>> associated(const Link& link, const std::string& from, const std::string& id) {
    (void)from;
    if (link.forward) {
      CMG_ASSIGN_OR_RETURN(auto rec, ctx_.crm->get(link.holder->name, id));
      return rec ? ids_in(rec->fields.if_contains(link.field)) : std::vector<std::string>{};
    }
    CMG_ASSIGN_OR_RETURN(auto found, ctx_.crm->find(link.holder->name, link.field, {id}));
    std::vector<std::string> out;
    for (const auto& r : found) out.push_back(r.id);
    return out;
  }

  json::array to_list(const std::string& from, const std::string& to, const std::vector<std::string>& ids) {
    json::array out;
    for (const auto& t : ids) {
      out.push_back(json::object{
          {"toObjectId", parse_int(t).value_or(0)},
          {"associationTypes",
           json::array{json::object{{"category", "HUBSPOT_DEFINED"}, {"typeId", association_type_id(from, to)}, {"label", nullptr}}}}});
    }
    return out;
  }

  Result<net::HttpResponse> associations_of(const std::string& from, const std::string& id, const std::string& to) {
    if (auto f = read_fault(ctx_, error)) return *f;
    auto link = link_of(from, to);
    if (!link) return error(400, "VALIDATION_ERROR", "The sandbox does not model associations between " + from + " and " + to);
    CMG_ASSIGN_OR_RETURN(auto ids, associated(*link, from, id));
    return json_reply(200, json::object{{"results", to_list(from, to, ids)}});
  }

  // What one association batch write did: like any other write request, it draws ONE fault and
  // commits ONE transaction, whatever the number of inputs (a real platform's batch call succeeds
  // or fails as one request; the sandbox must not fault, or fsync, per input).
  struct BatchWrite {
    internal::WriteFault fault;
    std::optional<net::HttpResponse> refusal;  // a whole-call fault: nothing applied
    bool unapplied = false;                    // a timeout/malformed fault that chose not to apply
  };

  // Validates every input (missing records → OBJECT_NOT_FOUND errors naming the id), merges the links
  // per holder record (two inputs may touch the same record), and writes the holders' association
  // fields in one run_write. Fills `results`/`errors` for the inputs in order.
  template <typename IdOf>
  Result<BatchWrite> associate_batch(const Link& link, const std::string& from, const std::string& to,
                                     const json::array& inputs, const IdOf& id_of, json::array& results,
                                     json::array& errors) {
    struct Input {
      std::string a, b, holder;
    };
    std::vector<Input> valid;
    std::map<std::string, std::vector<std::string>> links;  // holder id → associated ids
    std::vector<std::string> holders;                       // first-seen order
    for (const auto& in : inputs) {
      std::string a = id_of(in, "from");
      std::string b = id_of(in, "to");
      CMG_ASSIGN_OR_RETURN(auto ra, ctx_.crm->get(from, a));
      CMG_ASSIGN_OR_RETURN(auto rb, ctx_.crm->get(to, b));
      if (!ra || !rb) {
        std::string missing = !ra ? a : b;
        errors.push_back(json::object{{"status", "error"},
                                      {"category", "OBJECT_NOT_FOUND"},
                                      {"message", fmt::format("No {} with id {} exists", !ra ? singular(from) : singular(to), missing)},
                                      {"context", json::object{{"ids", json::array{json::value(missing)}}}}});
        continue;
      }
      const Record& holder_rec = link.forward ? *ra : *rb;
      const std::string& other = link.forward ? b : a;
      auto it = links.find(holder_rec.id);
      if (it == links.end()) {
        it = links.emplace(holder_rec.id, ids_in(holder_rec.fields.if_contains(link.field))).first;
        holders.push_back(holder_rec.id);
      }
      if (std::find(it->second.begin(), it->second.end(), other) == it->second.end()) it->second.push_back(other);
      valid.push_back({a, b, holder_rec.id});
    }
    BatchWrite out;
    if (holders.empty()) return out;
    std::vector<WriteOp> ops;
    for (const auto& h : holders) ops.push_back(link_update(link, h, std::move(links[h])));
    CMG_ASSIGN_OR_RETURN(auto run, run_write(ctx_, link.holder->name, ops, error));
    out.fault = run.fault;
    if (run.refusal) {
      out.refusal = std::move(run.refusal);
      return out;
    }
    if (run.results.empty()) {
      out.unapplied = true;
      return out;
    }
    std::map<std::string, const WriteResult*> by_holder;
    for (std::size_t i = 0; i < holders.size() && i < run.results.size(); ++i) by_holder[holders[i]] = &run.results[i];
    for (const auto& in : valid) {
      const WriteResult* r = by_holder[in.holder];
      if (r && r->outcome == WriteResult::Outcome::kFailed) {
        errors.push_back(json::object{{"status", "error"},
                                      {"category", "VALIDATION_ERROR"},
                                      {"message", r->message.empty() ? std::string("association rejected") : r->message},
                                      {"context", json::object{{"ids", json::array{json::value(in.b)}}}}});
        continue;
      }
      results.push_back(association_result(from, in.a, to, in.b));
    }
    return out;
  }

  Result<net::HttpResponse> association_batch(const std::string& from, const std::string& to, const std::string& op) {
    const std::string started = now_iso();
    std::string perr;
    auto body = parse_body(req_, perr);
    if (!body || !body->is_object()) return error(400, "VALIDATION_ERROR", perr.empty() ? "body must be a JSON object" : perr);
    const auto* inputs_v = body->get_object().if_contains("inputs");
    if (!inputs_v || !inputs_v->is_array()) return error(400, "VALIDATION_ERROR", "inputs must be an array");
    const json::array& inputs = inputs_v->get_array();
    if (inputs.size() > 1000) return error(400, "VALIDATION_ERROR", "Batch input must contain at most 1000 inputs");
    auto id_of = [](const json::value& v, const char* key) -> std::string {
      const auto* o = v.if_object();
      const auto* inner = o ? o->if_contains(key) : nullptr;
      if (inner && inner->is_object()) return str_of(inner->get_object(), "id");
      return o && std::string_view(key) == "from" ? str_of(*o, "id") : std::string();
    };
    auto link = link_of(from, to);
    if (!link) return error(400, "VALIDATION_ERROR", "The sandbox does not model associations between " + from + " and " + to);
    json::array results;
    json::array errors;
    if (op == "read") {
      if (auto f = read_fault(ctx_, error)) return *f;
      for (const auto& in : inputs) {
        std::string id = id_of(in, "from");
        CMG_ASSIGN_OR_RETURN(auto ids, associated(*link, from, id));
        if (ids.empty()) {
          errors.push_back(json::object{{"status", "error"},
                                        {"category", "OBJECT_NOT_FOUND"},
                                        {"message", "No " + to + " is associated with " + singular(from) + " " + id},
                                        {"context", json::object{{"fromObjectId", json::array{json::value(id)}}}}});
          continue;
        }
        results.push_back(json::object{{"from", json::object{{"id", id}}}, {"to", to_list(from, to, ids)}});
      }
    } else if (op == "create" || op == "associate/default") {
      CMG_ASSIGN_OR_RETURN(auto written, associate_batch(*link, from, to, inputs, id_of, results, errors));
      if (written.refusal) return *written.refusal;
      if (written.unapplied) return unapplied_reply(written.fault, ctx_);
      json::object out{{"status", "COMPLETE"}, {"results", std::move(results)}, {"startedAt", started}, {"completedAt", now_iso()}};
      net::HttpResponse res;
      if (!errors.empty()) {
        out["numErrors"] = errors.size();
        out["errors"] = std::move(errors);
        res = json_reply(207, out);
      } else {
        res = json_reply(201, out);
      }
      decorate_write_reply(res, written.fault, ctx_);
      return res;
    } else {
      return error(404, "OBJECT_NOT_FOUND", "No association batch operation \"" + op + "\"");
    }
    json::object out{{"status", "COMPLETE"}, {"results", std::move(results)}, {"startedAt", started}, {"completedAt", now_iso()}};
    if (!errors.empty()) {
      out["numErrors"] = errors.size();
      out["errors"] = std::move(errors);
      return json_reply(207, out);
    }
    return json_reply(op == "read" ? 200 : 201, out);
  }

  Context& ctx_;
  const net::HttpRequest& req_;
  Schema schema_;
};

}  // namespace

net::HttpResponse hubspot_error(int status, std::string_view category, std::string_view message) {
  return json_reply(status, json::object{{"status", "error"},
                                         {"message", message},
                                         {"correlationId", correlation_id()},
                                         {"category", category}});
}

net::HttpResponse hubspot_handle(Context& ctx, const net::HttpRequest& req) { return HubSpot(ctx, req).run(); }

}  // namespace cmg::sandbox::serve_internal
