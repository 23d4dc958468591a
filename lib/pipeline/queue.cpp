// The conflict queue: items with a reason from the closed list, fixes and skips by reviewers, and
// the audit log reader.
#include "crmmigrate/core/problem.hpp"
#include "crmmigrate/core/time.hpp"
#include "pipeline_internal.hpp"
#include "state_internal.hpp"

namespace cmg {

namespace json = boost::json;
using state::get_json;
using state::put_json;
using state::str;
using store::key_of;
using store::Txn;

bool queue_item_matches(const json::object& item, const QueueFilter& f) {
  std::string s = str(item, "status");
  if (!f.id.empty() && str(item, "id") != f.id) return false;
  if (f.status.empty() ? (s != "open" && s != "fixed") : (f.status != "all" && s != f.status)) return false;
  if (!f.reason.empty() && str(item, "reason") != f.reason) return false;
  if (!f.object.empty() && str(item, "object") != f.object) return false;
  if (!f.field.empty()) {
    bool hit = false;
    if (const auto* ps = item.if_contains("problems"); ps && ps->is_array())
      for (const auto& p : ps->get_array())
        if (p.is_object() && str(p.get_object(), "field") == f.field) hit = true;
    if (!hit) return false;
  }
  if (!f.text.empty() && json::serialize(item).find(f.text) == std::string::npos) return false;
  return true;
}

namespace {

// The queue items matching `f`, with their keys, read inside the caller's write transaction.
Result<std::vector<std::pair<std::string, json::object>>> matching_items(Txn& t, const QueueFilter& f) {
  std::vector<std::pair<std::string, json::object>> hits;
  CMG_RETURN_IF_ERROR(t.scan(state::kQueue, "", [&](std::string_view k, std::string_view v) {
    auto item = state::parse_object(v);
    if (item && queue_item_matches(*item, f)) hits.emplace_back(std::string(k), std::move(*item));
    return true;
  }));
  return hits;
}

bool no_selection(const QueueFilter& f) {
  return f.id.empty() && f.reason.empty() && f.object.empty() && f.field.empty() && f.text.empty();
}

// Applies a reviewer's action to every item matching `f`, in one transaction, appending `entry`
// (plus the time) to each item's history. Returns how many items it touched.
using ReviewAction = std::function<Status(Txn&, const std::string& key, json::object& item)>;
Result<std::int64_t> review_items(store::Env& env, const QueueFilter& f, json::object entry, const ReviewAction& act) {
  std::int64_t n = 0;
  entry["at"] = format_timestamp_ms(state::now_ms());
  CMG_RETURN_IF_ERROR(env.write([&](Txn& t) -> Status {
    n = 0;  // the body may run again after map growth
    CMG_ASSIGN_OR_RETURN(auto hits, matching_items(t, f));
    for (auto& [k, item] : hits) {
      json::array history = item["history"].is_array() ? item["history"].get_array() : json::array{};
      history.push_back(entry);
      item["history"] = std::move(history);
      CMG_RETURN_IF_ERROR(act(t, k, item));
      CMG_RETURN_IF_ERROR(put_json(t, state::kQueue, k, item));
      json::object ev = entry;
      ev.erase("at");
      ev["action"] = entry.at("action").as_string() == "fix" ? "fixed" : "skipped";
      ev["object"] = str(item, "object");
      ev["source_id"] = str(item, "source_id");
      ev["reason"] = str(item, "reason");
      CMG_RETURN_IF_ERROR(state::append_audit(t, std::move(ev)));
      ++n;
    }
    return Status::ok();
  }));
  return n;
}

}  // namespace

Status Migration::Impl::enqueue(Txn& t, const std::string& object, const std::string& sid,
                                const std::vector<Problem>& problems, const std::string& stage, json::object extra,
                                RunCtx* ctx) {
  std::string k = key_of({object, sid});
  CMG_ASSIGN_OR_RETURN(auto old, get_json(t, state::kQueue, k));
  json::object item = old ? *old : json::object{};
  json::array history;
  if (old)
    if (const auto* h = old->if_contains("history"); h && h->is_array()) history = h->get_array();
  Reason reason = primary_reason(problems);
  json::array ps;
  for (const auto& p : problems) ps.push_back(problem_to_json(p));
  if (old) history.push_back(json::object{{"action", "requeued"}, {"at", format_timestamp_ms(state::now_ms())},
                                          {"previous_reason", str(*old, "reason")}});
  item["id"] = object + "/" + sid;
  item["object"] = object;
  item["source_id"] = sid;
  item["reason"] = reason_name(reason);
  item["stage"] = stage;
  item["problems"] = std::move(ps);
  item["status"] = "open";
  item.erase("reprocessing");
  if (!old) item["queued_at"] = format_timestamp_ms(state::now_ms());
  item["updated_at"] = format_timestamp_ms(state::now_ms());
  item["history"] = std::move(history);
  if (!item.contains("corrections")) item["corrections"] = json::object{};
  CMG_ASSIGN_OR_RETURN(auto src, get_json(t, state::kSrc, k));
  if (src) item["source"] = src->at("fields");
  // "stages" (when each step handled the record) goes to the audit event, not the item.
  json::value stages;
  if (auto* sv = extra.if_contains("stages")) {
    stages = std::move(*sv);
    extra.erase("stages");
  }
  for (auto& [ek, ev] : extra) {
    if (ek == "status" || ek == "id" || ek == "reason") continue;  // the item's own fields are not overridable
    item[ek] = ev;
  }
  CMG_RETURN_IF_ERROR(put_json(t, state::kQueue, k, item));
  // A plan derived from the mapped value is stored first: the queued status no longer says so.
  CMG_RETURN_IF_ERROR(state::keep_derived_plan(t, object, sid));
  CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k, json::object{{"s", "queued"}}));
  json::object ev{{"action", "queued"}, {"object", object}, {"source_id", sid}, {"reason", reason_name(reason)},
                  {"stage", stage}, {"problems", item.at("problems")}};
  if (ctx) ev["run"] = ctx->run_id;
  if (const auto* tr = item.if_contains("translations")) ev["translations"] = *tr;
  if (stages.is_object()) ev["stages"] = std::move(stages);
  return state::append_audit(t, std::move(ev));
}

Result<std::vector<json::object>> Migration::Impl::queue_list(const QueueFilter& f, std::size_t offset,
                                                              std::size_t limit) {
  std::vector<json::object> out;
  std::size_t matched = 0;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) {
    std::string prefix;
    if (!f.id.empty()) {
      auto slash = f.id.find('/');
      if (slash != std::string::npos) prefix = key_of({f.id.substr(0, slash), f.id.substr(slash + 1)});
    } else if (!f.object.empty()) {
      prefix = key_of({f.object, ""});
    }
    return t.scan(state::kQueue, prefix, [&](std::string_view, std::string_view v) {
      auto item = state::parse_object(v);
      if (!item || !queue_item_matches(*item, f)) return true;
      if (matched++ < offset) return true;
      out.push_back(std::move(*item));
      return out.size() < limit;
    });
  }));
  return out;
}

Result<std::int64_t> Migration::Impl::queue_fix(const QueueFilter& f, const json::object& set,
                                                const std::string& reviewer, const std::string& note) {
  if (reviewer.empty()) return invalid_argument("queue fix needs --reviewer NAME (recorded with the fix)");
  if (set.empty() && note.empty())
    return invalid_argument("queue fix needs --set field=value, or --note explaining the fix (e.g. a config change)");
  if (no_selection(f))
    return invalid_argument("queue fix needs an item id or a filter (--reason, --object, --field)");
  return review_items(*env, f, json::object{{"action", "fix"}, {"reviewer", reviewer}, {"note", note}, {"set", set}},
                      [&](Txn&, const std::string&, json::object& item) {
                        json::object corr =
                            item["corrections"].is_object() ? item["corrections"].get_object() : json::object{};
                        for (const auto& [fk, fv] : set) corr[fk] = fv;
                        item["corrections"] = std::move(corr);
                        item["status"] = "fixed";
                        return Status::ok();
                      });
}

Result<std::int64_t> Migration::Impl::queue_skip(const QueueFilter& f, const std::string& reviewer,
                                                 const std::string& note) {
  if (reviewer.empty()) return invalid_argument("queue skip needs --reviewer NAME");
  if (note.empty()) return invalid_argument("queue skip needs --note TEXT saying why the record is not migrated");
  if (no_selection(f))
    return invalid_argument("queue skip needs an item id or a filter (--reason, --object, --field)");
  return review_items(*env, f, json::object{{"action", "skip"}, {"reviewer", reviewer}, {"note", note}},
                      [&](Txn& t, const std::string& k, json::object& item) {
                        item["status"] = "skipped";
                        return put_json(t, state::kRecords, k, json::object{{"s", "skipped"}, {"by", reviewer}});
                      });
}

Status Migration::Impl::audit(const std::string& record, const std::function<bool(const json::object&)>& fn) {
  return env->read([&](Txn& t) -> Status {
    if (record.empty()) {
      return t.scan(state::kAudit, "", [&](std::string_view, std::string_view v) {
        auto e = state::parse_object(v);
        return e ? fn(*e) : true;
      });
    }
    // "contacts/123" or a bare id (every object's record with that id).
    std::vector<std::string> prefixes;
    auto slash = record.find('/');
    if (slash != std::string::npos) {
      prefixes.push_back(key_of({record.substr(0, slash), record.substr(slash + 1), ""}));
    } else {
      for (const auto& oc : cfg.objects) prefixes.push_back(key_of({oc.name, record, ""}));
    }
    std::vector<std::string> seqs;
    for (const auto& p : prefixes)
      CMG_RETURN_IF_ERROR(t.scan(state::kAuditByRecord, p, [&](std::string_view k, std::string_view) {
        seqs.emplace_back(k.substr(k.size() - 8));  // the sequence is the last 8 bytes (be64)
        return true;
      }));
    std::sort(seqs.begin(), seqs.end());
    for (const auto& s : seqs) {
      CMG_ASSIGN_OR_RETURN(auto e, get_json(t, state::kAudit, s));
      if (e && !fn(*e)) break;
    }
    return Status::ok();
  });
}

}  // namespace cmg
