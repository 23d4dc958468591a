// delta: after the main pass, apply what changed in the source meanwhile (DESIGN §1 "delta").
//
// Per object, a cursor (updated_at, id) starts at the main extraction's start minus the lookback
// window; every source record at or after it is compared with the copy we extracted. New records
// are extracted and go through the normal plan/write; changed records we wrote or merged are
// updated — unless the destination record changed too since our write (both_sides_changed);
// changed records still waiting (queued/pending) get the new source copy; records that disappeared
// from the source are queued as deleted_in_source. Nothing is deleted in the destination.
#include <algorithm>
#include <set>

#include "crmmigrate/core/dedup.hpp"
#include "crmmigrate/core/merge.hpp"
#include "crmmigrate/core/problem.hpp"
#include "crmmigrate/core/time.hpp"
#include "crmmigrate/core/validate.hpp"
#include "pipeline_internal.hpp"
#include "state_internal.hpp"

namespace cmg {

namespace json = boost::json;
using state::get_json;
using state::put_json;
using state::status_of;
using state::str;
using state::to_array;
using store::key_of;
using store::Txn;

namespace {

bool cursor_before(std::int64_t ua, const std::string& aid, std::int64_t ub, const std::string& bid) {
  return ua < ub || (ua == ub && id_less(aid, bid));
}

}  // namespace

Result<StepResult> Migration::Impl::delta_object(const ObjectConfig& oc, RunCtx& ctx) {
  // Cursor: the last (updated_at, id) applied, or the main extraction's start.
  std::int64_t cursor_at = 0;
  std::string cursor_id;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto c, get_json(t, state::kCursors, oc.name));
    if (c) {
      cursor_at = c->at("updated_at").to_number<std::int64_t>();
      cursor_id = str(*c, "id");
      return Status::ok();
    }
    CMG_ASSIGN_OR_RETURN(auto info, get_json(t, state::kMeta, "extract:" + oc.name));
    if (info && info->contains("started_at")) cursor_at = info->at("started_at").to_number<std::int64_t>();
    return Status::ok();
  }));

  // 1. Changed and new records since the cursor (minus the lookback: clocks differ, and records
  //    written in the same millisecond as the cursor must not be skipped).
  ReadOptions ro;
  ro.batch_size = 1000;
  ro.since_updated_at = std::max<std::int64_t>(0, cursor_at - cfg.delta_lookback_ms);
  CMG_ASSIGN_OR_RETURN(auto reader, source->read(oc.source, ro));
  std::int64_t max_at = cursor_at;
  std::string max_id = cursor_id;
  std::vector<std::string> changed_confirmed;  // written/merged records whose source changed
  std::int64_t seen = 0, fresh = 0, changed = 0;
  CMG_RETURN_IF_ERROR(for_each_batch(*reader, [&](RecordBatch& batch) -> Status {
    // Computed per attempt: Env::write may run the body twice.
    std::vector<std::string> confirmed_now;
    std::int64_t fresh_now = 0, changed_now = 0;
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
      confirmed_now.clear();
      fresh_now = changed_now = 0;
      for (const auto& r : batch) {
        std::string k = key_of({oc.name, r.id});
        CMG_ASSIGN_OR_RETURN(auto rec, get_json(t, state::kRecords, k));
        if (!rec) {
          CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k, json::object{{"s", "extracted"}, {"delta", true}}));
          CMG_RETURN_IF_ERROR(put_json(t, state::kSrc, k, record_to_json(r)));
          ++fresh_now;
          continue;
        }
        CMG_ASSIGN_OR_RETURN(auto old, get_json(t, state::kSrc, k));
        if (old && old->contains("fields") && old->at("fields") == json::value(r.fields)) continue;  // lookback overlap
        ++changed_now;
        CMG_RETURN_IF_ERROR(put_json(t, state::kSrc, k, record_to_json(r)));
        std::string s = status_of(*rec);
        if (s == "written" || s == "merged") {
          confirmed_now.push_back(r.id);
        } else if (s == "queued") {
          // Re-evaluated with the new values by this pass.
          CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k, json::object{{"s", "extracted"}}));
        } else if (s != "skipped") {
          CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k, json::object{{"s", "extracted"}}));
        }
        CMG_RETURN_IF_ERROR(state::append_audit(
            t, json::object{{"action", "source_changed"}, {"object", oc.name}, {"source_id", r.id},
                            {"updated_at", format_timestamp_ms(r.updated_at)}, {"run", ctx.run_id}}));
      }
      return Status::ok();
    }));
    for (const auto& r : batch)
      if (cursor_before(max_at, max_id, r.updated_at, r.id)) {
        max_at = r.updated_at;
        max_id = r.id;
      }
    changed_confirmed.insert(changed_confirmed.end(), confirmed_now.begin(), confirmed_now.end());
    fresh += fresh_now;
    changed += changed_now;
    seen += static_cast<std::int64_t>(batch.size());
    if (ctx.opts->progress) ctx.opts->progress({oc.name, "delta", seen, -1});
    return Status::ok();
  }));

  // 2. Changed records we already wrote: update them, unless the destination changed as well.
  const ObjectSchema* src_os = src_schema->object(oc.source);
  Mapper mapper(oc, *dst_schema, src_os, *owners);
  auto merge_rule = merge_rule_for(oc, false);
  for (std::size_t start = 0; start < changed_confirmed.size(); start += 100) {
    std::size_t end = std::min(changed_confirmed.size(), start + 100);
    struct Item {
      std::string sid, status, dest_id, dest_object;
      std::int64_t confirmed_at = 0;
      Record src;
    };
    std::vector<Item> items;
    CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
      for (std::size_t i = start; i < end; ++i) {
        std::string k = key_of({oc.name, changed_confirmed[i]});
        CMG_ASSIGN_OR_RETURN(auto rec, get_json(t, state::kRecords, k));
        CMG_ASSIGN_OR_RETURN(auto srcj, get_json(t, state::kSrc, k));
        Item it;
        it.sid = changed_confirmed[i];
        it.status = status_of(*rec);
        it.dest_id = str(*rec, "d");
        it.dest_object = str(*rec, "o");
        if (const auto* tt = rec->if_contains("t")) it.confirmed_at = tt->to_number<std::int64_t>();
        if (!srcj || !record_from_json(*srcj, it.src)) return Status(Code::kStorage, "missing source copy of " + k);
        items.push_back(std::move(it));
      }
      return Status::ok();
    }));
    std::map<std::string, std::vector<std::size_t>> by_object;
    for (std::size_t i = 0; i < items.size(); ++i) by_object[items[i].dest_object].push_back(i);
    std::map<std::size_t, Record> current;
    for (auto& [dobj, idx] : by_object) {
      std::vector<std::string> ids;
      for (auto i : idx) ids.push_back(items[i].dest_id);
      CMG_ASSIGN_OR_RETURN(auto got, dest->read(dobj, ids));
      for (std::size_t j = 0; j < idx.size() && j < got.size(); ++j)
        if (got[j]) current[idx[j]] = std::move(*got[j]);
    }
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
      ParentLookup lookup = [&](const std::string& o, const std::string& sid) { return parent_state(t, o, sid); };
      for (std::size_t i = 0; i < items.size(); ++i) {
        const Item& it = items[i];
        std::string k = key_of({oc.name, it.sid});
        auto cur = current.find(i);
        if (cur == current.end()) {
          CMG_RETURN_IF_ERROR(enqueue(t, oc.name, it.sid,
                                      {{Reason::kDeletedInSource, "", it.dest_id, "delta",
                                        "the destination record " + it.dest_id + " no longer exists", ""}},
                                      "delta", {}, &ctx));
          continue;
        }
        MappedRecord m = mapper.map(it.src, {}, lookup);
        if (!m.problems.empty()) {
          CMG_RETURN_IF_ERROR(enqueue(t, oc.name, it.sid, m.problems, "map", json::object{{"mapped", m.fields}}, &ctx));
          continue;
        }
        const ObjectSchema* os = dst_schema->object(it.dest_object);
        if (os && !os->id_property.empty()) m.fields.erase(os->id_property);
        // Changed on both sides since our write: a person decides which value wins.
        if (it.confirmed_at > 0 && cur->second.updated_at > it.confirmed_at) {
          std::vector<Problem> ps;
          json::object dvals;
          for (const auto& [f, v] : m.fields) {
            const json::value* now = cur->second.fields.if_contains(f);
            if (now && value_to_text(*now) == value_to_text(v)) continue;
            std::string dv = now ? value_to_text(*now) : "";
            ps.push_back({Reason::kBothSidesChanged, std::string(f), value_to_text(v), "delta",
                          "source now '" + value_to_text(v) + "', destination now '" + dv + "'", ""});
            dvals[f] = now ? *now : json::value(nullptr);
          }
          if (ps.empty()) continue;  // both sides agree: nothing to do
          CMG_RETURN_IF_ERROR(enqueue(t, oc.name, it.sid, ps, "delta",
                                      json::object{{"destination", std::move(dvals)}, {"dest_id", it.dest_id},
                                                   {"mapped", m.fields}},
                                      &ctx));
          continue;
        }
        json::object changes;
        if (it.status == "written") {
          for (const auto& [f, v] : m.fields) {
            const json::value* now = cur->second.fields.if_contains(f);
            if (!now || value_to_text(*now) != value_to_text(v)) changes[f] = v;
          }
        } else {
          Record folded;
          folded.fields = m.fields;
          folded.updated_at = it.src.updated_at;
          MergeOutcome mo;
          CMG_RETURN_IF_ERROR(merge_rule->merge({folded, cur->second}, &mo));
          changes = mo.changes;
        }
        if (changes.empty()) continue;
        std::vector<Problem> ps;
        if (os) validate(oc, *os, changes, false, ps);
        if (!ps.empty()) {
          CMG_RETURN_IF_ERROR(enqueue(t, oc.name, it.sid, ps, "validate", {}, &ctx));
          continue;
        }
        json::object plan{{"members", json::array{json::string(it.sid)}}, {"o", it.dest_object},
                          {"action", "update"}, {"dest_id", it.dest_id}, {"fields", changes},
                          {"keep_status", it.status}, {"key", "external_id"}, {"rule", "delta"},
                          {"translations", to_array(m.translations)}, {"defaults", to_array(m.defaults)},
                          {"dropped", to_array(m.dropped)}};
        CMG_RETURN_IF_ERROR(put_json(t, state::kPlans, k, plan));
        CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k,
                                     json::object{{"s", "planned"}, {"p", it.sid}, {"d", it.dest_id}}));
      }
      return Status::ok();
    }));
  }

  // 3. Deletions: every record we know that the source no longer has.
  std::set<std::string> present;
  {
    ReadOptions all;
    all.batch_size = 1000;
    CMG_ASSIGN_OR_RETURN(auto r2, source->read(oc.source, all));
    CMG_RETURN_IF_ERROR(for_each_batch(*r2, [&](RecordBatch& batch) {
      for (const auto& r : batch) present.insert(r.id);
      return Status::ok();
    }));
  }
  std::vector<std::pair<std::string, json::object>> gone;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) {
    return t.scan(state::kRecords, key_of({oc.name, ""}), [&](std::string_view k, std::string_view v) {
      std::string sid(store::split_key(k)[1]);
      if (present.count(sid)) return true;
      auto rec = state::parse_object(v);
      if (rec && status_of(*rec) != "skipped") gone.emplace_back(sid, std::move(*rec));
      return true;
    });
  }));
  CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
    for (const auto& [sid, rec] : gone) {
      CMG_ASSIGN_OR_RETURN(auto qi, get_json(t, state::kQueue, key_of({oc.name, sid})));
      if (qi && str(*qi, "reason") == "deleted_in_source" && str(*qi, "status") != "resolved") continue;
      std::string d = str(rec, "d");
      json::object extra;
      if (!d.empty()) extra["dest_id"] = d;
      CMG_RETURN_IF_ERROR(enqueue(t, oc.name, sid,
                                  {{Reason::kDeletedInSource, "", sid, "delta",
                                    "deleted in the source after it was extracted" +
                                        (d.empty() ? std::string() : "; destination record " + d + " is kept"),
                                    "skip it to accept the deletion, or delete the destination record by hand"}},
                                  "delta", std::move(extra), &ctx));
    }
    // The cursor only moves forward, and only once everything above is committed.
    return put_json(t, state::kCursors, oc.name,
                    json::object{{"updated_at", max_at}, {"id", max_id}, {"at", format_timestamp_ms(state::now_ms())},
                                 {"new", fresh}, {"changed", changed},
                                 {"deleted", static_cast<std::int64_t>(gone.size())}});
  }));
  return StepResult::kContinue;
}

}  // namespace cmg
