#include "state_internal.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <unordered_map>

#include "crmmigrate/core/time.hpp"

namespace cmg::state {

std::optional<json::object> parse_object(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

store::EnvOptions env_options() {
  store::EnvOptions eo;
  // Keyed by object␟source id and scanned only by whole objects or whole keys.
  for (auto db : {kSrc, kRecords, kMapped, kPlans, kIdmap, kIntents}) eo.natural_order.emplace_back(db);
  return eo;
}

Result<std::optional<json::object>> get_json(store::Txn& t, std::string_view db, std::string_view key) {
  CMG_ASSIGN_OR_RETURN(auto raw, t.get(db, key));
  if (!raw) return std::optional<json::object>();
  auto o = parse_object(*raw);
  if (!o) return Status(Code::kStorage, "corrupt value in state database '" + std::string(db) + "'");
  return std::optional<json::object>(std::move(*o));
}

Status put_json(store::Txn& t, std::string_view db, std::string_view key, const json::value& v) {
  return t.put(db, key, json::serialize(v));
}

namespace {

// True when one of the 8 bytes in `w` is below 0x20, '"' or '\\': a byte JSON escapes.
inline bool needs_escape8(std::uint64_t w) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  auto has_zero = [&](std::uint64_t x) { return (x - ones) & ~x & highs; };
  const std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
  return (below_space | has_zero(w ^ (ones * '"')) | has_zero(w ^ (ones * '\\'))) != 0;
}

inline bool needs_escape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  // json::serialize escapes only '"', '\\' and control characters (other bytes, UTF-8 included,
  // are written as they are): runs without them are copied, eight bytes checked at a time.
  out.push_back('"');
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p < end) {
    const char* run = p;
    while (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      if (needs_escape8(w)) break;
      p += 8;
    }
    while (p < end && !needs_escape(static_cast<unsigned char>(*p))) ++p;
    out.append(run, static_cast<std::size_t>(p - run));
    if (p == end) break;
    const char c = *p++;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        const auto u = static_cast<unsigned char>(c);
        const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
        out.append(esc, sizeof esc);
      }
    }
  }
  out.push_back('"');
}

void append_json_value(std::string& out, const json::object& o) {
  out.push_back('{');
  bool first = true;
  for (const auto& [k, e] : o) {
    if (!first) out.push_back(',');
    first = false;
    append_json_string(out, std::string_view(k.data(), k.size()));
    out.push_back(':');
    append_json_value(out, e);
  }
  out.push_back('}');
}

void append_json_value(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::string: {
      const json::string& s = v.get_string();
      append_json_string(out, std::string_view(s.data(), s.size()));
      return;
    }
    case json::kind::object: append_json_value(out, v.get_object()); return;
    case json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        append_json_value(out, e);
      }
      out.push_back(']');
      return;
    }
    case json::kind::int64: append_integer(out, v.get_int64()); return;
    case json::kind::uint64: {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
      out.append(buf, r.ptr);
      return;
    }
    case json::kind::bool_: out += v.get_bool() ? "true" : "false"; return;
    case json::kind::null: out += "null"; return;
    case json::kind::double_: out += json::serialize(v); return;  // Boost's own number format
  }
}

void append_integer(std::string& out, std::int64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

std::string planned_value(std::string_view primary) {
  std::string out;
  out.reserve(primary.size() + 24);
  out += R"({"s":"planned","p":)";
  append_json_string(out, primary);
  out.push_back('}');
  return out;
}

std::string source_value(const Record& r, std::int64_t extracted_ms) {
  std::string out;
  out.reserve(256);
  out += R"({"object":)";
  append_json_string(out, r.object);
  out += R"(,"id":)";
  append_json_string(out, r.id);
  out += R"(,"updated_at":)";
  append_integer(out, r.updated_at);
  out += R"(,"fields":)";
  append_json_value(out, r.fields);
  out += R"(,"x":)";
  append_integer(out, extracted_ms);
  out.push_back('}');
  return out;
}

namespace {

// The unsigned integer right after the last occurrence of `name` in `v` (a member its writer puts
// last, or near the end); 0 when absent. `end` [out, optional]: where its digits stop.
std::int64_t number_after_last(std::string_view v, std::string_view name, std::size_t* end = nullptr) {
  std::size_t p = v.rfind(name);
  if (p == std::string_view::npos) {
    if (end) *end = std::string_view::npos;
    return 0;
  }
  std::int64_t n = 0;
  std::size_t digits = 0;  // at most 18: no overflow, whatever the stored text
  for (p += name.size(); p < v.size() && v[p] >= '0' && v[p] <= '9' && digits < 18; ++p, ++digits)
    n = n * 10 + (v[p] - '0');
  if (end) *end = p;
  return n;
}

}  // namespace

std::int64_t source_extracted_at(std::string_view src) {
  std::size_t end = 0;
  const std::int64_t n = number_after_last(src, R"(,"x":)", &end);
  return end != std::string_view::npos && end + 1 == src.size() && src[end] == '}' ? n : 0;
}

namespace {

// Appends the JSON text of a string array (what json::serialize(to_array(v)) gives).
void append_string_array(std::string& out, const std::vector<std::string>& v) {
  out.push_back('[');
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, v[i]);
  }
  out.push_back(']');
}

// The parts of a `mapped` value (append_mapped_value) that a derived plan reads without a full parse.
struct MappedParts {
  std::string_view dobj, fields, translations, defaults, dropped;
};

// End of the JSON value starting at `pos` in text written by a JSON serializer (so well-formed);
// npos when the text ends first.
std::size_t skip_json_value(std::string_view s, std::size_t pos) {
  auto skip_string = [&](std::size_t p) -> std::size_t {  // p at the opening quote
    // memchr to each quote; a quote preceded by an odd number of backslashes is escaped.
    // (string_view::find_first_of with a two-character set would run a memchr per byte.)
    for (++p;;) {
      const void* q = p < s.size() ? std::memchr(s.data() + p, '"', s.size() - p) : nullptr;
      if (!q) return std::string_view::npos;
      const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(q) - s.data());
      std::size_t backslashes = 0;
      while (at - backslashes > p && s[at - backslashes - 1] == '\\') ++backslashes;
      if (backslashes % 2 == 0) return at + 1;
      p = at + 1;
    }
  };
  if (pos >= s.size()) return std::string_view::npos;
  if (s[pos] == '"') return skip_string(pos);
  if (s[pos] == '{' || s[pos] == '[') {
    int depth = 0;
    for (std::size_t p = pos; p < s.size();) {
      char c = s[p];
      if (c == '"') {
        p = skip_string(p);
        if (p == std::string_view::npos) return p;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return p + 1;
      }
      ++p;
    }
    return std::string_view::npos;
  }
  std::size_t p = pos;
  while (p < s.size() && s[p] != ',' && s[p] != '}' && s[p] != ']') ++p;
  return p;
}

// The leading members of a `mapped` value as append_mapped_value writes it; false for any other
// layout.
bool mapped_parts(std::string_view v, MappedParts& m) {
  std::size_t pos = 0;
  const std::pair<std::string_view, std::string_view*> members[] = {{R"({"o":)", &m.dobj},
                                                                    {R"(,"fields":)", &m.fields},
                                                                    {R"(,"translations":)", &m.translations},
                                                                    {R"(,"defaults":)", &m.defaults},
                                                                    {R"(,"dropped":)", &m.dropped}};
  for (const auto& [name, part] : members) {
    if (v.compare(pos, name.size(), name) != 0) return false;
    pos += name.size();
    std::size_t end = skip_json_value(v, pos);
    if (end == std::string_view::npos) return false;
    *part = v.substr(pos, end - pos);
    pos = end;
  }
  // The destination object must be a plain string (it is used unquoted below).
  if (m.dobj.size() < 2 || m.dobj.front() != '"' || m.dobj.find('\\') != std::string_view::npos) return false;
  m.dobj = m.dobj.substr(1, m.dobj.size() - 2);
  return true;
}

// "x" and "m" of a `mapped` value (when the record was extracted and mapped; append_mapped_value
// writes them last, so the last occurrence of each name is the member itself); 0 when absent.
void mapped_times(std::string_view v, std::int64_t* extracted_at, std::int64_t* mapped_at) {
  *extracted_at = number_after_last(v, R"(,"x":)");
  *mapped_at = number_after_last(v, R"(,"m":)");
}

// The text of the plan of `primary` when its status `rec` says it is planned as mapped (derived
// from its `mapped` value); nullopt for any other status.
Result<std::optional<std::string>> derived_plan_text(store::Txn& t, const std::string& k, std::string_view primary,
                                                     const std::optional<json::object>& rec) {
  const json::value* as_mapped = rec ? rec->if_contains("as_mapped") : nullptr;
  if (!as_mapped || !as_mapped->is_int64() || status_of(*rec) != "planned") return std::optional<std::string>();
  CMG_ASSIGN_OR_RETURN(auto raw, t.get(kMapped, k));
  std::string text;
  if (!raw || !derive_plan(*raw, primary, str(*rec, "id_property"), as_mapped->get_int64(), text))
    return Status(Code::kStorage, "corrupt value in state database 'mapped' (the plan of " +
                                      std::string(store::split_key(k)[0]) + "/" + std::string(primary) +
                                      " is derived from it)");
  return std::optional<std::string>(std::move(text));
}

}  // namespace

void append_mapped_value(std::string& out, const MappedRecord& m, const std::vector<std::vector<std::string>>& keys,
                         std::int64_t updated_at, std::int64_t config_version, std::int64_t extracted_ms,
                         std::int64_t mapped_ms) {
  // What put_json of {"o", "fields", "translations", "defaults", "dropped", "k", "u", "cv", "x", "m"}
  // writes, without building the object first.
  out += R"({"o":)";
  append_json_string(out, m.destination_object);
  out += R"(,"fields":)";
  append_json_value(out, m.fields);
  out += R"(,"translations":)";
  append_string_array(out, m.translations);
  out += R"(,"defaults":)";
  append_string_array(out, m.defaults);
  out += R"(,"dropped":)";
  append_string_array(out, m.dropped);
  out += R"(,"k":[)";
  for (std::size_t lvl = 0; lvl < keys.size(); ++lvl) {
    if (lvl) out.push_back(',');
    append_string_array(out, keys[lvl]);
  }
  out += R"(],"u":)";
  append_integer(out, updated_at);
  out += R"(,"cv":)";
  append_integer(out, config_version);
  out += R"(,"x":)";
  append_integer(out, extracted_ms);
  out += R"(,"m":)";
  append_integer(out, mapped_ms);
  out.push_back('}');
}

std::string planned_as_mapped_value(std::string_view primary, std::int64_t decided_ms, std::string_view id_property) {
  std::string out;
  append_planned_as_mapped_value(out, primary, decided_ms, id_property);
  return out;
}

void append_planned_as_mapped_value(std::string& out, std::string_view primary, std::int64_t decided_ms,
                                    std::string_view id_property) {
  out += R"({"s":"planned","p":)";
  append_json_string(out, primary);
  out += R"(,"as_mapped":)";
  append_integer(out, decided_ms);
  if (!id_property.empty()) {
    out += R"(,"id_property":)";
    append_json_string(out, id_property);
  }
  out.push_back('}');
}

bool mapped_destination(std::string_view mapped, std::string_view* dobj) {
  MappedParts mp;
  if (!mapped_parts(mapped, mp)) return false;
  *dobj = mp.dobj;
  return true;
}

bool derive_plan(std::string_view mapped, std::string_view primary, std::string_view id_property,
                 std::int64_t decided_ms, std::string& out) {
  MappedParts mp;
  if (!mapped_parts(mapped, mp) || mp.fields.size() < 2 || mp.fields.front() != '{') return false;
  // Same members and order as the json::object plan_object's general path serialises.
  out.assign(R"({"members":[)");
  append_json_string(out, primary);
  out += R"(],"o":)";
  append_json_string(out, mp.dobj);
  out += R"(,"key":"","translations":)";
  out.append(mp.translations.data(), mp.translations.size());
  out += R"(,"defaults":)";
  out.append(mp.defaults.data(), mp.defaults.size());
  out += R"(,"dropped":)";
  out.append(mp.dropped.data(), mp.dropped.size());
  out += R"(,"action":"create","fields":)";
  const std::string key = idempotency_key(std::string(primary));
  if (id_property.empty()) {
    out.append(mp.fields.data(), mp.fields.size());
  } else {
    // The idempotency property is not among the mapped fields (plan_object checked): it goes last.
    out.append(mp.fields.data(), mp.fields.size() - 1);
    if (mp.fields.size() > 2) out.push_back(',');
    append_json_string(out, id_property);
    out.push_back(':');
    append_json_string(out, key);
    out.push_back('}');
  }
  out += R"(,"idempotency_key":)";
  append_json_string(out, key);
  out += R"(,"rule":"fold","stages":)";
  std::int64_t extracted_at = 0, mapped_at = 0;
  mapped_times(mapped, &extracted_at, &mapped_at);
  append_stages(out, 4, extracted_at, mapped_at, decided_ms, decided_ms);
  out.push_back('}');
  return true;
}

Result<std::optional<json::object>> load_plan(store::Txn& t, std::string_view object, std::string_view primary) {
  const std::string k = store::key_of({object, primary});
  CMG_ASSIGN_OR_RETURN(auto rec, get_json(t, kRecords, k));
  CMG_ASSIGN_OR_RETURN(auto text, derived_plan_text(t, k, primary, rec));
  if (!text) return get_json(t, kPlans, k);
  auto plan = parse_object(*text);
  if (!plan) return Status(Code::kStorage, "corrupt value in state database 'mapped'");
  return plan;
}

Status keep_derived_plan(store::Txn& t, std::string_view object, std::string_view primary) {
  const std::string k = store::key_of({object, primary});
  CMG_ASSIGN_OR_RETURN(auto rec, get_json(t, kRecords, k));
  CMG_ASSIGN_OR_RETURN(auto text, derived_plan_text(t, k, primary, rec));
  return text ? t.put(kPlans, k, *text) : Status::ok();
}

std::int64_t stamp_ms() {
  static std::atomic<std::int64_t> last{0};
  std::int64_t now = now_ms();
  std::int64_t prev = last.load(std::memory_order_relaxed);
  while (prev < now && !last.compare_exchange_weak(prev, now, std::memory_order_relaxed)) {
  }
  return std::max(now, prev);
}

void append_stamp(std::string& out, std::int64_t ms) {
  // A chunk of records shares a few step times: each is formatted once.
  thread_local std::unordered_map<std::int64_t, std::string> cache;
  auto it = cache.find(ms);
  if (it == cache.end()) {
    if (cache.size() >= 4096) cache.clear();
    it = cache.emplace(ms, format_timestamp_ms(ms)).first;
  }
  out += it->second;
}

namespace {
constexpr const char* kStageNames[4] = {"extracted", "mapped", "deduplicated", "validated"};

// Unknown (<= 0) times take the next known one, so that the times stay non-decreasing.
void fill_unknown(std::int64_t (&t)[4], int steps) {
  for (int i = steps - 2; i >= 0; --i)
    if (t[i] <= 0) t[i] = t[i + 1];
}
}  // namespace

void append_stages(std::string& out, int steps, std::int64_t extracted, std::int64_t mapped, std::int64_t deduplicated,
                   std::int64_t validated) {
  std::int64_t t[4] = {extracted, mapped, deduplicated, validated};
  fill_unknown(t, steps);
  out.push_back('{');
  for (int i = 0; i < steps && i < 4; ++i) {
    if (i) out.push_back(',');
    out.push_back('"');
    out += kStageNames[i];
    out += "\":\"";
    append_stamp(out, t[i]);
    out.push_back('"');
  }
  out.push_back('}');
}

json::object stages_json(int steps, std::int64_t extracted, std::int64_t mapped, std::int64_t deduplicated,
                         std::int64_t validated) {
  std::string text;
  append_stages(text, steps, extracted, mapped, deduplicated, validated);
  return json::parse(text).as_object();
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

json::array to_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.push_back(json::string(s));
  return a;
}

std::vector<std::string> from_array(const json::value* v) {
  std::vector<std::string> out;
  if (!v || !v->is_array()) return out;
  for (const auto& e : v->get_array())
    if (e.is_string()) out.emplace_back(e.get_string());
  return out;
}

Status append_audit(store::Txn& t, json::object event) {
  CMG_ASSIGN_OR_RETURN(auto seqv, t.get(kMeta, "audit_seq"));
  std::uint64_t seq = seqv ? std::stoull(std::string(*seqv)) + 1 : 1;
  CMG_RETURN_IF_ERROR(t.put(kMeta, "audit_seq", std::to_string(seq)));
  event["seq"] = seq;
  if (!event.contains("time")) event["time"] = format_timestamp_ms(now_ms());
  std::string object = str(event, "object"), sid = str(event, "source_id");
  CMG_RETURN_IF_ERROR(t.put(kAudit, store::be64(seq), json::serialize(event)));
  if (!object.empty() && !sid.empty())
    CMG_RETURN_IF_ERROR(t.put(kAuditByRecord, store::key_of({object, sid, store::be64(seq)}), ""));
  return Status::ok();
}

}  // namespace cmg::state
