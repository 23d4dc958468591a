// plan: the coverage report and the sign-off that `run` requires (DESIGN §1 "plan"). Zero writes to
// the destination; reads the source to count what will be queued.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "crmmigrate/core/time.hpp"
#include "crmmigrate/net/quota.hpp"
#include "pipeline_internal.hpp"
#include "state_internal.hpp"

namespace cmg {

namespace json = boost::json;
using state::get_json;
using state::put_json;
using state::str;
using store::Txn;

Status Migration::Impl::load_schemas() {
  if (src_schema && dst_schema) return Status::ok();
  CMG_ASSIGN_OR_RETURN(Schema s, source->schema());
  CMG_ASSIGN_OR_RETURN(Schema d, dest->schema());
  src_schema = std::move(s);
  dst_schema = std::move(d);
  owners = std::make_unique<OwnerResolver>(src_schema->users, dst_schema->users, cfg.owners);
  phones = std::make_unique<PhoneNormalizer>(cfg.phone_region);
  for (const auto& oc : cfg.objects) {
    if (!src_schema->object(oc.source))
      return config_error(cfg.source.json_path + ": the source has no object '" + oc.source + "' (object " + oc.name + ")");
    for (const auto& d2 : oc.destination_objects())
      if (!dst_schema->object(d2))
        return config_error(cfg.destination.json_path + ": the destination has no object '" + d2 + "' (object " + oc.name + ")");
  }
  return Status::ok();
}

std::string Migration::Impl::signoff_hash() const {
  return json_hash(json::object{{"config", cfg.hash}, {"source", schema_to_json(*src_schema)},
                                {"destination", schema_to_json(*dst_schema)}});
}

std::vector<std::string> Migration::Impl::blocking_gaps(json::object* detail) {
  std::vector<std::string> gaps;
  for (const auto& oc : cfg.objects) {
    const ObjectSchema* sos = src_schema->object(oc.source);
    json::array unmapped, unknown_src, unknown_dst, read_only, uncovered;
    std::set<std::string> used;
    for (const auto& m : oc.fields) used.insert(m.source);
    for (const auto& t : oc.translations)
      for (const auto& f : t.from) used.insert(f);
    if (!oc.route_by.empty()) used.insert(oc.route_by);
    for (const auto& d : oc.drop) used.insert(d);
    for (const auto& f : sos->fields) {
      if (f.name == "id" || used.count(f.name)) continue;
      unmapped.push_back(json::string(f.name));
      gaps.push_back(oc.name + ": source field '" + f.name + "' is neither mapped nor dropped (add it to \"fields\" or \"drop\")");
    }
    for (const auto& s : used)
      if (!sos->field(s) && s != "id") unknown_src.push_back(json::string(s));
    for (const auto& dobj : oc.destination_objects()) {
      const ObjectSchema* dos = dst_schema->object(dobj);
      std::set<std::string> covered;
      auto check_target = [&](const std::string& f) {
        if (f.empty()) return;
        covered.insert(f);
        const FieldSchema* fs = dos->field(f);
        if (!fs) {
          unknown_dst.push_back(json::string(dobj + "." + f));
          gaps.push_back(oc.name + ": destination field '" + dobj + "." + f + "' does not exist");
        } else if (fs->read_only) {
          read_only.push_back(json::string(dobj + "." + f));
          gaps.push_back(oc.name + ": destination field '" + dobj + "." + f + "' is read-only");
        }
      };
      for (const auto& m : oc.fields) check_target(oc.target_field(m, dobj));
      for (const auto& t : oc.translations)
        for (const auto& f : t.to) {
          // Routed objects: a table may feed a field only some destinations have.
          if (!oc.route_by.empty() && !dos->field(f)) {
            bool anywhere = false;
            for (const auto& other : oc.destination_objects())
              anywhere = anywhere || dst_schema->object(other)->field(f) != nullptr;
            if (anywhere) continue;
          }
          check_target(f);
        }
      for (const auto& [f, v] : oc.defaults)
        if (dos->field(f)) covered.insert(f);
      if (!dos->id_property.empty()) covered.insert(dos->id_property);
      for (const auto& f : dos->fields) {
        if (!f.required || f.read_only || covered.count(f.name)) continue;
        uncovered.push_back(json::string(dobj + "." + f.name));
        gaps.push_back(oc.name + ": required destination field '" + dobj + "." + f.name +
                       "' is not covered by a mapping or a default");
      }
    }
    if (detail) {
      json::object o;
      o["unmapped_fields"] = std::move(unmapped);
      o["unknown_source_fields"] = std::move(unknown_src);
      o["unknown_destination_fields"] = std::move(unknown_dst);
      o["read_only_targets"] = std::move(read_only);
      o["required_uncovered"] = std::move(uncovered);
      (*detail)[oc.name] = std::move(o);
    }
  }
  return gaps;
}

Result<json::object> Migration::Impl::plan(bool approve, const std::string& reviewer) {
  if (approve && reviewer.empty()) return invalid_argument("plan --approve needs --reviewer NAME");
  // Credentials first: a refused token is reported as such (exit 6), not as a schema error later.
  // (The destination is held behind the retrying wrapper: ask the connector itself.)
  Destination* raw_dest = dest.get();
  if (auto* r = dynamic_cast<RetryingDestination*>(raw_dest)) raw_dest = r->inner().get();
  for (auto [side, st] : {std::pair<const char*, Status>{"source", source->check_access()},
                          std::pair<const char*, Status>{"destination", raw_dest->check_access()}}) {
    if (st.is_ok()) continue;
    std::string why = st.code() == Code::kPermissionDenied ? "refused our credentials" : "cannot be reached";
    Code code = st.code() == Code::kPermissionDenied ? Code::kPermissionDenied : Code::kUnavailable;
    return Status(code, std::string("plan: the ") + side + " " + why + ": " + st.message());
  }
  CMG_RETURN_IF_ERROR(load_schemas());
  json::object gaps_detail;
  auto gaps = blocking_gaps(&gaps_detail);

  json::object objects;
  std::int64_t total_records = 0, projected_calls = 0;
  for (const auto& oc : cfg.objects) {
    json::object o = gaps_detail[oc.name].as_object();
    o["source_object"] = oc.source;
    o["destination"] = oc.route_by.empty() ? json::value(oc.destination) : json::value([&] {
      json::array a;
      for (const auto& d : oc.destination_objects()) a.push_back(json::string(d));
      return a;
    }());
    o["dropped_fields"] = [&] {
      json::array a;
      for (const auto& d : oc.drop) a.push_back(json::string(d));
      return a;
    }();
    o["dedup"] = oc.dedup_none ? json::value("none") : json::value([&] {
      json::array a;
      for (const auto& k : oc.dedup) a.push_back(json::string(k.name));
      return a;
    }());
    CMG_ASSIGN_OR_RETURN(std::int64_t count, source->count(oc.source));
    o["source_count"] = count;
    // One pass over the source: which values have no translation, whose owner is unresolved.
    std::map<std::string, std::pair<std::int64_t, std::string>> untranslated;  // table/key → (count, table)
    std::map<std::string, std::int64_t> unresolved_owner_records;
    std::int64_t expected_unmapped = 0, expected_owner = 0, read = 0;
    ReadOptions ro;
    ro.batch_size = 1000;
    CMG_ASSIGN_OR_RETURN(auto reader, source->read(oc.source, ro));
    CMG_RETURN_IF_ERROR(for_each_batch(*reader, [&](RecordBatch& batch) {
      for (const auto& r : batch) {
        ++read;
        bool unmapped = false, owner_bad = false;
        for (const auto& t : oc.translations) {
          if (t.otherwise != "queue") continue;
          auto key = translation_key(t, r);
          if (!key || t.table.count(*key)) continue;
          auto& u = untranslated[t.name + "\x1f" + *key];
          ++u.first;
          u.second = t.name;
          unmapped = true;
        }
        for (const auto& m : oc.fields) {
          if (!m.owner) continue;
          const auto* v = r.fields.if_contains(m.source);
          if (!v || value_is_blank(*v)) continue;
          auto res = owners->resolve(value_to_text(*v));
          if (!res.user_id) {
            ++unresolved_owner_records[res.source_label];
            owner_bad = true;
          }
        }
        expected_unmapped += unmapped;
        expected_owner += owner_bad && !unmapped;
      }
      return Status::ok();
    }));
    json::array ua;
    for (const auto& [k, v] : untranslated) {
      std::string value = k.substr(k.find('\x1f') + 1);
      ua.push_back(json::object{{"table", v.second}, {"value", value}, {"count", v.first}});
    }
    o["untranslated_values"] = std::move(ua);
    json::array uo;
    for (const auto& [label, n] : unresolved_owner_records) uo.push_back(json::object{{"owner", label}, {"records", n}});
    o["unresolved_owners"] = std::move(uo);
    o["expected_queue"] = json::object{{"unmapped_value", expected_unmapped}, {"owner_unprovisioned", expected_owner},
                                       {"note", "children of queued records wait as parent_queued"}};
    total_records += read;
    Quota q = dest->quota();
    std::int64_t per_call = std::max(1, std::min(static_cast<int>(cfg.batch_size), std::max(1, q.max_batch)));
    projected_calls += (read + per_call - 1) / per_call;
    objects[oc.name] = std::move(o);
  }
  json::array owners_json;
  json::array owners_unresolved;
  for (const auto& [u, res] : owners->all()) {
    json::object ow{{"source_id", u.id}, {"name", u.name}, {"email", u.email}};
    if (res.user_id) {
      ow["destination_id"] = *res.user_id;
      ow["matched_by"] = res.matched_by;
    } else {
      ow["destination_id"] = nullptr;
      owners_unresolved.push_back(json::string(res.source_label));
    }
    owners_json.push_back(std::move(ow));
  }
  Quota q = dest->quota();
  double seconds = 0;
  if (q.burst_requests > 0 && q.burst_window_ms > 0)
    seconds = static_cast<double>(projected_calls) * q.burst_window_ms / 1000.0 / q.burst_requests;
  // ETA of the write calls under the destination's quota (burst window and daily budget, as the
  // connector's scheduler would pace them; reads for dedup and read-back come on top).
  net::QuotaLimits ql;
  ql.burst_requests = q.burst_requests;
  ql.burst_window_ms = q.burst_window_ms;
  ql.daily_requests = q.daily_requests;
  std::int64_t eta_ms = net::QuotaScheduler(ql).eta_ms(projected_calls);
  json::object out;
  out["migration"] = cfg.name;
  out["objects"] = std::move(objects);
  out["owners"] = std::move(owners_json);
  out["owners_unresolved"] = std::move(owners_unresolved);
  out["projected"] = json::object{{"records", total_records}, {"write_calls", projected_calls},
                                  {"duration_seconds", std::ceil(seconds)},
                                  {"eta_seconds", (eta_ms + 999) / 1000},
                                  {"quota", json::object{{"burst_requests", q.burst_requests},
                                                         {"burst_window_ms", q.burst_window_ms},
                                                         {"daily_requests", q.daily_requests},
                                                         {"max_batch", q.max_batch}}}};
  json::array blocking;
  for (const auto& g : gaps) blocking.push_back(json::string(g));
  out["blocking"] = std::move(blocking);
  std::string hash = signoff_hash();
  out["hash"] = hash;
  json::object signoff;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto s, get_json(t, state::kMeta, "signoff"));
    if (s) signoff = *s;
    return Status::ok();
  }));
  if (approve) {
    if (!gaps.empty()) {
      std::string msg = "plan not approved: it has " + std::to_string(gaps.size()) + " blocking gap(s):";
      for (const auto& g : gaps) msg += "\n  - " + g;
      return invalid_argument(msg);
    }
    signoff = json::object{{"hash", hash}, {"reviewer", reviewer}, {"at", format_timestamp_ms(state::now_ms())},
                           {"config_hash", cfg.hash}};
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
      CMG_RETURN_IF_ERROR(put_json(t, state::kMeta, "signoff", signoff));
      return state::append_audit(t, json::object{{"action", "plan_approved"}, {"reviewer", reviewer}, {"hash", hash}});
    }));
  }
  out["signoff"] = signoff.empty() ? json::value(nullptr) : json::value(signoff);
  out["approved"] = !signoff.empty() && str(signoff, "hash") == hash;
  return out;
}

}  // namespace cmg
