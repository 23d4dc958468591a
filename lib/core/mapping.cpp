#include "crmmigrate/core/mapping.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <mutex>

#include <boost/json.hpp>

#include "crmmigrate/core/normalize.hpp"
#include "crmmigrate/core/time.hpp"

namespace cmg {

namespace json = boost::json;

namespace {

std::string norm_key(const std::string& s) {
  auto n = normalize_text(s);
  return n ? *n : s;
}

std::string lower_ascii(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Pipedrive-style lists [{"value": "a@b.c", "primary": true}, ...] → the primary (or first) value.
json::value pick_primary(const json::value& v) {
  const auto* a = v.if_array();
  if (!a) return v;
  const json::value* first = nullptr;
  for (const auto& e : *a) {
    const auto* o = e.if_object();
    if (!o) {
      if (!first) first = &e;
      continue;
    }
    const auto* val = o->if_contains("value");
    if (!val || value_is_blank(*val)) continue;
    if (!first) first = val;
    if (const auto* p = o->if_contains("primary"); p && p->is_bool() && p->get_bool()) return *val;
  }
  return first ? *first : json::value(nullptr);
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string closest_match(const std::string& value, const std::vector<std::string>& candidates) {
  std::string v = norm_key(value);
  std::string best;
  std::size_t best_d = static_cast<std::size_t>(-1);
  for (const auto& c : candidates) {
    std::string n = norm_key(c);
    std::size_t d = edit_distance(v, n);
    // A candidate containing the value (or the reverse) is a strong hint even when long.
    if (!v.empty() && (n.find(v) != std::string::npos || v.find(n) != std::string::npos)) d = std::min<std::size_t>(d, 1);
    if (d < best_d || (d == best_d && c < best)) {
      best_d = d;
      best = c;
    }
  }
  // Beyond half the length the "closest" value is noise, not a suggestion.
  if (best.empty() || best_d > std::max<std::size_t>(2, v.size() / 2)) return {};
  return best;
}

std::optional<std::string> translation_key(const Translation& t, const Record& record) {
  std::string key;
  bool all_blank = true;
  for (std::size_t i = 0; i < t.from.size(); ++i) {
    const json::value* raw = record.fields.if_contains(t.from[i]);
    std::string s = raw ? value_to_text(*raw) : std::string();
    all_blank = all_blank && s.empty();
    key += (i ? "/" : "") + s;
  }
  if (all_blank) return std::nullopt;
  return key;
}

namespace {

// coerce_value with the result in the default storage.
std::optional<json::value> coerce_to(const json::value& v, FieldType t) {
  switch (t) {
    case FieldType::kNumber:
    case FieldType::kInteger: {
      if (v.is_int64() || v.is_uint64()) return v;
      if (v.is_double()) {
        if (t == FieldType::kInteger && v.get_double() != std::floor(v.get_double())) return std::nullopt;
        return v;
      }
      if (!v.is_string()) return std::nullopt;
      // Plain decimals, optionally with "," thousands separators in groups of three ("1,234.50").
      // Anything else ("1.234,50", "0x1A", "1e999") is refused rather than guessed at.
      std::string_view in = v.get_string();
      while (!in.empty() && in.front() == ' ') in.remove_prefix(1);
      while (!in.empty() && in.back() == ' ') in.remove_suffix(1);
      std::string s;
      std::size_t digits_since_comma = 0;
      bool seen_comma = false, seen_dot = false;
      for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == ',') {
          if (seen_dot || (seen_comma && digits_since_comma != 3) || digits_since_comma == 0) return std::nullopt;
          seen_comma = true;
          digits_since_comma = 0;
          continue;
        }
        if (c == '.') {
          if (seen_dot || (seen_comma && digits_since_comma != 3)) return std::nullopt;
          seen_dot = true;
        } else if (std::isdigit(static_cast<unsigned char>(c))) {
          ++digits_since_comma;
        } else if (!((c == '-' || c == '+') && i == 0)) {
          return std::nullopt;
        }
        s.push_back(c);
      }
      if (seen_comma && !seen_dot && digits_since_comma != 3) return std::nullopt;
      if (s.empty() || s == "-" || s == "+" || s == ".") return std::nullopt;
      char* end = nullptr;
      errno = 0;
      if (t == FieldType::kInteger) {
        long long n = std::strtoll(s.c_str(), &end, 10);
        if (*end != '\0' || errno == ERANGE) return std::nullopt;
        return json::value(static_cast<std::int64_t>(n));
      }
      double d = std::strtod(s.c_str(), &end);
      if (*end != '\0' || errno == ERANGE || !std::isfinite(d)) return std::nullopt;
      return json::value(d);
    }
    case FieldType::kBool: {
      if (v.is_bool()) return v;
      std::string s = lower_ascii(value_to_text(v));
      if (s == "true" || s == "yes" || s == "1" || s == "y") return json::value(true);
      if (s == "false" || s == "no" || s == "0" || s == "n") return json::value(false);
      return std::nullopt;
    }
    case FieldType::kDate:
    case FieldType::kDateTime: {
      std::optional<std::int64_t> ms;
      if (v.is_int64()) ms = v.get_int64();
      else if (v.is_string()) ms = parse_timestamp_ms(v.get_string());
      if (!ms) return std::nullopt;
      std::string iso = format_timestamp_ms(*ms);
      if (t == FieldType::kDate) iso = iso.substr(0, 10);
      return json::value(iso);
    }
    case FieldType::kEnum: {
      if (const auto* a = v.if_array()) {  // multi-select → HubSpot's ";"-joined form
        std::string out;
        for (const auto& e : *a) {
          if (value_is_blank(e)) continue;
          if (!out.empty()) out += ';';
          out += value_to_text(e);
        }
        return json::value(out);
      }
      return json::value(value_to_text(v));
    }
    case FieldType::kJson: return v;
    case FieldType::kEmail: {
      std::string s = value_to_text(v);
      auto b = s.find_first_not_of(" \t\r\n");
      auto e = s.find_last_not_of(" \t\r\n");
      return json::value(s.substr(b, e - b + 1));
    }
    default:
      if (v.is_string()) return v;  // value_to_text of a string is the string itself
      return json::value(value_to_text(v));
  }
}

}  // namespace

std::optional<json::value> coerce_value(const json::value& v, FieldType t) { return coerce_value(v, t, {}); }

std::optional<json::value> coerce_value(const json::value& v, FieldType t, json::storage_ptr sp) {
  if (value_is_blank(v)) return json::value(nullptr, sp);
  // A string for a text-like field (most values) is kept as it is (coerce_to's default case and
  // kJson): copied into `sp` at once.
  switch (t) {
    case FieldType::kString:
    case FieldType::kText:
    case FieldType::kPhone:
    case FieldType::kReference:
    case FieldType::kJson:
      if (v.is_string()) return json::value(v, sp);
      break;
    case FieldType::kEnum:
      if (v.is_string()) return json::value(v.get_string(), sp);
      break;
    case FieldType::kEmail:
      if (const auto* str = v.if_string()) {
        // Not blank (checked above), so something is left after trimming.
        std::string_view e(str->data(), str->size());
        e.remove_prefix(e.find_first_not_of(" \t\r\n"));
        e.remove_suffix(e.size() - 1 - e.find_last_not_of(" \t\r\n"));
        return json::value(json::string_view(e.data(), e.size()), sp);
      }
      break;
    default: break;
  }
  auto r = coerce_to(v, t);
  if (!r || *r->storage() == *sp) return r;
  return json::value(std::move(*r), sp);
}

void dedup_key_values(const ObjectConfig& object, const PhoneNormalizer& phones, const Normalizer* const* custom,
                      const json::object& fields, std::string_view external_id,
                      std::vector<std::vector<std::string>>& out) {
  out.resize(object.dedup.size());
  for (std::size_t i = 0; i < object.dedup.size(); ++i) {
    const DedupKeyConfig& k = object.dedup[i];
    std::vector<std::string>& level = out[i];
    level.clear();
    auto add = [&](std::optional<std::string> n) {
      if (n && !n->empty() && std::find(level.begin(), level.end(), *n) == level.end()) level.push_back(std::move(*n));
    };
    if (k.kind == DedupKeyKind::kExternalId) {
      if (!external_id.empty()) level.emplace_back(external_id);
      continue;
    }
    const json::value* v = fields.if_contains(k.field);
    if (!v || value_is_blank(*v)) continue;
    const Normalizer* plugin = custom ? custom[i] : nullptr;
    auto one = [&](std::string_view text) {
      if (plugin) return add(plugin->normalize(text));
      switch (k.kind) {
        case DedupKeyKind::kEmail: return add(normalize_email(text));
        case DedupKeyKind::kPhone: return add(phones.to_e164(text));
        case DedupKeyKind::kText: return add(normalize_text(text));
        case DedupKeyKind::kExact: return add(std::string(text));
        case DedupKeyKind::kExternalId: return;
      }
    };
    // Strings (the usual case) are read in place; other values through their text.
    auto each = [&](const json::value& e) {
      if (const auto* s = e.if_string()) one(std::string_view(s->data(), s->size()));
      else one(value_to_text(e));
    };
    if (const auto* a = v->if_array()) {
      for (const auto& e : *a) each(e);
    } else {
      each(*v);
    }
  }
}

// ---- OwnerResolver ----

OwnerResolver::OwnerResolver(const std::vector<User>& source_users, const std::vector<User>& destination_users,
                             const OwnersConfig& config)
    : source_users_(source_users),
      destination_users_(destination_users),
      config_(config),
      cache_(std::make_shared<Cache>()) {
  for (std::size_t i = 0; i < destination_users_.size(); ++i) {
    const auto& u = destination_users_[i];
    if (auto e = normalize_email(u.email)) dest_by_email_.emplace(*e, i);
    if (!u.name.empty()) dest_by_name_.emplace(norm_key(u.name), i);
    dest_by_id_.emplace(u.id, i);
  }
  for (const auto& u : source_users_)
    for (const std::string& k : {u.id, u.email, u.name})
      if (!k.empty() && !known_.count(k)) known_.emplace(k, resolve_uncached(k));
}

struct OwnerResolver::Cache {
  static constexpr std::size_t kMaxEntries = 4096;
  std::mutex mutex;
  std::unordered_map<std::string, Resolution> entries;
};

OwnerResolver::Resolution OwnerResolver::resolve(const std::string& value) const {
  auto it = known_.find(value);
  if (it != known_.end()) return it->second;
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto c = cache_->entries.find(value);
    if (c != cache_->entries.end()) return c->second;
  }
  Resolution r = resolve_uncached(value);
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->entries.size() < Cache::kMaxEntries) cache_->entries.emplace(value, r);
  return r;
}

bool OwnerResolver::resolve_user_id(std::string_view value, std::string& user_id) const {
  // The maps are keyed by std::string: the key is built in a buffer kept by the thread.
  thread_local std::string key;
  key.assign(value.data(), value.size());
  const Resolution* r = nullptr;
  if (auto it = known_.find(key); it != known_.end()) {
    r = &it->second;
  } else {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    // Entries are never removed: the one found stays valid after the lock is released.
    if (auto c = cache_->entries.find(key); c != cache_->entries.end()) r = &c->second;
  }
  if (r) {
    if (!r->user_id) return false;
    user_id.assign(*r->user_id);
    return true;
  }
  Resolution fresh = resolve(key);  // resolved and cached once
  if (!fresh.user_id) return false;
  user_id = std::move(*fresh.user_id);
  return true;
}

OwnerResolver::Resolution OwnerResolver::resolve_uncached(const std::string& value) const {
  Resolution r;
  const User* su = nullptr;
  for (const auto& u : source_users_)
    if (u.id == value) su = &u;
  if (!su) {
    auto ne = normalize_email(value);
    std::string nn = norm_key(value);
    for (const auto& u : source_users_) {
      auto ue = normalize_email(u.email);
      if ((ne && ue && *ne == *ue) || (!u.name.empty() && norm_key(u.name) == nn)) su = &u;
    }
  }
  User fallback;
  if (!su) {
    fallback.email = normalize_email(value) ? value : "";
    fallback.name = fallback.email.empty() ? value : "";
    su = &fallback;
  }
  r.source_label = su->name.empty() ? su->email : su->email.empty() ? su->name : su->name + " <" + su->email + ">";
  for (const std::string& k : {su->id, su->email, su->name}) {
    if (k.empty()) continue;
    auto it = config_.overrides.find(k);
    if (it != config_.overrides.end()) {
      r.user_id = it->second;
      r.matched_by = "override";
      return r;
    }
  }
  for (const auto& how : config_.match) {
    if (how == "email") {
      if (auto e = normalize_email(su->email)) {
        auto it = dest_by_email_.find(*e);
        if (it != dest_by_email_.end()) {
          r.user_id = destination_users_[it->second].id;
          r.matched_by = "email";
          return r;
        }
      }
    } else if (how == "name") {
      if (!su->name.empty()) {
        auto it = dest_by_name_.find(norm_key(su->name));
        if (it != dest_by_name_.end()) {
          r.user_id = destination_users_[it->second].id;
          r.matched_by = "name";
          return r;
        }
      }
    } else if (how == "id") {
      auto it = dest_by_id_.find(value);
      if (it != dest_by_id_.end()) {
        r.user_id = destination_users_[it->second].id;
        r.matched_by = "id";
        return r;
      }
    }
  }
  return r;
}

std::vector<std::pair<User, OwnerResolver::Resolution>> OwnerResolver::all() const {
  std::vector<std::pair<User, Resolution>> out;
  for (const auto& u : source_users_) out.emplace_back(u, resolve(u.id.empty() ? u.email : u.id));
  return out;
}

// ---- Mapper ----

// What map() needs for one destination object, worked out once per Mapper instead of per record:
// the schema, each mapped field's target and type, and the text each default leaves in
// MappedRecord::defaults ("field = <json>").
struct Mapper::Targets {
  struct Field {
    std::string target;        // "" when the mapping has no target for this destination object
    FieldType type = FieldType::kString;
    std::string default_note;  // when the mapping has a default value
  };
  struct Default {
    bool applies = true;  // false: the destination object has no such field (routed objects)
    FieldType type = FieldType::kString;
    std::string note;
  };
  const ObjectSchema* schema = nullptr;
  std::vector<Field> fields;      // one per ObjectConfig::fields entry
  std::vector<Default> defaults;  // one per ObjectConfig::defaults entry, in its order

  Targets(const ObjectConfig& object, const Schema& destination, const std::string& destination_object)
      : schema(destination.object(destination_object)) {
    fields.reserve(object.fields.size());
    for (const auto& m : object.fields) {
      Field f;
      f.target = object.target_field(m, destination_object);
      f.type = type_of(f.target);
      if (m.default_value && !f.target.empty()) f.default_note = f.target + " = " + json::serialize(*m.default_value);
      fields.push_back(std::move(f));
    }
    for (const auto& [name, value] : object.defaults) {
      Default d;
      d.applies = !schema || schema->field(name);
      d.type = type_of(name);
      d.note = name + " = " + json::serialize(value);
      defaults.push_back(std::move(d));
    }
  }
  FieldType type_of(const std::string& field) const {
    const FieldSchema* fs = schema ? schema->field(field) : nullptr;
    return fs ? fs->type : FieldType::kString;
  }
};

Mapper::Mapper(const ObjectConfig& object, const Schema& destination, const ObjectSchema* source_object,
               const OwnerResolver& owners)
    : object_(object), destination_(destination), source_object_(source_object), owners_(owners) {
  auto targets = std::make_shared<std::map<std::string, Targets, std::less<>>>();
  auto add = [&](const std::string& dobj) {
    if (!dobj.empty() && !targets->count(dobj)) targets->emplace(dobj, Targets(object_, destination_, dobj));
  };
  add(object_.destination);
  for (const auto& [value, dobj] : object_.route) add(dobj);
  targets_ = std::move(targets);
}

const Mapper::Targets* Mapper::targets_for(const std::string& destination_object) const {
  auto it = targets_->find(destination_object);
  return it == targets_->end() ? nullptr : &it->second;
}

std::string Mapper::route(const Record& source) const {
  if (object_.route_by.empty()) return object_.destination;
  const auto* v = source.fields.if_contains(object_.route_by);
  if (!v) return {};
  auto it = object_.route.find(value_to_text(*v));
  return it == object_.route.end() ? std::string() : it->second;
}

MappedRecord Mapper::map(const Record& source, const json::object& corrections, const ParentLookup& parents) const {
  return map(source, corrections, parents, {});
}

MappedRecord Mapper::map(const Record& source, const json::object& corrections, const ParentLookup& parents,
                         json::storage_ptr storage) const {
  // A container's storage is fixed when it is made.
  MappedRecord out{{}, json::object(storage), {}, {}, {}, {}, {}, false};
  out.destination_object = route(source);
  if (out.destination_object.empty()) {
    const auto* v = source.fields.if_contains(object_.route_by);
    std::vector<std::string> keys;
    for (const auto& [k, d] : object_.route) keys.push_back(k);
    Problem p{Reason::kUnmappedValue, object_.route_by, v ? value_to_text(*v) : "", "route",
              "no destination object for " + object_.route_by + " = '" + (v ? value_to_text(*v) : "") + "'",
              closest_match(v ? value_to_text(*v) : "", keys)};
    out.problems.push_back(std::move(p));
    return out;
  }
  // Every destination object the config names is worked out in advance; another one (not
  // expected) is worked out here.
  std::optional<Targets> unlisted;
  const Targets* targets = targets_for(out.destination_object);
  if (!targets) targets = &unlisted.emplace(object_, destination_, out.destination_object);
  const ObjectSchema* dest = targets->schema;
  auto field_type = [&](const std::string& f) { return targets->type_of(f); };
  auto set_typed = [&](const std::string& f, const json::value& raw, FieldType type) {
    auto c = coerce_value(raw, type, storage);
    if (!c) {
      out.problems.push_back({Reason::kInvalidValue, f, value_to_text(raw), std::string("type:") + field_type_name(type),
                              "'" + value_to_text(raw) + "' is not a valid " + field_type_name(type), ""});
      return;
    }
    out.fields.insert_or_assign(f, std::move(*c));  // no null placeholder first
  };
  auto set_field = [&](const std::string& f, const json::value& raw) { set_typed(f, raw, field_type(f)); };

  out.fields.reserve(object_.fields.size() + object_.defaults.size() + 1);
  const json::value null_value;
  json::value picked;
  for (std::size_t mi = 0; mi < object_.fields.size(); ++mi) {
    const auto& m = object_.fields[mi];
    const Targets::Field& tf = targets->fields[mi];
    const std::string& target = tf.target;
    // The source value is only copied where it is replaced (primary pick) or stored.
    const json::value* raw = source.fields.if_contains(m.source);
    const json::value* vp = raw ? raw : &null_value;
    if (m.pick == "primary") {
      picked = pick_primary(*vp);
      vp = &picked;
    }
    if (m.default_value && value_is_blank(*vp)) {
      vp = &*m.default_value;
      if (!target.empty()) out.defaults.push_back(tf.default_note);
    }
    const json::value& v = *vp;
    if (m.translate.size() || target.empty()) continue;  // translated fields are set below
    if (m.owner) {
      if (value_is_blank(v)) continue;
      // The usual case, a resolved owner, without copying the text or the resolution.
      std::string user_id;
      const json::string* owner_string = v.if_string();
      if (owner_string && owners_.resolve_user_id(std::string_view(owner_string->data(), owner_string->size()), user_id)) {
        out.fields.insert_or_assign(target, std::move(user_id));
        continue;
      }
      const std::string owner_text = value_to_text(v);
      auto res = owners_.resolve(owner_text);
      if (!res.user_id) {
        out.problems.push_back({Reason::kOwnerUnprovisioned, target, owner_text, "owner",
                                "owner " + res.source_label + " (source user " + owner_text +
                                    ") has no user in the destination; owners are never created",
                                ""});
        continue;
      }
      out.fields.insert_or_assign(target, std::move(*res.user_id));
      continue;
    }
    if (!m.parent.empty()) {
      if (value_is_blank(v)) {
        if (m.parent_required)
          out.problems.push_back({Reason::kMissingRequired, target, "", "parent", "the record has no " + m.source, ""});
        continue;
      }
      std::string pid = value_to_text(v);
      ParentState ps = parents(m.parent, pid);
      switch (ps.kind) {
        case ParentState::Kind::kConfirmed: out.fields[target] = ps.destination_id; break;
        case ParentState::Kind::kQueued:
          out.queued_parents.emplace_back(m.parent, pid);
          out.problems.push_back({Reason::kParentQueued, target, pid, "parent",
                                  m.parent + " " + pid + " is in the conflict queue; this record waits for it", ""});
          break;
        case ParentState::Kind::kPending: out.waits_for_parent = true; break;
        case ParentState::Kind::kAbsent:
          out.problems.push_back({Reason::kOrphanReference, target, pid, "parent",
                                  m.parent + " " + pid + " (" + m.source + ") does not exist in the source", ""});
          break;
      }
      continue;
    }
    set_typed(target, v, tf.type);
  }

  for (const auto& t : object_.translations) {
    auto tkey = translation_key(t, source);
    if (!tkey) continue;
    const std::string& key = *tkey;
    if (!object_.route_by.empty() && dest &&
        std::none_of(t.to.begin(), t.to.end(), [&](const std::string& f) { return dest->field(f) != nullptr; }))
      continue;
    auto it = t.table.find(key);
    const std::vector<std::string>* values = it != t.table.end() ? &it->second : nullptr;
    if (!values && t.otherwise == "default") values = &t.fallback;
    if (!values) {
      // Suggest using the source option's label against the destination options' labels.
      std::string label = key;
      const FieldSchema* last_src = source_object_ ? source_object_->field(t.from.back()) : nullptr;
      if (last_src) {
        std::string last_value = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
        for (const auto& o : last_src->options)
          if (o.value == last_value) label = o.label;
        for (const auto& [cv, opts] : last_src->options_by_value)
          for (const auto& o : opts)
            if (o.value == last_value) label = o.label;
      }
      std::vector<std::string> candidates;
      std::map<std::string, std::string> by_label;
      const FieldSchema* last_dst = dest ? dest->field(t.to.back()) : nullptr;
      if (last_dst) {
        auto add = [&](const Option& o) {
          candidates.push_back(o.label.empty() ? o.value : o.label);
          by_label[candidates.back()] = o.value;
        };
        for (const auto& o : last_dst->options) add(o);
        for (const auto& [cv, opts] : last_dst->options_by_value)
          for (const auto& o : opts) add(o);
      }
      std::string sug = closest_match(label, candidates);
      if (!sug.empty()) sug = by_label[sug] + " (" + sug + ")";
      out.problems.push_back({Reason::kUnmappedValue, t.to.back(), key + (label != key ? " (" + label + ")" : ""),
                              "translation:" + t.name,
                              "no row for '" + key + "' in translation table '" + t.name + "'", sug});
      continue;
    }
    std::string shown;
    for (std::size_t i = 0; i < t.to.size(); ++i) {
      // A routed object's table may feed a field that only some destinations have (hs_task_status).
      if (!object_.route_by.empty() && dest && !dest->field(t.to[i])) continue;
      set_field(t.to[i], json::value((*values)[i]));
      shown += (i ? "/" : "") + (*values)[i];
    }
    out.translations.push_back(t.name + ": " + key + " → " + shown);
  }

  std::size_t di = 0;
  for (const auto& [f, dv] : object_.defaults) {
    const Targets::Default& td = targets->defaults[di++];
    if (!td.applies) continue;  // routed objects: a default for another destination
    auto it = out.fields.find(f);
    if (it == out.fields.end() || value_is_blank(it->value())) {
      bool failed = false;
      for (const auto& p : out.problems) failed = failed || p.field == f;
      if (failed) continue;  // an explicit problem beats a silent default
      set_typed(f, dv, td.type);
      out.defaults.push_back(td.note);
    }
  }

  for (const auto& [f, v] : corrections) {
    // A reviewer's correction replaces the value and clears the problems it answers; an invalid
    // correction is itself a problem (so it is cleared first) and leaves no stale value behind.
    out.problems.erase(std::remove_if(out.problems.begin(), out.problems.end(),
                                      [&f = f](const Problem& p) { return p.field == f && p.reason != Reason::kParentQueued; }),
                       out.problems.end());
    out.fields.erase(f);
    set_field(std::string(f), v);
  }
  // Null fields are not sent: a blank source value leaves the destination untouched.
  for (auto it = out.fields.begin(); it != out.fields.end();) {
    if (it->value().is_null()) it = out.fields.erase(it);
    else ++it;
  }
  for (const auto& d : object_.drop)
    if (source.fields.contains(d)) out.dropped.push_back(d);
  return out;
}

}  // namespace cmg
