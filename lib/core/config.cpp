#include "crmmigrate/core/config.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/json.hpp>

namespace cmg {

namespace json = boost::json;

namespace {

// Walks a JSON object, checking types and rejecting keys nobody asked for. Errors carry the path.
class ObjectReader {
 public:
  ObjectReader(const json::object& o, std::string path) : o_(o), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  std::string at(std::string_view key) const { return path_ + "." + std::string(key); }

  const json::value* get(std::string_view key) {
    seen_.insert(std::string(key));
    return o_.if_contains(key);
  }

  Status string(std::string_view key, std::string& out, bool required) {
    const auto* v = get(key);
    if (!v) return required ? config_error(at(key) + ": required string is missing") : Status::ok();
    if (!v->is_string()) return config_error(at(key) + ": expected a string");
    out = std::string(v->get_string());
    if (required && out.empty()) return config_error(at(key) + ": must not be empty");
    return Status::ok();
  }

  Status boolean(std::string_view key, bool& out) {
    const auto* v = get(key);
    if (!v) return Status::ok();
    if (!v->is_bool()) return config_error(at(key) + ": expected true or false");
    out = v->get_bool();
    return Status::ok();
  }

  Status size(std::string_view key, std::size_t& out, std::size_t min, std::size_t max) {
    const auto* v = get(key);
    if (!v) return Status::ok();
    std::int64_t n = 0;
    if (v->is_int64()) n = v->get_int64();
    else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) n = static_cast<std::int64_t>(v->get_uint64());
    else return config_error(at(key) + ": expected an integer between " + std::to_string(min) + " and " + std::to_string(max));
    if (n < static_cast<std::int64_t>(min) || n > static_cast<std::int64_t>(max))
      return config_error(at(key) + ": " + std::to_string(n) + " is out of range [" + std::to_string(min) + ", " +
                          std::to_string(max) + "]");
    out = static_cast<std::size_t>(n);
    return Status::ok();
  }

  Status string_list(std::string_view key, std::vector<std::string>& out) {
    const auto* v = get(key);
    if (!v) return Status::ok();
    return string_list_value(*v, at(key), out);
  }

  static Status string_list_value(const json::value& v, const std::string& path, std::vector<std::string>& out) {
    out.clear();
    if (v.is_string()) {
      out.emplace_back(v.get_string());
      return Status::ok();
    }
    const auto* a = v.if_array();
    if (!a) return config_error(path + ": expected a string or an array of strings");
    for (std::size_t i = 0; i < a->size(); ++i) {
      if (!(*a)[i].is_string()) return config_error(path + "[" + std::to_string(i) + "]: expected a string");
      out.emplace_back((*a)[i].get_string());
    }
    return Status::ok();
  }

  /// Fails on the first key that was never asked for, with the list of keys allowed.
  Status finish(std::initializer_list<const char*> allowed) const {
    for (const auto& [k, v] : o_) {
      if (seen_.count(std::string(k))) continue;
      std::string hint;
      for (const char* a : allowed) hint += std::string(hint.empty() ? "" : ", ") + a;
      return config_error(at(k) + ": unknown key (allowed: " + hint + ")");
    }
    return Status::ok();
  }

 private:
  const json::object& o_;
  std::string path_;
  std::set<std::string> seen_;
};

Status as_object(const json::value& v, const std::string& path, const json::object*& out) {
  out = v.if_object();
  if (!out) return config_error(path + ": expected an object");
  return Status::ok();
}

// Boost.JSON reads a number beyond the range of a double as an infinity (1e999) or a NaN (0e999),
// which it then writes as `Infinity` or `NaN`, which no JSON reader takes back (a default value
// would reach the destination and the store that way).
Status refuse_non_finite_numbers(const json::value& v, const std::string& path) {
  if (const auto* d = v.if_double()) {
    if (!std::isfinite(*d)) return config_error(path + ": number out of range for a double");
  } else if (const auto* o = v.if_object()) {
    for (const auto& [k, val] : *o) CMG_RETURN_IF_ERROR(refuse_non_finite_numbers(val, path + "." + std::string(k)));
  } else if (const auto* a = v.if_array()) {
    for (std::size_t i = 0; i < a->size(); ++i)
      CMG_RETURN_IF_ERROR(refuse_non_finite_numbers((*a)[i], path + "[" + std::to_string(i) + "]"));
  }
  return Status::ok();
}

Status refuse_inline_secrets_in(const json::value& v, const std::string& path);

// Secrets belong in the environment: refuse anything, at any depth, that looks like an inline
// credential. The message names the key, never the value.
Status refuse_inline_secrets(const json::object& o, const std::string& path) {
  for (const auto& [k, val] : o) {
    std::string key(k);
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string compact;  // "apiKey", "API-Key", "api_key" → "apikey"
    for (char c : key)
      if (c != '_' && c != '-') compact.push_back(c);
    bool secretish = key.find("token") != std::string::npos || key.find("secret") != std::string::npos ||
                     key.find("password") != std::string::npos || compact.find("apikey") != std::string::npos;
    bool names_env = key.size() > 4 && key.compare(key.size() - 4, 4, "_env") == 0;
    std::string at = path + "." + std::string(k);
    if (secretish && !names_env)
      return config_error(at + ": secrets must not be inline; name an environment variable with \"" + std::string(k) +
                          "_env\"");
    CMG_RETURN_IF_ERROR(refuse_inline_secrets_in(val, at));
  }
  return Status::ok();
}

// Objects nested in arrays too ("headers": [{"api_key": ...}]).
Status refuse_inline_secrets_in(const json::value& v, const std::string& path) {
  if (const auto* o = v.if_object()) return refuse_inline_secrets(*o, path);
  if (const auto* a = v.if_array()) {
    for (std::size_t i = 0; i < a->size(); ++i)
      CMG_RETURN_IF_ERROR(refuse_inline_secrets_in((*a)[i], path + "[" + std::to_string(i) + "]"));
  }
  return Status::ok();
}

Status parse_connector(const json::value* v, const std::string& path, ConnectorConfig& out) {
  if (!v) return config_error(path + ": required object is missing");
  const json::object* o;
  CMG_RETURN_IF_ERROR(as_object(*v, path, o));
  ObjectReader r(*o, path);
  CMG_RETURN_IF_ERROR(r.string("connector", out.connector, true));
  if (const auto* opts = r.get("options")) {
    const json::object* oo;
    CMG_RETURN_IF_ERROR(as_object(*opts, r.at("options"), oo));
    out.options = *oo;
    CMG_RETURN_IF_ERROR(refuse_inline_secrets(*oo, r.at("options")));
  }
  out.json_path = path;
  return r.finish({"connector", "options"});
}

Status parse_field(const std::string& source, const json::value& v, const std::string& path,
                   const ObjectConfig& obj, FieldMapping& m) {
  m.source = source;
  if (v.is_string()) {
    m.to = std::string(v.get_string());
    if (m.to.empty()) return config_error(path + ": destination field name must not be empty");
    return Status::ok();
  }
  const json::object* o = v.if_object();
  if (!o) return config_error(path + ": expected a destination field name or an object such as {\"to\": ...}");
  ObjectReader r(*o, path);
  if (const auto* to = r.get("to")) {
    if (to->is_string()) {
      m.to = std::string(to->get_string());
    } else if (const auto* by = to->if_object()) {
      if (obj.route_by.empty())
        return config_error(r.at("to") + ": a per-object target needs \"destination\": {\"by\": ..., \"map\": ...}");
      for (const auto& [dest, f] : *by) {
        if (!f.is_string()) return config_error(r.at("to") + "." + std::string(dest) + ": expected a string");
        bool known = false;
        for (const auto& [sv, d] : obj.route) known = known || d == std::string(dest);
        if (!known) return config_error(r.at("to") + "." + std::string(dest) + ": not one of this object's destinations");
        m.to_by_object[std::string(dest)] = std::string(f.get_string());
      }
    } else {
      return config_error(r.at("to") + ": expected a field name or an object of destination → field");
    }
  }
  CMG_RETURN_IF_ERROR(r.string("pick", m.pick, false));
  if (!m.pick.empty() && m.pick != "primary")
    return config_error(r.at("pick") + ": unknown value '" + m.pick + "' (allowed: primary)");
  CMG_RETURN_IF_ERROR(r.string("translate", m.translate, false));
  CMG_RETURN_IF_ERROR(r.boolean("owner", m.owner));
  CMG_RETURN_IF_ERROR(r.string("parent", m.parent, false));
  CMG_RETURN_IF_ERROR(r.boolean("parent_required", m.parent_required));
  if (const auto* d = r.get("default")) m.default_value = *d;
  // Unknown keys first: a misspelt "to" is better reported as such than as a missing one.
  CMG_RETURN_IF_ERROR(r.finish({"to", "pick", "translate", "owner", "parent", "parent_required", "default"}));
  if (m.to.empty() && m.to_by_object.empty() && m.translate.empty())
    return config_error(path + ": needs \"to\" (a destination field) or \"translate\" (a table)");
  return Status::ok();
}

Status parse_translation(const std::string& name, const json::value& v, const std::string& path, Translation& t) {
  t.name = name;
  const json::object* o;
  CMG_RETURN_IF_ERROR(as_object(v, path, o));
  ObjectReader r(*o, path);
  CMG_RETURN_IF_ERROR(r.string_list("from", t.from));
  CMG_RETURN_IF_ERROR(r.string_list("to", t.to));
  if (t.from.empty()) return config_error(r.at("from") + ": required (the source field or fields keyed on)");
  if (t.to.empty()) return config_error(r.at("to") + ": required (the destination field or fields)");
  const auto* table = r.get("table");
  if (!table) return config_error(r.at("table") + ": required object of source value → destination value");
  const json::object* to;
  CMG_RETURN_IF_ERROR(as_object(*table, r.at("table"), to));
  for (const auto& [k, val] : *to) {
    std::string kp = r.at("table") + "." + std::string(k);
    std::size_t parts = static_cast<std::size_t>(std::count(k.begin(), k.end(), '/')) + 1;
    if (parts != t.from.size())
      return config_error(kp + ": key must have " + std::to_string(t.from.size()) + " part(s) joined by '/' (" +
                          std::to_string(t.from.size()) + " source field(s))");
    std::vector<std::string> out;
    CMG_RETURN_IF_ERROR(ObjectReader::string_list_value(val, kp, out));
    if (out.size() != t.to.size())
      return config_error(kp + ": expected " + std::to_string(t.to.size()) + " value(s), one per destination field");
    t.table[std::string(k)] = std::move(out);
  }
  CMG_RETURN_IF_ERROR(r.string("otherwise", t.otherwise, false));
  if (t.otherwise.empty()) t.otherwise = "queue";
  if (t.otherwise != "queue" && t.otherwise != "default")
    return config_error(r.at("otherwise") + ": unknown value '" + t.otherwise + "' (allowed: queue, default)");
  CMG_RETURN_IF_ERROR(r.string_list("fallback", t.fallback));
  if (t.otherwise == "default" && t.fallback.size() != t.to.size())
    return config_error(r.at("fallback") + ": \"otherwise\": \"default\" needs one fallback value per destination field");
  return r.finish({"from", "to", "table", "otherwise", "fallback"});
}

Status parse_dedup(const json::value* v, const std::string& path, ObjectConfig& obj) {
  if (!v) return config_error(path + ": required — give dedup keys (e.g. {\"keys\": [\"external_id\", \"email\"]}) or \"none\"");
  if (v->is_string()) {
    if (v->get_string() == "none") {
      obj.dedup_none = true;
      return Status::ok();
    }
    return config_error(path + ": expected \"none\" or {\"keys\": [...]}");
  }
  const json::object* o;
  CMG_RETURN_IF_ERROR(as_object(*v, path, o));
  ObjectReader r(*o, path);
  const auto* keys = r.get("keys");
  if (!keys || !keys->is_array() || keys->get_array().empty())
    return config_error(r.at("keys") + ": required non-empty array (or say \"dedup\": \"none\")");
  const auto& a = keys->get_array();
  for (std::size_t i = 0; i < a.size(); ++i) {
    std::string kp = r.at("keys") + "[" + std::to_string(i) + "]";
    DedupKeyConfig k;
    std::string kind;
    if (a[i].is_string()) {
      kind = std::string(a[i].get_string());
      k.field = kind;
    } else if (const auto* ko = a[i].if_object()) {
      ObjectReader kr(*ko, kp);
      CMG_RETURN_IF_ERROR(kr.string("kind", kind, true));
      CMG_RETURN_IF_ERROR(kr.string("field", k.field, false));
      CMG_RETURN_IF_ERROR(kr.string("name", k.name, false));
      CMG_RETURN_IF_ERROR(kr.finish({"kind", "field", "name"}));
    } else {
      return config_error(kp + ": expected a key kind or {\"kind\", \"field\"}");
    }
    if (kind == "external_id") k.kind = DedupKeyKind::kExternalId;
    else if (kind == "email") k.kind = DedupKeyKind::kEmail;
    else if (kind == "phone") k.kind = DedupKeyKind::kPhone;
    else if (kind == "text") k.kind = DedupKeyKind::kText;
    else if (kind == "exact") k.kind = DedupKeyKind::kExact;
    else return config_error(kp + ": unknown key kind '" + kind + "' (allowed: external_id, email, phone, text, exact)");
    if (k.kind != DedupKeyKind::kExternalId && (k.field.empty() || k.field == kind) && a[i].is_object() && k.field.empty())
      return config_error(kp + ".field: required for kind '" + kind + "'");
    if (k.name.empty()) k.name = k.kind == DedupKeyKind::kExternalId ? "external_id" : kind == k.field ? kind : kind + ":" + k.field;
    if (i > 0 && k.kind == DedupKeyKind::kExternalId)
      return config_error(kp + ": external_id must come first (it is the strongest key)");
    obj.dedup.push_back(std::move(k));
  }
  return r.finish({"keys"});
}

Status parse_merge(const json::value* v, const std::string& path, ObjectConfig& obj) {
  if (!v) return Status::ok();
  if (v->is_string()) {
    auto s = merge_strategy_from_name(v->get_string());
    if (!s) return config_error(path + ": unknown merge rule (allowed: keep_destination, prefer_source, fill_blanks, newest_wins, manual)");
    obj.merge_default = *s;
    return Status::ok();
  }
  const json::object* o;
  CMG_RETURN_IF_ERROR(as_object(*v, path, o));
  ObjectReader r(*o, path);
  std::string def;
  CMG_RETURN_IF_ERROR(r.string("default", def, false));
  if (!def.empty()) {
    auto s = merge_strategy_from_name(def);
    if (!s) return config_error(r.at("default") + ": unknown merge rule '" + def + "'");
    obj.merge_default = *s;
  }
  if (const auto* f = r.get("fields")) {
    const json::object* fo;
    CMG_RETURN_IF_ERROR(as_object(*f, r.at("fields"), fo));
    for (const auto& [k, val] : *fo) {
      auto s = val.is_string() ? merge_strategy_from_name(val.get_string()) : std::nullopt;
      if (!s) return config_error(r.at("fields") + "." + std::string(k) + ": unknown merge rule");
      obj.merge_fields[std::string(k)] = *s;
    }
  }
  CMG_RETURN_IF_ERROR(r.boolean("skip_unchanged", obj.skip_unchanged));
  return r.finish({"default", "fields", "skip_unchanged"});
}

Status parse_object(const json::value& v, const std::string& path, ObjectConfig& obj) {
  const json::object* o;
  CMG_RETURN_IF_ERROR(as_object(v, path, o));
  ObjectReader r(*o, path);
  CMG_RETURN_IF_ERROR(r.string("name", obj.name, true));
  CMG_RETURN_IF_ERROR(r.string("source", obj.source, true));
  const auto* dest = r.get("destination");
  if (!dest) return config_error(r.at("destination") + ": required (a destination object, or {\"by\": field, \"map\": {...}})");
  if (dest->is_string()) {
    obj.destination = std::string(dest->get_string());
  } else if (const auto* d = dest->if_object()) {
    ObjectReader dr(*d, r.at("destination"));
    CMG_RETURN_IF_ERROR(dr.string("by", obj.route_by, true));
    const auto* m = dr.get("map");
    const json::object* mo = nullptr;
    if (!m) return config_error(dr.at("map") + ": required object of source value → destination object");
    CMG_RETURN_IF_ERROR(as_object(*m, dr.at("map"), mo));
    for (const auto& [k, val] : *mo) {
      if (!val.is_string()) return config_error(dr.at("map") + "." + std::string(k) + ": expected a destination object name");
      obj.route[std::string(k)] = std::string(val.get_string());
    }
    if (obj.route.empty()) return config_error(dr.at("map") + ": must not be empty");
    CMG_RETURN_IF_ERROR(dr.finish({"by", "map"}));
  } else {
    return config_error(r.at("destination") + ": expected a string or an object");
  }
  // Translations first: field mappings may name them.
  if (const auto* t = r.get("translations")) {
    const json::object* to;
    CMG_RETURN_IF_ERROR(as_object(*t, r.at("translations"), to));
    for (const auto& [k, val] : *to) {
      Translation tr;
      CMG_RETURN_IF_ERROR(parse_translation(std::string(k), val, r.at("translations") + "." + std::string(k), tr));
      obj.translations.push_back(std::move(tr));
    }
  }
  const auto* fields = r.get("fields");
  if (!fields) return config_error(r.at("fields") + ": required object of source field → destination field");
  const json::object* fo;
  CMG_RETURN_IF_ERROR(as_object(*fields, r.at("fields"), fo));
  for (const auto& [k, val] : *fo) {
    FieldMapping m;
    std::string fp = r.at("fields") + "." + std::string(k);
    CMG_RETURN_IF_ERROR(parse_field(std::string(k), val, fp, obj, m));
    if (!m.translate.empty()) {
      bool found = false;
      for (const auto& tr : obj.translations) found = found || tr.name == m.translate;
      if (!found) return config_error(fp + ".translate: no translation table named '" + m.translate + "' in " + r.at("translations"));
    }
    obj.fields.push_back(std::move(m));
  }
  CMG_RETURN_IF_ERROR(r.string_list("drop", obj.drop));
  if (const auto* d = r.get("defaults")) {
    const json::object* dob;
    CMG_RETURN_IF_ERROR(as_object(*d, r.at("defaults"), dob));
    for (const auto& [k, val] : *dob) obj.defaults[std::string(k)] = val;
  }
  CMG_RETURN_IF_ERROR(parse_dedup(r.get("dedup"), r.at("dedup"), obj));
  CMG_RETURN_IF_ERROR(parse_merge(r.get("merge"), r.at("merge"), obj));
  if (const auto* e = r.get("expected_count")) {
    if (!e->is_int64() || e->get_int64() < 0) return config_error(r.at("expected_count") + ": expected a non-negative integer");
    obj.expected_count = e->get_int64();
  }
  // A field both mapped and dropped is a contradiction worth catching early.
  for (const auto& dname : obj.drop)
    for (const auto& m : obj.fields)
      if (m.source == dname) return config_error(r.at("drop") + ": '" + dname + "' is both mapped and dropped");
  return r.finish({"name", "source", "destination", "fields", "drop", "translations", "defaults", "dedup", "merge",
                   "expected_count"});
}

std::string line_col(std::string_view text, std::size_t offset) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

}  // namespace

std::vector<std::string> ObjectConfig::destination_objects() const {
  if (route_by.empty()) return {destination};
  std::set<std::string> s;
  for (const auto& [k, v] : route) s.insert(v);
  return {s.begin(), s.end()};
}

std::string ObjectConfig::target_field(const FieldMapping& m, const std::string& dest_object) const {
  if (!m.to_by_object.empty()) {
    auto it = m.to_by_object.find(dest_object);
    return it == m.to_by_object.end() ? std::string() : it->second;
  }
  return m.to;
}

std::vector<std::string> ObjectConfig::parents() const {
  std::vector<std::string> out;
  for (const auto& m : fields)
    if (!m.parent.empty() && std::find(out.begin(), out.end(), m.parent) == out.end()) out.push_back(m.parent);
  return out;
}

const ObjectConfig* MigrationConfig::object(const std::string& n) const {
  for (const auto& o : objects)
    if (o.name == n) return &o;
  return nullptr;
}

std::string json_hash(const json::value& v) {
  // FNV-1a 64 over the canonical serialisation (object keys sorted).
  std::function<void(const json::value&, std::string&)> canon = [&](const json::value& x, std::string& out) {
    if (const auto* o = x.if_object()) {
      std::vector<std::string_view> keys;
      for (const auto& kv : *o) keys.push_back(kv.key());
      std::sort(keys.begin(), keys.end());
      out += '{';
      for (auto k : keys) {
        out += json::serialize(json::value(json::string(k)));
        out += ':';
        canon(o->at(k), out);
        out += ',';
      }
      out += '}';
    } else if (const auto* a = x.if_array()) {
      out += '[';
      for (const auto& e : *a) {
        canon(e, out);
        out += ',';
      }
      out += ']';
    } else {
      out += json::serialize(x);
    }
  };
  std::string s;
  canon(v, s);
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Result<MigrationConfig> parse_config(std::string_view text, const std::string& origin, const std::string& base_dir) {
  json::parse_options popts;
  popts.max_depth = 64;
  popts.allow_comments = false;
  json::error_code ec;
  json::stream_parser p({}, popts);
  std::size_t consumed = p.write(text.data(), text.size(), ec);
  if (!ec) p.finish(ec);
  if (ec) return config_error(origin + ":" + line_col(text, consumed) + ": invalid JSON: " + ec.message());
  json::value root = p.release();
  auto prefix = [&](Status st) { return Status(st.code(), origin + ": " + st.message()); };

  const auto* ro = root.if_object();
  if (!ro) return config_error(origin + ": $: expected a JSON object");
  if (Status st = refuse_non_finite_numbers(root, "$"); !st.is_ok()) return prefix(st);
  MigrationConfig cfg;
  cfg.base_dir = base_dir;
  cfg.raw_json = std::string(text);
  cfg.hash = json_hash(root);
  ObjectReader r(*ro, "$");
  Status st = [&]() -> Status {
    CMG_RETURN_IF_ERROR(r.string("name", cfg.name, true));
    for (char c : cfg.name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
        return config_error("$.name: use letters, digits, '-', '_' or '.' (it names the state directory)");
    std::string state;
    if (const auto* sv = r.get("state")) {
      if (sv->is_string()) {
        state = std::string(sv->get_string());
      } else if (const auto* so = sv->if_object()) {
        ObjectReader sr(*so, "$.state");
        CMG_RETURN_IF_ERROR(sr.string("directory", state, true));
        CMG_RETURN_IF_ERROR(sr.finish({"directory"}));
      } else {
        return config_error("$.state: expected a directory path or {\"directory\": path}");
      }
    }
    if (state.empty()) state = ".crmmigrate/" + cfg.name;
    std::filesystem::path sp(state);
    cfg.state_dir = sp.is_absolute() ? sp.string() : (std::filesystem::path(base_dir) / sp).lexically_normal().string();
    CMG_RETURN_IF_ERROR(parse_connector(r.get("source"), "$.source", cfg.source));
    CMG_RETURN_IF_ERROR(parse_connector(r.get("destination"), "$.destination", cfg.destination));
    if (const auto* ov = r.get("owners")) {
      const json::object* oo;
      CMG_RETURN_IF_ERROR(as_object(*ov, "$.owners", oo));
      ObjectReader orr(*oo, "$.owners");
      if (orr.get("match")) {
        CMG_RETURN_IF_ERROR(orr.string_list("match", cfg.owners.match));
        for (const auto& m : cfg.owners.match)
          if (m != "email" && m != "name" && m != "id")
            return config_error("$.owners.match: unknown matcher '" + m + "' (allowed: email, name, id)");
      }
      if (const auto* ovr = orr.get("overrides")) {
        const json::object* oo2;
        CMG_RETURN_IF_ERROR(as_object(*ovr, "$.owners.overrides", oo2));
        for (const auto& [k, val] : *oo2) {
          if (!val.is_string()) return config_error("$.owners.overrides." + std::string(k) + ": expected a destination user id");
          cfg.owners.overrides[std::string(k)] = std::string(val.get_string());
        }
      }
      CMG_RETURN_IF_ERROR(orr.finish({"match", "overrides"}));
    }
    if (const auto* dv = r.get("dedup")) {
      const json::object* dob;
      CMG_RETURN_IF_ERROR(as_object(*dv, "$.dedup", dob));
      ObjectReader dr(*dob, "$.dedup");
      CMG_RETURN_IF_ERROR(dr.string("phone_region", cfg.phone_region, false));
      if (cfg.phone_region.size() != 2 || !std::isupper(static_cast<unsigned char>(cfg.phone_region[0])) ||
          !std::isupper(static_cast<unsigned char>(cfg.phone_region[1])))
        return config_error("$.dedup.phone_region: expected a two-letter region code such as \"US\" or \"GB\"");
      CMG_RETURN_IF_ERROR(dr.finish({"phone_region"}));
    }
    if (const auto* wv = r.get("write")) {
      const json::object* wo;
      CMG_RETURN_IF_ERROR(as_object(*wv, "$.write", wo));
      ObjectReader wr(*wo, "$.write");
      CMG_RETURN_IF_ERROR(wr.size("batch_size", cfg.batch_size, 1, 1000));
      CMG_RETURN_IF_ERROR(wr.finish({"batch_size"}));
    }
    if (const auto* hv = r.get("halt")) {
      const json::object* ho;
      CMG_RETURN_IF_ERROR(as_object(*hv, "$.halt", ho));
      ObjectReader hr(*ho, "$.halt");
      CMG_RETURN_IF_ERROR(hr.size("window", cfg.halt_window, 10, 1000000));
      if (const auto* m = hr.get("max_error_rate")) {
        if (!m->is_number()) return config_error("$.halt.max_error_rate: expected a number between 0 and 1");
        cfg.halt_max_error_rate = m->to_number<double>();
        if (!(cfg.halt_max_error_rate >= 0 && cfg.halt_max_error_rate <= 1))
          return config_error("$.halt.max_error_rate: expected a number between 0 and 1");
      }
      CMG_RETURN_IF_ERROR(hr.finish({"window", "max_error_rate"}));
    }
    if (const auto* dv = r.get("delta")) {
      const json::object* dob;
      CMG_RETURN_IF_ERROR(as_object(*dv, "$.delta", dob));
      ObjectReader dr(*dob, "$.delta");
      std::size_t seconds = static_cast<std::size_t>(cfg.delta_lookback_ms / 1000);
      CMG_RETURN_IF_ERROR(dr.size("lookback_seconds", seconds, 0, 7 * 24 * 3600));
      cfg.delta_lookback_ms = static_cast<std::int64_t>(seconds) * 1000;
      CMG_RETURN_IF_ERROR(dr.finish({"lookback_seconds"}));
    }
    if (const auto* av = r.get("alerts")) {
      const json::object* ao;
      CMG_RETURN_IF_ERROR(as_object(*av, "$.alerts", ao));
      ObjectReader ar(*ao, "$.alerts");
      CMG_RETURN_IF_ERROR(ar.string("command", cfg.alert_command, false));
      CMG_RETURN_IF_ERROR(ar.finish({"command"}));
    }
    const auto* objs = r.get("objects");
    if (!objs || !objs->is_array() || objs->get_array().empty())
      return config_error("$.objects: required non-empty array of objects (in dependency order)");
    const auto& oa = objs->get_array();
    std::set<std::string> names;
    for (std::size_t i = 0; i < oa.size(); ++i) {
      std::string op = "$.objects[" + std::to_string(i) + "]";
      ObjectConfig oc;
      CMG_RETURN_IF_ERROR(parse_object(oa[i], op, oc));
      if (!names.insert(oc.name).second) return config_error(op + ".name: duplicate object name '" + oc.name + "'");
      for (const auto& m : oc.fields)
        if (!m.parent.empty() && !names.count(m.parent))
          return config_error(op + ".fields." + m.source + ".parent: '" + m.parent +
                              "' is not an object listed before this one (parents come first)");
      cfg.objects.push_back(std::move(oc));
    }
    return r.finish({"name", "state", "source", "destination", "owners", "dedup", "write", "halt", "alerts", "delta",
                     "objects"});
  }();
  if (!st.is_ok()) return prefix(st);
  return cfg;
}

Result<MigrationConfig> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read config file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string base = std::filesystem::absolute(path).parent_path().string();
  return parse_config(ss.str(), path, base);
}

}  // namespace cmg
