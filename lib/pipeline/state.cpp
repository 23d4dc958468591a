#include "state_internal.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <unordered_map>

#include "crmmigrate/core/time.hpp"

namespace cmg::state {

std::optional<json::object> parse_object(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
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

void append_json_string(std::string& out, std::string_view s) {
  // Plain printable ASCII needs no escaping (the usual case for ids and object names).
  bool plain = true;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out.push_back('"');
    out.append(s.data(), s.size());
    out.push_back('"');
    return;
  }
  out += json::serialize(json::string_view(s.data(), s.size()));
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
  out += std::to_string(r.updated_at);
  out += R"(,"fields":)";
  out += json::serialize(r.fields);
  out += R"(,"x":)";
  out += std::to_string(extracted_ms);
  out.push_back('}');
  return out;
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
