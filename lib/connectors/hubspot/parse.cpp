// HubSpot response parsers (see hubspot_parse.hpp). Only if_* accessors: no exceptions on any input.
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include <boost/json.hpp>

#include "connectors/hubspot/hubspot_parse.hpp"
#include "crmmigrate/core/time.hpp"

namespace cmg::hubspot {

namespace json = boost::json;

namespace {

Result<json::value> parse_json(std::string_view body, const std::string& what) {
  boost::system::error_code ec;
  json::parse_options po;
  po.max_depth = 64;
  json::value v = json::parse(body, ec, {}, po);
  if (ec) return parse_error(what + ": the reply is not JSON (" + ec.message() + ")");
  return v;
}

std::string str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return {};
  if (const auto* s = v->if_string()) return std::string(*s);
  if (v->is_int64() || v->is_uint64() || v->is_double()) return value_to_text(*v);
  return {};
}

bool boolean(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_bool() && v->get_bool();
}

const json::array* array_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? v->if_array() : nullptr;
}

const json::object* object_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? v->if_object() : nullptr;
}

std::string next_after(const json::object& root) {
  const auto* paging = object_at(root, "paging");
  const auto* next = paging ? object_at(*paging, "next") : nullptr;
  return next ? str(*next, "after") : std::string();
}

// "123" or 123 → "123"
std::string id_text(const json::value* v) {
  if (!v) return {};
  if (const auto* s = v->if_string()) return std::string(*s);
  if (v->is_int64() || v->is_uint64()) return value_to_text(*v);
  return {};
}

json::object clean_properties(const json::object* props) {
  json::object out;
  if (!props) return out;
  for (const auto& [k, v] : *props)
    if (!v.is_null()) out[k] = v;
  return out;
}

void add_ids(const json::value* v, std::vector<std::string>& out) {
  if (!v) return;
  if (const auto* a = v->if_array()) {
    for (const auto& e : *a)
      if (auto s = id_text(&e); !s.empty()) out.push_back(std::move(s));
  } else if (auto s = id_text(v); !s.empty()) {
    out.push_back(std::move(s));
  }
}

std::string existing_id_from_message(std::string_view m) {
  for (std::string_view marker : {"Existing ID: ", "existing ID: ", "Existing ID:", "existingId="}) {
    auto p = m.find(marker);
    if (p == std::string_view::npos) continue;
    p += marker.size();
    while (p < m.size() && m[p] == ' ') ++p;
    std::size_t e = p;
    while (e < m.size() && m[e] >= '0' && m[e] <= '9') ++e;
    if (e > p) return std::string(m.substr(p, e - p));
  }
  return {};
}

// The `[{"isValid":false,"message":..,"error":"INVALID_OPTION","name":"lifecyclestage"}]` list that
// HubSpot embeds in the message of a VALIDATION_ERROR.
void embedded_field_errors(std::string_view message, std::vector<FieldError>& out) {
  auto open = message.find("[{");
  auto close = message.rfind("}]");
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) return;
  boost::system::error_code ec;
  json::value v = json::parse(message.substr(open, close + 2 - open), ec);
  if (ec || !v.is_array()) return;
  for (const auto& e : v.get_array()) {
    const auto* o = e.if_object();
    if (!o) continue;
    FieldError f;
    f.field = str(*o, "name");
    f.code = str(*o, "error");
    f.message = str(*o, "message");
    if (!f.field.empty() || !f.code.empty()) out.push_back(std::move(f));
  }
}

BatchError error_from_object(const json::object& o) {
  BatchError e;
  e.category = str(o, "category");
  e.message = str(o, "message");
  std::string status = str(o, "status");
  if (!status.empty() && status.find_first_not_of("0123456789") == std::string::npos && status.size() <= 3)
    e.status = std::atoi(status.c_str());
  if (const auto* ctx = object_at(o, "context")) {
    add_ids(ctx->if_contains("ids"), e.ids);
    add_ids(ctx->if_contains("id"), e.ids);
    std::vector<std::string> existing;
    add_ids(ctx->if_contains("existingId"), existing);
    if (!existing.empty()) e.existing_id = existing.front();
  }
  if (const auto* errs = array_at(o, "errors")) {
    for (const auto& ev : *errs) {
      const auto* eo = ev.if_object();
      if (!eo) continue;
      FieldError f;
      f.code = str(*eo, "code");
      f.message = str(*eo, "message");
      f.field = str(*eo, "in");
      if (const auto* ctx = object_at(*eo, "context")) {
        std::vector<std::string> names;
        add_ids(ctx->if_contains("propertyName"), names);
        if (f.field.empty() && !names.empty()) f.field = names.front();
      }
      if (!f.code.empty() || !f.field.empty() || !f.message.empty()) e.fields.push_back(std::move(f));
    }
  }
  if (e.fields.empty()) embedded_field_errors(e.message, e.fields);
  if (e.existing_id.empty()) e.existing_id = existing_id_from_message(e.message);
  if (e.status == 0 && (e.category == "CONFLICT" || e.category == "OBJECT_ALREADY_EXISTS")) e.status = 409;
  for (auto& f : e.fields)
    if (f.code.empty()) f.code = e.category.empty() ? "INVALID_VALUE" : e.category;
  return e;
}

FieldType type_of(const std::string& type, const std::string& field_type, const std::string& name) {
  if (type == "number") return FieldType::kNumber;
  if (type == "bool" || field_type == "booleancheckbox") return FieldType::kBool;
  if (type == "date") return FieldType::kDate;
  if (type == "datetime") return FieldType::kDateTime;
  if (type == "enumeration") return FieldType::kEnum;
  if (type == "phone_number" || field_type == "phonenumber") return FieldType::kPhone;
  if (name == "email") return FieldType::kEmail;
  if (field_type == "textarea" || field_type == "html") return FieldType::kText;
  if (type == "json" || type == "object_coordinates") return FieldType::kJson;
  return FieldType::kString;
}

}  // namespace

std::int64_t parse_hubspot_time(std::string_view text) {
  auto t = parse_timestamp_ms(text);
  return t ? *t : 0;
}

Result<ObjectPage> parse_object_page(std::string_view body, const std::string& object, const std::string& what) {
  CMG_ASSIGN_OR_RETURN(json::value v, parse_json(body, what));
  const auto* root = v.if_object();
  if (!root) return parse_error(what + ": expected a JSON object");
  const auto* results = array_at(*root, "results");
  if (!results) return parse_error(what + ": $.results: expected an array");
  ObjectPage page;
  page.records.reserve(results->size());
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto* ro = (*results)[i].if_object();
    if (!ro) return parse_error(what + ": $.results[" + std::to_string(i) + "]: expected an object");
    Record r;
    r.object = object;
    r.id = id_text(ro->if_contains("id"));
    if (r.id.empty()) return parse_error(what + ": $.results[" + std::to_string(i) + "].id: missing");
    r.fields = clean_properties(object_at(*ro, "properties"));
    r.updated_at = parse_hubspot_time(str(*ro, "updatedAt"));
    page.records.push_back(std::move(r));
  }
  page.after = next_after(*root);
  if (const auto* t = root->if_contains("total"); t && (t->is_int64() || t->is_uint64()))
    page.total = t->to_number<std::int64_t>();
  return page;
}

Result<BatchResponse> parse_batch_response(std::string_view body, const std::string& what) {
  CMG_ASSIGN_OR_RETURN(json::value v, parse_json(body, what));
  const auto* root = v.if_object();
  if (!root) return parse_error(what + ": expected a JSON object");
  BatchResponse out;
  const auto* results = array_at(*root, "results");
  if (!results && !array_at(*root, "errors")) return parse_error(what + ": $.results: expected an array");
  if (results) {
    for (std::size_t i = 0; i < results->size(); ++i) {
      const auto* ro = (*results)[i].if_object();
      if (!ro) return parse_error(what + ": $.results[" + std::to_string(i) + "]: expected an object");
      BatchResult r;
      r.id = id_text(ro->if_contains("id"));
      if (r.id.empty()) return parse_error(what + ": $.results[" + std::to_string(i) + "].id: missing");
      r.created = boolean(*ro, "new");
      r.properties = clean_properties(object_at(*ro, "properties"));
      r.updated_at = parse_hubspot_time(str(*ro, "updatedAt"));
      out.results.push_back(std::move(r));
    }
  }
  if (const auto* errors = array_at(*root, "errors")) {
    for (const auto& ev : *errors)
      if (const auto* eo = ev.if_object()) out.errors.push_back(error_from_object(*eo));
  }
  return out;
}

BatchError parse_error_body(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    BatchError e;
    e.message = body.empty() ? "empty reply" : "reply is not a JSON object";
    return e;
  }
  return error_from_object(v.get_object());
}

Result<std::vector<FieldSchema>> parse_properties(std::string_view body, const std::string& what) {
  CMG_ASSIGN_OR_RETURN(json::value v, parse_json(body, what));
  const auto* root = v.if_object();
  const auto* results = root ? array_at(*root, "results") : nullptr;
  if (!results) return parse_error(what + ": $.results: expected an array");
  std::vector<FieldSchema> out;
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto* p = (*results)[i].if_object();
    if (!p) return parse_error(what + ": $.results[" + std::to_string(i) + "]: expected an object");
    FieldSchema f;
    f.name = str(*p, "name");
    if (f.name.empty()) return parse_error(what + ": $.results[" + std::to_string(i) + "].name: missing");
    f.label = str(*p, "label");
    if (f.label.empty()) f.label = f.name;
    f.type = type_of(str(*p, "type"), str(*p, "fieldType"), f.name);
    f.unique = boolean(*p, "hasUniqueValue");
    const auto* mm = object_at(*p, "modificationMetadata");
    f.read_only = boolean(*p, "calculated") || (mm && boolean(*mm, "readOnlyValue"));
    if (str(*p, "referencedObjectType") == "OWNER" || f.name == "hubspot_owner_id") {
      f.type = FieldType::kReference;
      f.references = "owners";
    } else if (f.type == FieldType::kEnum) {
      if (const auto* opts = array_at(*p, "options")) {
        for (const auto& ov : *opts) {
          const auto* oo = ov.if_object();
          if (!oo || boolean(*oo, "hidden")) continue;
          Option o{str(*oo, "value"), str(*oo, "label")};
          if (o.label.empty()) o.label = o.value;
          f.options.push_back(std::move(o));
        }
      }
    }
    if (f.type == FieldType::kString || f.type == FieldType::kText) f.max_length = 65536;
    out.push_back(std::move(f));
  }
  return out;
}

Result<std::vector<User>> parse_owners(std::string_view body, std::string& after, const std::string& what) {
  CMG_ASSIGN_OR_RETURN(json::value v, parse_json(body, what));
  const auto* root = v.if_object();
  const auto* results = root ? array_at(*root, "results") : nullptr;
  if (!results) return parse_error(what + ": $.results: expected an array");
  std::vector<User> out;
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto* o = (*results)[i].if_object();
    if (!o) return parse_error(what + ": $.results[" + std::to_string(i) + "]: expected an object");
    User u;
    u.id = id_text(o->if_contains("id"));
    if (u.id.empty()) return parse_error(what + ": $.results[" + std::to_string(i) + "].id: missing");
    u.email = str(*o, "email");
    std::string first = str(*o, "firstName"), last = str(*o, "lastName");
    u.name = first.empty() ? last : last.empty() ? first : first + " " + last;
    u.active = !boolean(*o, "archived");
    out.push_back(std::move(u));
  }
  after = next_after(*root);
  return out;
}

// displayOrder as a sort key. Any JSON number is accepted; one beyond the int64 range (1e999 reads as
// infinity) is clamped, because converting it would be undefined behaviour (found by the fuzzer).
static std::int64_t display_order(const boost::json::value* d) {
  if (!d || !d->is_number()) return 0;
  if (const auto* i = d->if_int64()) return *i;
  const double v = d->to_number<double>();
  if (!(v == v)) return 0;  // NaN
  if (v >= 9.2e18) return INT64_MAX;
  if (v <= -9.2e18) return INT64_MIN;
  return static_cast<std::int64_t>(v);
}

Result<std::vector<PipelineInfo>> parse_pipelines(std::string_view body, const std::string& what) {
  CMG_ASSIGN_OR_RETURN(json::value v, parse_json(body, what));
  const auto* root = v.if_object();
  const auto* results = root ? array_at(*root, "results") : nullptr;
  if (!results) return parse_error(what + ": $.results: expected an array");
  std::vector<std::pair<std::int64_t, PipelineInfo>> pipes;
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto* o = (*results)[i].if_object();
    if (!o) return parse_error(what + ": $.results[" + std::to_string(i) + "]: expected an object");
    PipelineInfo p;
    p.id = str(*o, "id");
    if (p.id.empty()) return parse_error(what + ": $.results[" + std::to_string(i) + "].id: missing");
    p.label = str(*o, "label");
    std::vector<std::pair<std::int64_t, Option>> stages;
    if (const auto* st = array_at(*o, "stages")) {
      for (const auto& sv : *st) {
        const auto* so = sv.if_object();
        if (!so) continue;
        Option opt{str(*so, "id"), str(*so, "label")};
        if (opt.value.empty()) continue;
        const auto* d = so->if_contains("displayOrder");
        std::int64_t order = display_order(d);
        stages.emplace_back(order, std::move(opt));
      }
    }
    std::stable_sort(stages.begin(), stages.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& s : stages) p.stages.push_back(std::move(s.second));
    const auto* d = o->if_contains("displayOrder");
    std::int64_t order = display_order(d);
    pipes.emplace_back(order, std::move(p));
  }
  std::stable_sort(pipes.begin(), pipes.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<PipelineInfo> out;
  for (auto& p : pipes) out.push_back(std::move(p.second));
  return out;
}

Result<std::map<std::string, std::vector<std::string>>> parse_association_batch(std::string_view body,
                                                                                const std::string& what) {
  CMG_ASSIGN_OR_RETURN(json::value v, parse_json(body, what));
  const auto* root = v.if_object();
  if (!root) return parse_error(what + ": expected a JSON object");
  std::map<std::string, std::vector<std::string>> out;
  const auto* results = array_at(*root, "results");
  if (!results) {
    if (array_at(*root, "errors")) return out;  // none of the inputs has an association
    return parse_error(what + ": $.results: expected an array");
  }
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto* o = (*results)[i].if_object();
    if (!o) return parse_error(what + ": $.results[" + std::to_string(i) + "]: expected an object");
    const auto* from = object_at(*o, "from");
    std::string from_id = from ? id_text(from->if_contains("id")) : std::string();
    if (from_id.empty()) return parse_error(what + ": $.results[" + std::to_string(i) + "].from.id: missing");
    auto& ids = out[from_id];
    if (const auto* to = array_at(*o, "to")) {
      for (const auto& tv : *to) {
        const auto* to_o = tv.if_object();
        if (!to_o) continue;
        std::string id = id_text(to_o->if_contains("toObjectId"));
        if (id.empty()) id = id_text(to_o->if_contains("id"));
        if (!id.empty()) ids.push_back(std::move(id));
      }
    }
    std::sort(ids.begin(), ids.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  }
  return out;
}

}  // namespace cmg::hubspot
