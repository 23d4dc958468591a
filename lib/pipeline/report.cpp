// status and reconcile: the accounting equation per object and read-back of confirmed records.
#include <cmath>
#include <map>
#include <set>

#include "crmmigrate/core/time.hpp"
#include "pipeline_internal.hpp"
#include "state_internal.hpp"

namespace cmg {

namespace json = boost::json;
using state::get_json;
using state::str;
using store::key_of;
using store::Txn;

// Values equal as a destination would store them: text compare, numbers numerically, timestamps
// by instant (a platform may echo "2024-05-01T10:00:00Z" as "2024-05-01T10:00:00.000Z").
bool state::same_stored_value(const json::value& sent, const json::value* got) {
  if (!got) return value_is_blank(sent);
  std::string a = value_to_text(sent), b = value_to_text(*got);
  if (a == b) return true;
  char* ea = nullptr;
  char* eb = nullptr;
  double da = std::strtod(a.c_str(), &ea), db = std::strtod(b.c_str(), &eb);
  if (!a.empty() && !b.empty() && *ea == '\0' && *eb == '\0') return std::fabs(da - db) < 1e-9 * std::max(1.0, std::fabs(da));
  auto ta = parse_timestamp_ms(a), tb = parse_timestamp_ms(b);
  if (ta && tb) return *ta == *tb;
  // Emails are case-insensitive at the platforms we target.
  if (a.find('@') != std::string::npos && a.size() == b.size()) {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
  }
  return false;
}

Result<Report> Migration::Impl::report(const std::string& forced_state) {
  Report r;
  json::object st;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
    for (const auto& oc : cfg.objects) {
      ObjectCounts c;
      CMG_RETURN_IF_ERROR(t.scan(state::kRecords, key_of({oc.name, ""}), [&](std::string_view, std::string_view v) {
        ++c.source;
        // Values are small JSON objects whose first member is the status, read without a parse.
        constexpr std::string_view kLead = R"({"s":")";
        std::string_view s;
        std::string parsed;  // any other layout
        if (v.compare(0, kLead.size(), kLead) == 0) {
          std::size_t end = v.find('"', kLead.size());
          if (end != std::string_view::npos) s = v.substr(kLead.size(), end - kLead.size());
        } else if (auto rec = state::parse_object(v)) {
          parsed = state::status_of(*rec);
          s = parsed;
        }
        if (s == "written") ++c.written;
        else if (s == "merged") ++c.merged;
        else if (s == "queued") ++c.queued;
        else if (s == "skipped") ++c.skipped;
        else ++c.pending;
        return true;
      }));
      // An object never extracted yet still shows what the source holds, as pending.
      if (c.source == 0) {
        CMG_ASSIGN_OR_RETURN(auto info, get_json(t, state::kMeta, "extract:" + oc.name));
        (void)info;
      }
      r.objects.emplace_back(oc.name, c);
    }
    CMG_RETURN_IF_ERROR(t.scan(state::kQueue, "", [&](std::string_view, std::string_view v) {
      // Parsed, not searched: an item embeds source values that may themselves say "status".
      auto item = state::parse_object(v);
      std::string s = item ? str(*item, "status") : std::string();
      if (s == "open" || s == "fixed") ++r.queue_open;
      return true;
    }));
    CMG_ASSIGN_OR_RETURN(auto s, get_json(t, state::kMeta, "state"));
    if (s) st = *s;
    return Status::ok();
  }));
  bool any_pending = false, any_extracted = false;
  for (const auto& [n, c] : r.objects) {
    any_pending = any_pending || c.pending > 0;
    any_extracted = any_extracted || c.source > 0;
  }
  std::string stored = str(st, "state");
  if (!forced_state.empty()) {
    r.state = forced_state;
  } else if (stored == "halted" || stored == "paused") {
    r.state = stored;
    r.message = str(st, "reason");
  } else if (stored == "running") {
    // "running" is only true while someone holds the run lock; otherwise that run died.
    auto probe = store::RunLock::acquire(cfg.state_dir);
    r.state = probe.is_ok() ? "incomplete" : "running";
    if (probe.is_ok()) r.message = "the last run stopped before finishing; run again to resume";
  } else {
    r.state = (any_extracted && !any_pending && r.queue_open == 0) ? "complete" : "incomplete";
  }
  if (r.state == "complete" && (any_pending || r.queue_open > 0 || !any_extracted)) r.state = "incomplete";
  r.complete = r.state == "complete";
  return r;
}

Result<Report> Migration::Impl::reconcile(const RunOptions& opts) {
  CMG_RETURN_IF_ERROR(load_schemas());
  CMG_ASSIGN_OR_RETURN(Report r, report(""));
  std::vector<json::object> discrepancies;
  for (const auto& oc : cfg.objects) {
    // Every confirmed group primary that was sent: compare what we sent with what is there now.
    std::map<std::string, std::vector<std::pair<std::string, json::object>>> by_dest;  // dest object → (sid, plan)
    std::set<std::string> ours;  // idempotency keys we confirmed, per destination object
    CMG_RETURN_IF_ERROR(env->read([&](Txn& t) {
      return t.scan(state::kPlans, key_of({oc.name, ""}), [&](std::string_view k, std::string_view v) {
        auto plan = state::parse_object(v);
        if (!plan) return true;
        const auto* done = plan->if_contains("done");
        if (!done || !done->is_bool() || !done->get_bool()) return true;
        std::string sid(store::split_key(k)[1]);
        if (!str(*plan, "idempotency_key").empty()) ours.insert(str(*plan, "o") + "\x1f" + str(*plan, "idempotency_key"));
        by_dest[str(*plan, "o")].emplace_back(sid, std::move(*plan));
        return true;
      });
    }));
    std::int64_t checked = 0, total = 0;
    for (auto& [dobj, v] : by_dest) total += static_cast<std::int64_t>(v.size());
    for (auto& [dobj, items] : by_dest) {
      for (std::size_t i = 0; i < items.size(); i += 100) {
        std::vector<std::string> ids;
        for (std::size_t j = i; j < std::min(items.size(), i + 100); ++j) ids.push_back(str(items[j].second, "dest_id"));
        CMG_ASSIGN_OR_RETURN(auto got, dest->read(dobj, ids));
        for (std::size_t j = 0; j < ids.size(); ++j) {
          const auto& [sid, plan] = items[i + j];
          if (j >= got.size() || !got[j]) {
            discrepancies.push_back(json::object{{"object", oc.name}, {"source_id", sid}, {"destination_id", ids[j]},
                                                 {"kind", "missing"}, {"message", "confirmed record is not in the destination"}});
            continue;
          }
          json::array diffs;
          for (const auto& [f, sent] : plan.at("fields").get_object()) {
            const json::value* now = got[j]->fields.if_contains(f);
            if (!state::same_stored_value(sent, now))
              diffs.push_back(json::object{{"field", f}, {"sent", sent}, {"found", now ? *now : json::value(nullptr)}});
          }
          if (!diffs.empty())
            discrepancies.push_back(json::object{{"object", oc.name}, {"source_id", sid}, {"destination_id", ids[j]},
                                                 {"kind", "field_differs"}, {"fields", std::move(diffs)}});
        }
        checked += static_cast<std::int64_t>(ids.size());
        if (opts.progress) opts.progress({oc.name, "reconcile", checked, total});
      }
    }
    // Records in the destination that carry one of our idempotency keys but are not ours, or twice:
    // a duplicate or a write we never confirmed.
    for (const auto& dobj : oc.destination_objects()) {
      const ObjectSchema* os = dst_schema->object(dobj);
      if (!os || os->id_property.empty()) continue;
      std::map<std::string, std::vector<std::string>> seen;
      ReadOptions ro;
      ro.batch_size = 1000;
      CMG_ASSIGN_OR_RETURN(auto reader, dest->list(dobj, ro));
      CMG_RETURN_IF_ERROR(for_each_batch(*reader, [&](RecordBatch& batch) {
        for (const auto& rec : batch) {
          const auto* k = rec.fields.if_contains(os->id_property);
          if (!k || value_is_blank(*k)) continue;
          seen[value_to_text(*k)].push_back(rec.id);
        }
        return Status::ok();
      }));
      for (const auto& [seen_key, ids] : seen) {
        const std::string& key = seen_key;  // captured below: structured bindings cannot be in C++17
        bool mine = ours.count(dobj + "\x1f" + key) > 0;
        // Keys of other objects' records can share a destination object only with routing; check our records db.
        if (!mine) {
          bool known = false;
          CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
            CMG_ASSIGN_OR_RETURN(auto rec, get_json(t, state::kRecords, key_of({oc.name, key})));
            known = rec.has_value();
            return Status::ok();
          }));
          if (!known) continue;  // not written by this migration (another tool's key space)
          discrepancies.push_back(json::object{{"object", oc.name}, {"source_id", key}, {"destination_object", dobj},
                                               {"kind", "unaccounted"},
                                               {"message", "destination holds a record with our key that the state did not confirm"}});
        }
        if (ids.size() > 1) {
          json::array a;
          for (const auto& id : ids) a.push_back(json::string(id));
          discrepancies.push_back(json::object{{"object", oc.name}, {"source_id", key}, {"destination_object", dobj},
                                               {"kind", "duplicate"}, {"destination_ids", std::move(a)}});
        }
      }
    }
  }
  r.readback_mismatches = static_cast<std::int64_t>(discrepancies.size());
  r.discrepancies = std::move(discrepancies);
  bool equation = true;
  for (const auto& [n, c] : r.objects)
    equation = equation && c.pending == 0 && c.source == c.written + c.merged + c.queued + c.skipped;
  bool any = false;
  for (const auto& [n, c] : r.objects) any = any || c.source > 0;
  r.complete = any && equation && r.queue_open == 0 && r.readback_mismatches == 0 &&
               (r.state == "complete" || r.state == "incomplete");
  if (r.state != "halted" && r.state != "paused" && r.state != "running") r.state = r.complete ? "complete" : "incomplete";
  if (!r.complete && r.message.empty()) {
    if (!equation) r.message = "records are still pending";
    else if (r.queue_open) r.message = std::to_string(r.queue_open) + " queue item(s) are open";
    else if (r.readback_mismatches) r.message = std::to_string(r.readback_mismatches) + " read-back discrepancy(ies)";
  }
  CMG_RETURN_IF_ERROR(env->write([&](Txn& t) {
    return state::append_audit(t, json::object{{"action", "reconciled"}, {"complete", r.complete},
                                               {"readback_mismatches", r.readback_mismatches},
                                               {"queue_open", r.queue_open}});
  }));
  return r;
}

}  // namespace cmg
