#include "crmmigrate/core/record.hpp"

#include <cmath>
#include <cstdio>

namespace cmg {

namespace json = boost::json;

std::string value_to_text(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return {};
    case json::kind::string: return std::string(v.get_string());
    case json::kind::bool_: return v.get_bool() ? "true" : "false";
    case json::kind::int64: return std::to_string(v.get_int64());
    case json::kind::uint64: return std::to_string(v.get_uint64());
    case json::kind::double_: {
      double d = v.get_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
        return std::to_string(static_cast<long long>(d));
      }
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.15g", d);
      return buf;
    }
    default: return json::serialize(v);
  }
}

bool value_is_blank(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return true;
    case json::kind::string: {
      for (char c : v.get_string())
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
      return true;
    }
    case json::kind::array: return v.get_array().empty();
    case json::kind::object: return v.get_object().empty();
    default: return false;
  }
}

json::object record_to_json(const Record& r) {
  json::object o;
  o["object"] = r.object;
  o["id"] = r.id;
  o["updated_at"] = r.updated_at;
  o["fields"] = r.fields;
  return o;
}

bool record_from_json(const json::value& v, Record& out) {
  const auto* o = v.if_object();
  if (!o) return false;
  const auto* obj = o->if_contains("object");
  const auto* id = o->if_contains("id");
  const auto* fields = o->if_contains("fields");
  if (!obj || !obj->is_string() || !id || !id->is_string() || !fields || !fields->is_object()) return false;
  out.object = std::string(obj->get_string());
  out.id = std::string(id->get_string());
  out.fields = fields->get_object();
  out.updated_at = 0;
  if (const auto* u = o->if_contains("updated_at")) {
    if (u->is_int64()) out.updated_at = u->get_int64();
    else if (u->is_uint64()) out.updated_at = static_cast<std::int64_t>(u->get_uint64());
  }
  return true;
}

}  // namespace cmg
