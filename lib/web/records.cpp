#include "records.hpp"

#include <algorithm>
#include <cstring>
#include <set>

#include "crmmigrate/core/normalize.hpp"
#include "crmmigrate/core/record.hpp"
#include "pipeline/state_internal.hpp"

namespace cmg::web {

namespace json = boost::json;
using state::get_json;
using state::str;
using store::key_of;
using store::Txn;

namespace {

std::string text_of(const json::object& fields, std::string_view key) {
  const auto* v = fields.if_contains(key);
  if (!v || value_is_blank(*v)) return {};
  if (const auto* a = v->if_array()) {
    // Multi-value fields (emails, phones): the first entry, or its "value".
    if (a->empty()) return {};
    const auto& first = (*a)[0];
    if (const auto* o = first.if_object()) {
      const auto* val = o->if_contains("value");
      return val ? value_to_text(*val) : std::string();
    }
    return value_to_text(first);
  }
  return value_to_text(*v);
}

std::string truncate_utf8(std::string s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a code point
  s.resize(cut);
  return s + "…";
}

}  // namespace

std::string record_label(const json::object& fields) {
  for (const char* k : {"name", "title", "subject", "dealname"}) {
    std::string s = text_of(fields, k);
    if (!s.empty()) return truncate_utf8(std::move(s), 80);
  }
  std::string person = text_of(fields, "first_name");
  std::string last = text_of(fields, "last_name");
  if (!last.empty()) person += (person.empty() ? "" : " ") + last;
  if (!person.empty()) return truncate_utf8(std::move(person), 80);
  for (const char* k : {"email", "content", "note"}) {
    std::string s = text_of(fields, k);
    if (!s.empty()) return truncate_utf8(std::move(s), 80);
  }
  return {};
}

std::string outcome_of(const std::string& s) {
  if (s == "written" || s == "merged" || s == "queued" || s == "skipped") return s;
  return "pending";
}

namespace {

// Outcome, destination id and label of one record, read in `t`.
Result<json::object> summary(Txn& t, const std::string& object, const std::string& sid) {
  std::string k = key_of({object, sid});
  CMG_ASSIGN_OR_RETURN(auto rec, get_json(t, state::kRecords, k));
  CMG_ASSIGN_OR_RETURN(auto src, get_json(t, state::kSrc, k));
  json::object out{{"object", object}, {"source_id", sid}};
  out["outcome"] = outcome_of(rec ? str(*rec, "s") : std::string());
  std::string did = rec ? str(*rec, "d") : std::string();
  if (did.empty()) {
    CMG_ASSIGN_OR_RETURN(auto v, t.get(state::kIdmap, k));
    if (v) did = std::string(*v);
  }
  out["destination_id"] = did.empty() ? json::value(nullptr) : json::value(did);
  const json::object* fields = nullptr;
  if (src)
    if (const auto* f = src->if_contains("fields"); f && f->is_object()) fields = &f->get_object();
  out["label"] = fields ? record_label(*fields) : std::string();
  return out;
}

}  // namespace

Result<json::object> record_timeline(const store::Env& env, const MigrationConfig& cfg, const std::string& object,
                                     const std::string& sid) {
  if (!cfg.object(object)) return not_found("no object named '" + object + "' in the config");
  json::object out;
  CMG_RETURN_IF_ERROR(env.read([&](Txn& t) -> Status {
    std::string k = key_of({object, sid});
    CMG_ASSIGN_OR_RETURN(auto rec, get_json(t, state::kRecords, k));
    CMG_ASSIGN_OR_RETURN(auto src, get_json(t, state::kSrc, k));
    CMG_ASSIGN_OR_RETURN(auto mapped, get_json(t, state::kMapped, k));
    CMG_ASSIGN_OR_RETURN(auto item, get_json(t, state::kQueue, k));
    if (!rec && !src && !item) return not_found("the state has no record " + object + "/" + sid);
    CMG_ASSIGN_OR_RETURN(out, summary(t, object, sid));
    json::array timeline;
    if (src) {
      json::object step{{"step", "extracted"}, {"derived", true}};
      if (const auto* u = src->if_contains("updated_at")) step["source_updated_at"] = *u;
      if (const auto* f = src->if_contains("fields")) step["fields"] = *f;
      out["source"] = step.contains("fields") ? step["fields"] : json::value(json::object{});
      timeline.push_back(std::move(step));
    }
    if (mapped) {
      json::object step{{"step", "mapped"}, {"derived", true}};
      step["destination_object"] = str(*mapped, "o");
      for (const char* f : {"fields", "translations", "defaults", "dropped"})
        if (const auto* v = mapped->if_contains(f)) step[f] = *v;
      if (const auto* v = mapped->if_contains("k")) step["keys"] = *v;
      if (const auto* v = mapped->if_contains("cv")) step["config_version"] = *v;
      timeline.push_back(std::move(step));
    }
    // The dedup decision lives in the plan of the record's group primary.
    std::string primary = rec && !str(*rec, "p").empty() ? str(*rec, "p") : sid;
    CMG_ASSIGN_OR_RETURN(auto plan, state::load_plan(t, object, primary));
    if (plan) {
      json::object step{{"step", "dedup"}, {"derived", true}};
      step["decision"] = str(*plan, "action");
      for (const char* f : {"key", "rule", "rules_applied", "members"})
        if (const auto* v = plan->if_contains(f)) step[f] = *v;
      if (primary != sid) step["merged_into"] = primary;
      if (const auto* lb = plan->if_contains("linked_by"); lb && lb->is_object())
        if (const auto* mine = lb->get_object().if_contains(sid)) step["linked_by"] = *mine;
      std::string did = str(*plan, "dest_id");
      if (!did.empty()) {
        step["destination_id"] = did;
        CMG_ASSIGN_OR_RETURN(auto before, get_json(t, state::kPreimages, key_of({str(*plan, "o"), did, primary})));
        if (before) step["destination_before"] = *before;  // what a merge changed, as it was
      }
      if (const auto* f = plan->if_contains("fields")) step["sent"] = *f;
      timeline.push_back(std::move(step));
      timeline.push_back(json::object{{"step", "validated"}, {"derived", true}, {"ok", true}});
    } else if (item && str(*item, "stage") == "validate") {
      json::object step{{"step", "validated"}, {"derived", true}, {"ok", false}};
      if (const auto* p = item->if_contains("problems")) step["problems"] = *p;
      timeline.push_back(std::move(step));
    }
    std::vector<std::string> seqs;
    CMG_RETURN_IF_ERROR(
        t.scan(state::kAuditByRecord, key_of({object, sid, ""}), [&](std::string_view key, std::string_view) {
          if (key.size() >= 8) seqs.emplace_back(key.substr(key.size() - 8));
          return true;
        }));
    std::sort(seqs.begin(), seqs.end());
    // The steps above show the record as the state holds it now, so their times are those of the
    // latest pass that got the record to an outcome: its outcome event carries when each step ran.
    const json::object* stages = nullptr;
    std::size_t derived_steps = timeline.size();
    for (const auto& s : seqs) {
      CMG_ASSIGN_OR_RETURN(auto ev, get_json(t, state::kAudit, s));
      if (!ev) continue;
      json::object step = std::move(*ev);
      step["step"] = str(step, "action");
      timeline.push_back(std::move(step));
      if (const auto* st = timeline.back().get_object().if_contains("stages"); st && st->is_object())
        stages = &st->get_object();
    }
    if (stages) {
      static const std::pair<const char*, const char*> kStageOfStep[] = {
          {"extracted", "extracted"}, {"mapped", "mapped"}, {"dedup", "deduplicated"}, {"validated", "validated"}};
      for (std::size_t i = 0; i < derived_steps; ++i) {
        auto& step = timeline[i].get_object();
        for (const auto& [name, stage] : kStageOfStep)
          if (str(step, "step") == name)
            if (const auto* at = stages->if_contains(stage); at && at->is_string()) step["time"] = *at;
      }
      // One chronology: a record queued in the first pass and written after a fix reads extracted,
      // queued, fixed, mapped (again), ..., written. Untimed steps stay first; ties keep their order.
      std::stable_sort(timeline.begin(), timeline.end(), [](const json::value& a, const json::value& b) {
        return str(a.get_object(), "time") < str(b.get_object(), "time");
      });
    }
    out["queue"] = item ? json::value(std::move(*item)) : json::value(nullptr);
    out["timeline"] = std::move(timeline);
    return Status::ok();
  }));
  return out;
}

Result<json::array> search_records(const store::Env& env, const MigrationConfig& cfg, const std::string& raw,
                                   std::size_t limit, const std::vector<std::string>& also) {
  std::string q = raw;
  while (!q.empty() && (q.back() == ' ' || q.back() == '\t')) q.pop_back();
  q.erase(0, std::min(q.find_first_not_of(" \t"), q.size()));
  json::array out;
  if (q.empty() || q.find('\x1f') != std::string::npos) return out;
  CMG_RETURN_IF_ERROR(env.read([&](Txn& t) -> Status {
    std::set<std::string> seen;
    auto add = [&](const std::string& object, const std::string& sid, const char* by) -> Status {
      if (out.size() >= limit || !seen.insert(key_of({object, sid})).second) return Status::ok();
      CMG_ASSIGN_OR_RETURN(auto rec, t.get(state::kRecords, key_of({object, sid})));
      if (!rec) return Status::ok();
      CMG_ASSIGN_OR_RETURN(auto s, summary(t, object, sid));
      s["matched_by"] = by;
      out.push_back(std::move(s));
      return Status::ok();
    };
    if (auto slash = q.find('/'); slash != std::string::npos && cfg.object(q.substr(0, slash)))
      CMG_RETURN_IF_ERROR(add(q.substr(0, slash), q.substr(slash + 1), "id"));
    for (const auto& oc : cfg.objects) CMG_RETURN_IF_ERROR(add(oc.name, q, "source_id"));
    auto by_destination = [&](const std::string& did, const char* by) -> Status {
      for (const auto& oc : cfg.objects)
        for (const auto& dobj : oc.destination_objects()) {
          CMG_ASSIGN_OR_RETURN(auto v, t.get(state::kIdmapRev, key_of({dobj, did})));
          if (!v) continue;
          auto parts = store::split_key(*v);
          if (parts.size() != 2) continue;
          std::string object(parts[0]), primary(parts[1]);
          // idmap_rev names the group primary; its merged members share the destination record.
          CMG_ASSIGN_OR_RETURN(auto plan, state::load_plan(t, object, primary));
          std::vector<std::string> members =
              plan ? state::from_array(plan->if_contains("members")) : std::vector<std::string>{};
          if (members.empty()) members.push_back(primary);
          for (const auto& m : members) CMG_RETURN_IF_ERROR(add(object, m, by));
        }
      return Status::ok();
    };
    CMG_RETURN_IF_ERROR(by_destination(q, "destination_id"));
    if (q.find('@') != std::string::npos) {
      auto email = normalize_email(q);
      if (email) {
        for (const auto& oc : cfg.objects)
          for (std::size_t lvl = 0; lvl < oc.dedup.size(); ++lvl) {
            if (oc.dedup[lvl].kind != DedupKeyKind::kEmail) continue;
            // Destination records with this email (written by us or merged into).
            std::vector<std::string> dids;
            CMG_RETURN_IF_ERROR(t.scan(state::kDedup, key_of({oc.name, std::to_string(lvl), *email, ""}),
                                       [&](std::string_view k, std::string_view) {
                                         auto parts = store::split_key(k);
                                         if (parts.size() == 4) dids.emplace_back(parts[3]);
                                         return true;
                                       }));
            for (const auto& d : dids) CMG_RETURN_IF_ERROR(by_destination(d, "email"));
          }
      }
    }
    // Records not written (queued): the caller's candidates, confirmed by their mapped email key.
    for (const auto& k : also) {
      auto parts = store::split_key(k);
      if (parts.size() != 2) continue;
      std::string object(parts[0]), sid(parts[1]);
      const ObjectConfig* oc = cfg.object(object);
      auto email = normalize_email(q);
      if (!oc || !email) continue;
      CMG_ASSIGN_OR_RETURN(auto m, get_json(t, state::kMapped, k));
      const auto* keys = m ? m->if_contains("k") : nullptr;
      if (!keys || !keys->is_array()) continue;
      for (std::size_t lvl = 0; lvl < oc->dedup.size() && lvl < keys->get_array().size(); ++lvl) {
        if (oc->dedup[lvl].kind != DedupKeyKind::kEmail) continue;
        auto vals = state::from_array(&keys->get_array()[lvl]);
        if (std::find(vals.begin(), vals.end(), *email) != vals.end()) CMG_RETURN_IF_ERROR(add(object, sid, "email"));
      }
    }
    return Status::ok();
  }));
  return out;
}

}  // namespace cmg::web
