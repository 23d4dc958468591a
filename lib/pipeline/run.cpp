// run and reprocess: extract → map → dedup → validate, then write (write.cpp); resumable at every step.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "crmmigrate/core/dedup.hpp"
#include "crmmigrate/core/merge.hpp"
#include "crmmigrate/core/problem.hpp"
#include "crmmigrate/core/time.hpp"
#include "crmmigrate/core/validate.hpp"
#include "crash_point.hpp"
#include "pipeline_internal.hpp"
#include "state_internal.hpp"

namespace cmg {

namespace json = boost::json;
using state::get_json;
using state::put_json;
using state::from_array;
using state::idempotency_key;
using state::status_of;
using state::str;
using state::to_array;
using store::key_of;
using store::Txn;

namespace {

constexpr std::size_t kExtractBatch = 1000;
constexpr std::size_t kPlanBatch = 2000;


Record fold(const std::vector<Record>& members) {
  std::vector<const Record*> ptrs;
  for (const auto& m : members) ptrs.push_back(&m);
  return fold_group(ptrs);
}

}  // namespace

void Migration::Impl::raise_alert(RunCtx* ctx, const Alert& a) {
  if (ctx) ctx->alerts.push_back(a.kind + ": " + a.message);
  if (alert_cb) alert_cb(a);
  if (!cfg.alert_command.empty()) {
    // The command gets the alert in its environment (CMG_ALERT_KIND, _OBJECT, _MESSAGE); nothing from
    // CRM data is ever interpolated into the command line itself.
    setenv("CMG_ALERT_KIND", a.kind.c_str(), 1);
    setenv("CMG_ALERT_OBJECT", a.object.c_str(), 1);
    setenv("CMG_ALERT_MESSAGE", a.message.c_str(), 1);
    int rc = std::system(cfg.alert_command.c_str());
    (void)rc;
  }
  Status st = env->write([&](Txn& t) {
    return state::append_audit(t, json::object{{"action", "alert"}, {"kind", a.kind}, {"object", a.object},
                                               {"message", a.message}});
  });
  (void)st;
}

Status Migration::Impl::set_run_state(const std::string& s, const std::string& reason) {
  return env->write([&](Txn& t) {
    return put_json(t, state::kMeta, "state",
                    json::object{{"state", s}, {"reason", reason}, {"since", format_timestamp_ms(state::now_ms())}});
  });
}

Status Migration::Impl::record_config_version(std::int64_t* version) {
  return env->write([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto cur, get_json(t, state::kMeta, "config"));
    std::int64_t v = cur ? cur->at("version").to_number<std::int64_t>() : 0;
    if (!cur || str(*cur, "hash") != cfg.hash) {
      ++v;
      CMG_RETURN_IF_ERROR(t.put(state::kMeta, "config:" + std::to_string(v), cfg.raw_json));
      CMG_RETURN_IF_ERROR(put_json(t, state::kMeta, "config",
                                   json::object{{"version", v}, {"hash", cfg.hash},
                                                {"at", format_timestamp_ms(state::now_ms())}}));
      CMG_RETURN_IF_ERROR(state::append_audit(
          t, json::object{{"action", "config_version"}, {"version", v}, {"hash", cfg.hash}}));
    }
    *version = v;
    return Status::ok();
  });
}

std::vector<std::vector<std::string>> Migration::Impl::dedup_keys(const ObjectConfig& oc, const json::object& fields,
                                                                  const std::string& external_id) const {
  std::vector<std::vector<std::string>> out(oc.dedup.size());
  for (std::size_t i = 0; i < oc.dedup.size(); ++i) {
    const auto& k = oc.dedup[i];
    if (k.kind == DedupKeyKind::kExternalId) {
      if (!external_id.empty()) out[i].push_back(external_id);
      continue;
    }
    const auto* v = fields.if_contains(k.field);
    if (!v || value_is_blank(*v)) continue;
    std::vector<std::string> raw;
    if (const auto* a = v->if_array()) {
      for (const auto& e : *a) raw.push_back(value_to_text(e));
    } else {
      raw.push_back(value_to_text(*v));
    }
    auto custom = normalizers.find({oc.name, k.name});
    for (const auto& r : raw) {
      std::optional<std::string> n;
      if (custom != normalizers.end()) {
        n = custom->second->normalize(r);
        if (n && !n->empty() && std::find(out[i].begin(), out[i].end(), *n) == out[i].end()) out[i].push_back(*n);
        continue;
      }
      switch (k.kind) {
        case DedupKeyKind::kEmail: n = normalize_email(r); break;
        case DedupKeyKind::kPhone: n = phones->to_e164(r); break;
        case DedupKeyKind::kText: n = normalize_text(r); break;
        case DedupKeyKind::kExact: n = r; break;
        case DedupKeyKind::kExternalId: break;
      }
      if (n && !n->empty() && std::find(out[i].begin(), out[i].end(), *n) == out[i].end()) out[i].push_back(*n);
    }
  }
  return out;
}

ParentState Migration::Impl::parent_state(Txn& t, const std::string& object, const std::string& source_id) {
  ParentState ps;
  auto rec = get_json(t, state::kRecords, key_of({object, source_id}));
  if (!rec.is_ok() || !*rec) {
    ps.kind = ParentState::Kind::kAbsent;
    return ps;
  }
  const auto& r = **rec;
  std::string s = status_of(r);
  std::string d = str(r, "d");
  if ((s == "written" || s == "merged" || (s == "skipped" && !d.empty()))) {
    ps.kind = ParentState::Kind::kConfirmed;
    ps.destination_id = d;
  } else if (s == "queued" || s == "skipped") {
    ps.kind = ParentState::Kind::kQueued;
  } else {
    ps.kind = ParentState::Kind::kPending;
  }
  return ps;
}

// ---- extract ----

Result<StepResult> Migration::Impl::extract(const ObjectConfig& oc, RunCtx& ctx) {
  std::string meta_key = "extract:" + oc.name;
  json::object info;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto m, get_json(t, state::kMeta, meta_key));
    if (m) info = *m;
    return Status::ok();
  }));
  auto flag = [&](const char* k) {
    const auto* v = info.if_contains(k);
    return v && v->is_bool() && v->get_bool();
  };
  if (!flag("read")) {
    CMG_ASSIGN_OR_RETURN(std::int64_t reported, source->count(oc.source));
    info["reported"] = reported;
    // The delta pass starts from here (minus its lookback): changes made after this may be missed.
    if (!info.contains("started_at")) info["started_at"] = state::now_ms();
    ReadOptions ro;
    ro.batch_size = kExtractBatch;
    CMG_ASSIGN_OR_RETURN(auto reader, source->read(oc.source, ro));
    RecordBatch batch;
    std::int64_t done = 0;
    for (;;) {
      CMG_ASSIGN_OR_RETURN(bool more, reader->next(batch));
      if (!more) break;
      CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
        for (const auto& r : batch) {
          std::string k = key_of({oc.name, r.id});
          CMG_ASSIGN_OR_RETURN(bool fresh, t.put_if_absent(state::kRecords, k,
                                                          json::serialize(json::object{{"s", "extracted"}})));
          if (fresh) CMG_RETURN_IF_ERROR(put_json(t, state::kSrc, k, record_to_json(r)));
        }
        return Status::ok();
      }));
      done += static_cast<std::int64_t>(batch.size());
      if (ctx.opts->progress) ctx.opts->progress({oc.name, "extract", done, reported});
      if (ctx.opts->cancelled && ctx.opts->cancelled()) return StepResult::kCancelled;
    }
    std::int64_t read = 0;
    CMG_RETURN_IF_ERROR(env->read([&](Txn& t) {
      return t.scan(state::kRecords, key_of({oc.name, ""}), [&](std::string_view, std::string_view) {
        ++read;
        return true;
      });
    }));
    info["read"] = true;
    info["count"] = read;
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) { return put_json(t, state::kMeta, meta_key, info); }));
  }
  std::int64_t expected = oc.expected_count ? *oc.expected_count : info.at("reported").to_number<std::int64_t>();
  std::int64_t got = info.at("count").to_number<std::int64_t>();
  if (expected >= 0 && expected != got && !flag("accepted")) {
    if (ctx.opts->accept_counts) {
      info["accepted"] = true;
      info["accepted_by"] = ctx.opts->reviewer;
      CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
        CMG_RETURN_IF_ERROR(put_json(t, state::kMeta, meta_key, info));
        return state::append_audit(t, json::object{{"action", "counts_accepted"}, {"object", oc.name},
                                                   {"expected", expected}, {"read", got},
                                                   {"reviewer", ctx.opts->reviewer}});
      }));
    } else {
      std::string msg = oc.name + ": read " + std::to_string(got) + " records, expected " + std::to_string(expected) +
                        (oc.expected_count ? " (configured)" : " (reported by the source)") +
                        "; run --accept-counts --reviewer NAME to continue";
      raise_alert(&ctx, {"count_mismatch", oc.name, msg});
      CMG_RETURN_IF_ERROR(set_run_state("paused", msg));
      return StepResult::kPaused;
    }
  }
  return StepResult::kContinue;
}

// ---- destination index ----

Status Migration::Impl::index_destination(const ObjectConfig& oc) {
  if (oc.dedup_none) return Status::ok();
  // Rebuilt at each pass: the destination may have changed since the last one.
  CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
    std::vector<std::string> keys;
    for (auto db : {state::kDedup, state::kDestKeys}) {
      keys.clear();
      CMG_RETURN_IF_ERROR(t.scan(db, key_of({oc.name, ""}), [&](std::string_view k, std::string_view) {
        keys.emplace_back(k);
        return true;
      }));
      for (const auto& k : keys) CMG_RETURN_IF_ERROR(t.del(db, k).status());
    }
    return Status::ok();
  }));
  for (const auto& dobj : oc.destination_objects()) {
    const ObjectSchema* os = dst_schema->object(dobj);
    if (!os) return config_error("destination has no object '" + dobj + "' (object " + oc.name + ")");
    ReadOptions ro;
    ro.batch_size = 1000;
    CMG_ASSIGN_OR_RETURN(auto reader, dest->list(dobj, ro));
    CMG_RETURN_IF_ERROR(for_each_batch(*reader, [&](RecordBatch& batch) {
      return env->write([&](Txn& t) -> Status {
        for (const auto& r : batch) {
          std::string ext;
          if (!os->id_property.empty())
            if (const auto* v = r.fields.if_contains(os->id_property)) ext = value_to_text(*v);
          auto keys = dedup_keys(oc, r.fields, ext);
          json::array ka;
          for (std::size_t lvl = 0; lvl < keys.size(); ++lvl) {
            ka.push_back(to_array(keys[lvl]));
            for (const auto& v : keys[lvl])
              CMG_RETURN_IF_ERROR(t.put(state::kDedup, key_of({oc.name, std::to_string(lvl), v, r.id}), ""));
          }
          CMG_RETURN_IF_ERROR(put_json(t, state::kDestKeys, key_of({oc.name, r.id}),
                                       json::object{{"k", std::move(ka)}, {"o", dobj}, {"u", r.updated_at}}));
        }
        return Status::ok();
      });
    }));
  }
  return Status::ok();
}

// ---- plan (map → dedup → validate) ----

Status Migration::Impl::plan_object(const ObjectConfig& oc, RunCtx& ctx) {
  // Records to decide now: extracted and not yet planned.
  std::vector<std::string> ids;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) {
    return t.scan(state::kRecords, key_of({oc.name, ""}), [&](std::string_view k, std::string_view v) {
      // "mapped" records were left by a pass that stopped before dedup; they are decided again.
      if (v.find("\"s\":\"extracted\"") != std::string_view::npos || v.find("\"s\":\"mapped\"") != std::string_view::npos)
        ids.emplace_back(store::split_key(k)[1]);
      return true;
    });
  }));
  if (ids.empty()) return Status::ok();
  CMG_RETURN_IF_ERROR(index_destination(oc));

  const ObjectSchema* src_os = src_schema->object(oc.source);
  Mapper mapper(oc, *dst_schema, src_os, *owners);
  std::int64_t config_version = 0;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto c, get_json(t, state::kMeta, "config"));
    if (c) config_version = c->at("version").to_number<std::int64_t>();
    return Status::ok();
  }));

  std::vector<DedupKey> levels;
  for (const auto& k : oc.dedup) levels.push_back({k.name, k.kind != DedupKeyKind::kExternalId});
  Deduplicator dd(levels);
  std::unordered_set<std::string> dest_added;

  // Phase 1: map each record; problems go to the queue, the rest wait for dedup in `mapped`.
  for (std::size_t start = 0; start < ids.size(); start += kPlanBatch) {
    std::size_t end = std::min(ids.size(), start + kPlanBatch);
    // Env::write may run this body again (map growth): everything it produces outside the
    // transaction is collected here, reset at each attempt and applied only after the commit.
    struct PendingSource {
      std::string id;
      std::int64_t updated_at;
      std::vector<std::vector<std::string>> keys;
    };
    std::vector<PendingSource> sources;
    std::vector<std::pair<std::string, std::vector<std::vector<std::string>>>> dest_candidates;
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
      sources.clear();
      dest_candidates.clear();
      std::unordered_set<std::string> batch_dests;
      ParentLookup lookup = [&](const std::string& o, const std::string& sid) { return parent_state(t, o, sid); };
      for (std::size_t i = start; i < end; ++i) {
        const std::string& sid = ids[i];
        std::string k = key_of({oc.name, sid});
        CMG_ASSIGN_OR_RETURN(auto srcj, get_json(t, state::kSrc, k));
        Record src;
        if (!srcj || !record_from_json(*srcj, src)) return Status(Code::kStorage, "missing source copy of " + oc.name + "/" + sid);
        CMG_ASSIGN_OR_RETURN(auto qitem, get_json(t, state::kQueue, k));
        json::object corrections;
        if (qitem)
          if (const auto* c = qitem->if_contains("corrections"); c && c->is_object()) corrections = c->get_object();
        MappedRecord m = mapper.map(src, corrections, lookup);
        if (m.waits_for_parent) continue;  // stays extracted; planned once its parent is decided
        if (!m.problems.empty()) {
          json::object extra{{"config_version", config_version}};
          if (!m.queued_parents.empty()) {
            json::array ps;
            for (const auto& [po, pid] : m.queued_parents) ps.push_back(json::array{json::string(po), json::string(pid)});
            extra["parents"] = std::move(ps);
          }
          extra["translations"] = to_array(m.translations);
          extra["mapped"] = m.fields;
          CMG_RETURN_IF_ERROR(enqueue(t, oc.name, sid, m.problems, "map", std::move(extra), &ctx));
          continue;
        }
        auto keys = oc.dedup_none ? std::vector<std::vector<std::string>>{} : dedup_keys(oc, m.fields, sid);
        json::array ka;
        for (const auto& lvl : keys) ka.push_back(to_array(lvl));
        CMG_RETURN_IF_ERROR(put_json(
            t, state::kMapped, k,
            json::object{{"o", m.destination_object}, {"fields", m.fields}, {"translations", to_array(m.translations)},
                         {"defaults", to_array(m.defaults)}, {"dropped", to_array(m.dropped)}, {"k", std::move(ka)},
                         {"u", src.updated_at}, {"cv", config_version}}));
        CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k, json::object{{"s", "mapped"}}));
        if (!oc.dedup_none) {
          sources.push_back({sid, src.updated_at, keys});
          // Destination candidates sharing any key value (the veto needs all their key values).
          for (std::size_t lvl = 0; lvl < keys.size(); ++lvl) {
            for (const auto& v : keys[lvl]) {
              std::string prefix = key_of({oc.name, std::to_string(lvl), v, ""});
              CMG_RETURN_IF_ERROR(t.scan(state::kDedup, prefix, [&](std::string_view dk, std::string_view) {
                std::string did(store::split_key(dk)[3]);
                if (!dest_added.count(did) && batch_dests.insert(did).second)
                  dest_candidates.emplace_back(did, std::vector<std::vector<std::string>>{});
                return true;
              }));
            }
          }
        }
      }
      for (auto& [did, dkeys] : dest_candidates) {
        CMG_ASSIGN_OR_RETURN(auto dk, get_json(t, state::kDestKeys, key_of({oc.name, did})));
        if (!dk) continue;
        for (const auto& lvl : dk->at("k").get_array()) dkeys.push_back(from_array(&lvl));
      }
      return Status::ok();
    }));
    for (auto& s : sources) CMG_RETURN_IF_ERROR(dd.add_source(s.id, s.updated_at, s.keys));
    for (auto& [did, dkeys] : dest_candidates) {
      dest_added.insert(did);
      CMG_RETURN_IF_ERROR(dd.add_destination(did, dkeys));
    }
    if (ctx.opts->progress) ctx.opts->progress({oc.name, "map", static_cast<std::int64_t>(end), static_cast<std::int64_t>(ids.size())});
  }

  // Phase 2: groups → plans, a chunk of groups per transaction. Groups are streamed out of the
  // deduplicator so that only one chunk is held at a time.
  auto rule = merge_rule_for(oc, oc.skip_unchanged);
  std::int64_t planned_groups = 0;
  auto plan_chunk = [&](const std::vector<DedupGroup>& groups) -> Status {
    const std::size_t start = 0, end = groups.size();
    // Destination records of the matched groups, read in one go per batch.
    std::map<std::string, std::vector<std::string>> to_read;  // destination object → ids
    std::map<std::string, std::string> dest_object_of;
    CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
      for (std::size_t gi = start; gi < end; ++gi) {
        const auto& g = groups[gi];
        if (g.decision != DestinationDecision::kMatch || g.kind == GroupKind::kAmbiguous) continue;
        CMG_ASSIGN_OR_RETURN(auto dk, get_json(t, state::kDestKeys, key_of({oc.name, g.destination_ids[0]})));
        std::string dobj = dk ? str(*dk, "o") : oc.destination;
        to_read[dobj].push_back(g.destination_ids[0]);
        dest_object_of[g.destination_ids[0]] = dobj;
      }
      return Status::ok();
    }));
    std::map<std::string, Record> dest_records;
    for (auto& [dobj, dids] : to_read) {
      for (std::size_t i = 0; i < dids.size(); i += 100) {
        std::vector<std::string> chunk(dids.begin() + static_cast<std::ptrdiff_t>(i),
                                       dids.begin() + static_cast<std::ptrdiff_t>(std::min(dids.size(), i + 100)));
        CMG_ASSIGN_OR_RETURN(auto recs, dest->read(dobj, chunk));
        for (std::size_t j = 0; j < chunk.size(); ++j)
          if (recs[j]) dest_records[chunk[j]] = std::move(*recs[j]);
      }
    }
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
      for (std::size_t gi = start; gi < end; ++gi) {
        const auto& g = groups[gi];
        std::vector<Record> members;
        std::vector<json::object> mapped;
        std::string dobj;
        for (const auto& mem : g.members) {
          CMG_ASSIGN_OR_RETURN(auto mj, get_json(t, state::kMapped, key_of({oc.name, mem.id})));
          if (!mj) return Status(Code::kStorage, "missing mapped copy of " + oc.name + "/" + mem.id);
          Record r;
          r.object = str(*mj, "o");
          r.id = mem.id;
          r.fields = mj->at("fields").get_object();
          r.updated_at = mj->at("u").to_number<std::int64_t>();
          if (dobj.empty()) dobj = r.object;
          members.push_back(std::move(r));
          mapped.push_back(std::move(*mj));
        }
        const std::string primary = g.members.front().id;
        json::array member_ids;
        for (const auto& mem : g.members) member_ids.push_back(json::string(mem.id));
        auto queue_all = [&](const std::vector<Problem>& ps, const std::string& stage, json::object extra) -> Status {
          for (const auto& mem : g.members) {
            extra["group"] = member_ids;
            CMG_RETURN_IF_ERROR(enqueue(t, oc.name, mem.id, ps, stage, extra, &ctx));
          }
          return Status::ok();
        };
        if (g.kind == GroupKind::kAmbiguous || g.decision == DestinationDecision::kAmbiguous) {
          std::string key = g.kind == GroupKind::kAmbiguous ? g.link_key : g.match_key;
          std::vector<std::string> cands = g.kind == GroupKind::kAmbiguous ? g.ambiguous_with : g.destination_ids;
          std::string list;
          for (const auto& c : cands) list += (list.empty() ? "" : ", ") + c;
          Problem p{Reason::kAmbiguousMatch, key, list, "dedup:" + key,
                    "matches several records on " + key + " (" + list + "): " + g.detail, ""};
          CMG_RETURN_IF_ERROR(queue_all({p}, "dedup", json::object{{"candidates", to_array(cands)}}));
          continue;
        }
        Record folded = fold(members);
        json::object plan{{"members", member_ids}, {"o", dobj}, {"key", g.match_key.empty() ? g.link_key : g.match_key}};
        plan["translations"] = mapped.front().at("translations");
        plan["defaults"] = mapped.front().at("defaults");
        plan["dropped"] = mapped.front().at("dropped");
        json::object linked;
        for (const auto& mem : g.members)
          if (!mem.linked_by.empty()) linked[mem.id] = mem.linked_by;
        if (!linked.empty()) plan["linked_by"] = std::move(linked);
        const ObjectSchema* os = dst_schema->object(dobj);
        if (!os) return config_error("destination has no object '" + dobj + "'");
        if (g.decision == DestinationDecision::kMatch) {
          const std::string& did = g.destination_ids[0];
          auto it = dest_records.find(did);
          if (it == dest_records.end()) {
            Problem p{Reason::kRejectedByDestination, "", did, "dedup:" + g.match_key,
                      "matched destination record " + did + " could not be read back", ""};
            CMG_RETURN_IF_ERROR(queue_all({p}, "dedup", {}));
            continue;
          }
          MergeOutcome mo;
          Status ms = rule->merge({folded, it->second}, &mo);
          if (!ms.is_ok()) return Status(Code::kPlugin, "merge rule '" + rule->name() + "' failed on " + oc.name + "/" +
                                                           primary + ": " + ms.message());
          plan["rule"] = merge_rules.count(oc.name) ? rule->name() : std::string(merge_strategy_name(oc.merge_default));
          plan["rules_applied"] = to_array(mo.rules_applied);
          plan["dest_id"] = did;
          if (mo.kind == MergeOutcome::Kind::kConflict) {
            std::vector<Problem> ps;
            json::object dvals;
            for (const auto& c : mo.conflicts) {
              ps.push_back({Reason::kMergeConflict, c.field, value_to_text(c.source_value), "merge",
                            "source '" + value_to_text(c.source_value) + "' vs destination '" +
                                value_to_text(c.destination_value) + "'",
                            ""});
              dvals[c.field] = c.destination_value;
            }
            CMG_RETURN_IF_ERROR(queue_all(ps, "dedup", json::object{{"destination", std::move(dvals)}, {"dest_id", did}}));
            continue;
          }
          if (mo.kind == MergeOutcome::Kind::kSkip) {
            plan["action"] = "skip";
            plan["reason"] = mo.reason;
          } else {
            std::vector<Problem> ps;
            validate(oc, *os, mo.changes, false, ps);
            if (!ps.empty()) {
              CMG_RETURN_IF_ERROR(queue_all(ps, "validate", {}));
              continue;
            }
            plan["action"] = mo.changes.empty() ? "none" : "update";
            plan["fields"] = mo.changes;
            // Pre-image of what we change, for undo.
            json::object before;
            for (const auto& [f, v] : mo.changes) {
              const auto* old = it->second.fields.if_contains(f);
              before[f] = old ? *old : json::value(nullptr);
            }
            CMG_RETURN_IF_ERROR(put_json(t, state::kPreimages, key_of({dobj, did, primary}), before));
          }
        } else {
          std::vector<Problem> ps;
          validate(oc, *os, folded.fields, true, ps);
          if (!ps.empty()) {
            CMG_RETURN_IF_ERROR(queue_all(ps, "validate", json::object{{"mapped", folded.fields}}));
            continue;
          }
          if (!os->id_property.empty()) folded.fields[os->id_property] = idempotency_key(primary);
          plan["action"] = "create";
          plan["fields"] = folded.fields;
          plan["idempotency_key"] = idempotency_key(primary);
          plan["rule"] = "fold";
        }
        CMG_RETURN_IF_ERROR(put_json(t, state::kPlans, key_of({oc.name, primary}), plan));
        for (const auto& mem : g.members) {
          json::object rec{{"s", "planned"}, {"p", primary}};
          CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, key_of({oc.name, mem.id}), rec));
        }
      }
      return Status::ok();
    }));
    planned_groups += static_cast<std::int64_t>(groups.size());
    if (ctx.opts->progress) ctx.opts->progress({oc.name, "dedup", planned_groups, -1});
    return Status::ok();
  };

  std::vector<DedupGroup> chunk;
  if (oc.dedup_none) {
    std::vector<std::string> mapped_ids;
    CMG_RETURN_IF_ERROR(env->read([&](Txn& t) {
      return t.scan(state::kRecords, key_of({oc.name, ""}), [&](std::string_view k, std::string_view v) {
        if (v.find("\"s\":\"mapped\"") != std::string_view::npos) mapped_ids.emplace_back(store::split_key(k)[1]);
        return true;
      });
    }));
    for (auto& id : mapped_ids) {
      DedupGroup g;
      g.members.push_back({std::move(id), 0, ""});
      chunk.push_back(std::move(g));
      if (chunk.size() >= kPlanBatch) {
        CMG_RETURN_IF_ERROR(plan_chunk(chunk));
        chunk.clear();
      }
    }
  } else {
    CMG_RETURN_IF_ERROR(dd.resolve([&](const DedupGroup& g) -> Status {
      chunk.push_back(g);
      if (chunk.size() < kPlanBatch) return Status::ok();
      Status st = plan_chunk(chunk);
      chunk.clear();
      return st;
    }));
  }
  if (!chunk.empty()) CMG_RETURN_IF_ERROR(plan_chunk(chunk));
  return Status::ok();
}

// ---- reprocess ----

Status Migration::Impl::release_for_reprocess(const ObjectConfig& oc, RunCtx& ctx) {
  (void)ctx;
  std::int64_t current = 0;
  return env->write([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto c, get_json(t, state::kMeta, "config"));
    if (c) current = c->at("version").to_number<std::int64_t>();
    std::vector<std::pair<std::string, json::object>> release;
    CMG_RETURN_IF_ERROR(t.scan(state::kQueue, key_of({oc.name, ""}), [&](std::string_view k, std::string_view v) {
      auto item = state::parse_object(v);
      if (!item) return true;
      std::string s = str(*item, "status");
      bool go = s == "fixed";
      if (s == "open") {
        const auto* cv = item->if_contains("config_version");
        if (cv && cv->to_number<std::int64_t>() < current) go = true;
        if (str(*item, "reason") == "parent_queued") {
          bool all_confirmed = true;
          if (const auto* ps = item->if_contains("parents"); ps && ps->is_array()) {
            for (const auto& p : ps->get_array()) {
              const auto& pa = p.get_array();
              ParentState st = parent_state(t, std::string(pa[0].get_string()), std::string(pa[1].get_string()));
              all_confirmed = all_confirmed && st.kind == ParentState::Kind::kConfirmed;
            }
          }
          go = go || all_confirmed;
        }
      }
      if (go) release.emplace_back(std::string(k), std::move(*item));
      return true;
    }));
    for (auto& [k, item] : release) {
      CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k, json::object{{"s", "extracted"}}));
      item["reprocessing"] = true;
      CMG_RETURN_IF_ERROR(put_json(t, state::kQueue, k, item));
    }
    return Status::ok();
  });
}

// ---- run ----

Result<Report> Migration::Impl::run(const RunOptions& opts, bool reprocess, bool delta) {
  if ((opts.accept_counts || opts.ack_halt) && opts.reviewer.empty())
    return invalid_argument("--accept-counts and --ack-halt need --reviewer NAME (it is recorded in the audit log)");
  if (!opts.only_object.empty() && !cfg.object(opts.only_object))
    return invalid_argument("--object: no object named '" + opts.only_object + "' in the config");
  CMG_ASSIGN_OR_RETURN(auto lock, store::RunLock::acquire(cfg.state_dir));
  CMG_RETURN_IF_ERROR(load_schemas());
  // A dry run decides everything in a scratch state, so the real state is never touched by it.
  std::unique_ptr<store::Env> real_env;
  struct Restore {
    std::unique_ptr<store::Env>& env;
    std::unique_ptr<store::Env>& saved;
    ~Restore() {
      if (saved) env = std::move(saved);
    }
  } restore{env, real_env};
  if (opts.dry_run) {
    std::string scratch = cfg.state_dir + "/dry-run";
    std::error_code ec;
    std::filesystem::remove_all(scratch, ec);
    store::EnvOptions eo;
    eo.no_sync = true;
    eo.initial_map_size = map_size;
    CMG_ASSIGN_OR_RETURN(auto scratch_env, store::Env::open(scratch, eo));
    real_env = std::move(env);
    env = std::move(scratch_env);
  }
  std::int64_t version = 0;
  CMG_RETURN_IF_ERROR(record_config_version(&version));

  if (!opts.dry_run) {
    std::string have;
    CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
      CMG_ASSIGN_OR_RETURN(auto s, get_json(t, state::kMeta, "signoff"));
      if (s) have = str(*s, "hash");
      return Status::ok();
    }));
    if (have != signoff_hash())
      return invalid_argument(have.empty() ? "run refused: the plan has not been signed off; review `crmmigrate plan` and "
                                             "approve it with `plan --approve --reviewer NAME`"
                                           : "run refused: the config or a schema changed since the plan was signed off; "
                                             "review `crmmigrate plan` and approve it again");
  }
  auto gaps = blocking_gaps(nullptr);
  if (!gaps.empty()) {
    std::string msg = "run refused: the plan has blocking gaps:";
    for (const auto& g : gaps) msg += "\n  - " + g;
    return invalid_argument(msg);
  }

  RunCtx ctx;
  ctx.opts = &opts;
  ctx.reprocess = reprocess;
  ctx.run_id = format_timestamp_ms(state::now_ms());

  json::object st;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto s, get_json(t, state::kMeta, "state"));
    if (s) st = *s;
    return Status::ok();
  }));
  std::string prev = str(st, "state");
  if (prev == "halted") {
    if (!opts.ack_halt) {
      Report r;
      CMG_ASSIGN_OR_RETURN(r, report("halted"));
      r.message = str(st, "reason");
      return r;
    }
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) {
      return state::append_audit(t, json::object{{"action", "halt_acknowledged"}, {"reviewer", opts.reviewer}});
    }));
  }
  CMG_RETURN_IF_ERROR(set_run_state("running", reprocess ? "reprocess" : delta ? "delta" : "run"));
  CMG_RETURN_IF_ERROR(env->write([&](Txn& t) {
    return state::append_audit(t, json::object{{"action", reprocess ? "reprocess_started" : delta ? "delta_started" : "run_started"},
                                               {"run", ctx.run_id}, {"config_version", version},
                                               {"dry_run", opts.dry_run}});
  }));
  CMG_RETURN_IF_ERROR(resolve_intents(ctx));

  StepResult stop = StepResult::kContinue;
  for (const auto& oc : cfg.objects) {
    if (!opts.only_object.empty() && oc.name != opts.only_object) continue;
    CMG_ASSIGN_OR_RETURN(stop, extract(oc, ctx));
    if (stop != StepResult::kContinue) break;
    if (delta) {
      CMG_ASSIGN_OR_RETURN(stop, delta_object(oc, ctx));
      if (stop != StepResult::kContinue) break;
    }
    if (reprocess) CMG_RETURN_IF_ERROR(release_for_reprocess(oc, ctx));
    CMG_RETURN_IF_ERROR(plan_object(oc, ctx));
    if (opts.dry_run) continue;
    CMG_ASSIGN_OR_RETURN(stop, write_object(oc, ctx));
    if (stop != StepResult::kContinue) break;
  }

  std::string forced;
  if (stop == StepResult::kPaused) forced = "paused";
  else if (stop == StepResult::kHalted) forced = "halted";
  if (forced.empty()) {
    CMG_ASSIGN_OR_RETURN(Report r, report("incomplete"));
    std::string final_state = r.complete ? "complete" : "incomplete";
    CMG_RETURN_IF_ERROR(set_run_state(final_state, ""));
  }
  CMG_ASSIGN_OR_RETURN(Report r, report(forced));
  r.alerts = ctx.alerts;
  if (stop == StepResult::kLimit) r.message = "stopped after --limit " + std::to_string(*opts.limit) + " records";
  if (stop == StepResult::kCancelled) r.message = "stopped cleanly on request; run again to resume";
  if (stop == StepResult::kPaused || stop == StepResult::kHalted) r.message = ctx.alerts.empty() ? "" : ctx.alerts.back();
  CMG_RETURN_IF_ERROR(env->write([&](Txn& t) {
    return state::append_audit(t, json::object{{"action", reprocess ? "reprocess_finished" : delta ? "delta_finished" : "run_finished"},
                                               {"run", ctx.run_id}, {"state", r.state}});
  }));
  return r;
}

}  // namespace cmg
