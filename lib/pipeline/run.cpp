// run and reprocess: extract → map → dedup → validate, then write (write.cpp); resumable at every step.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdlib>
#include <cstring>
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
// A dry run's scratch state is thrown away, so its transactions could be any size; measured
// (dry_run_bench at 1M: 500 is ~4 % faster than 1000, 2000 ~15 % slower), larger ones are
// slower: LMDB's dirty pages and the batch's dedup keys then no longer stay in cache.
constexpr std::size_t kDryExtractBatch = 500;
constexpr std::size_t kDryPlanBatch = 2000;

// Parses `text` as a JSON object into `out`, reusing `parser`'s buffers (default storage, so the
// result can be moved into records). False when it is not an object.
bool parse_object_into(json::parser& parser, std::string_view text, json::object& out) {
  json::error_code ec;
  parser.reset();
  parser.write(text.data(), text.size(), ec);  // the whole text: trailing garbage is an error
  if (ec) return false;
  json::value v = parser.release();
  if (!v.is_object()) return false;
  out = std::move(v.get_object());
  return true;
}

// A stored source copy (state::source_value) back into a Record, moving the parsed fields;
// `extracted_at` [out]: its "x" (0 when absent).
bool parse_source(json::parser& parser, std::string_view text, Record& out, std::int64_t* extracted_at) {
  json::object o;
  if (!parse_object_into(parser, text, o)) return false;
  auto* obj = o.if_contains("object");
  auto* id = o.if_contains("id");
  auto* fields = o.if_contains("fields");
  if (!obj || !obj->is_string() || !id || !id->is_string() || !fields || !fields->is_object()) return false;
  out.object = std::string(obj->get_string());
  out.id = std::string(id->get_string());
  out.fields = std::move(fields->get_object());
  out.updated_at = 0;
  if (const auto* u = o.if_contains("updated_at")) {
    if (u->is_int64()) out.updated_at = u->get_int64();
    else if (u->is_uint64()) out.updated_at = static_cast<std::int64_t>(u->get_uint64());
  }
  *extracted_at = 0;
  if (const auto* x = o.if_contains("x"); x && x->is_int64()) *extracted_at = x->get_int64();
  return true;
}

// Hash of a (level, normalised value) pair of the destination dedup index.
std::uint64_t dest_key_hash(std::size_t level, std::string_view value) {
  return std::hash<std::string_view>{}(value) * 31u + level;
}


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
  std::vector<std::vector<std::string>> out;
  dedup_keys_into(oc, fields, external_id, out);
  return out;
}

void Migration::Impl::dedup_keys_into(const ObjectConfig& oc, const json::object& fields, const std::string& external_id,
                                      std::vector<std::vector<std::string>>& out) const {
  if (normalizers.empty()) {
    dedup_key_values(oc, *phones, nullptr, fields, external_id, out);
    return;
  }
  std::vector<const Normalizer*> custom;
  for (const auto& k : oc.dedup) {
    auto it = normalizers.find({oc.name, k.name});
    custom.push_back(it == normalizers.end() ? nullptr : it->second.get());
  }
  dedup_key_values(oc, *phones, custom.data(), fields, external_id, out);
}

ParentState Migration::Impl::parent_state(Txn& t, const std::string& object, const std::string& source_id) {
  ParentState ps;
  const std::string k = key_of({object, source_id});
  auto rec = get_json(t, state::kRecords, k);
  if (!rec.is_ok() || !*rec) {
    // A dry run's extract stores a record it maps in `mapped` only; its status comes when it is
    // planned (MapPass). Such a parent is pending, not absent.
    auto m = t.get(state::kMapped, k);
    ps.kind = m.is_ok() && *m ? ParentState::Kind::kPending : ParentState::Kind::kAbsent;
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

// ---- phase 1 (map), shared by plan_object and a dry run's extract ----

// Phase 1 of plan_object (map) for one object and pass: what it builds up for phase 2. A dry run's
// extract feeds it too (map_record below, "fused"): a fresh scratch state has no queue item and no
// earlier pass, so a record extracted there can be mapped at once instead of being stored, read
// back and parsed again; and its status is written once, when it is planned.
struct MapPass {
  MapPass(const ObjectConfig& object, const Schema& dst, const ObjectSchema* src_os, const OwnerResolver& owners,
          std::vector<DedupKey> levels)
      : oc(object), mapper(object, dst, src_os, owners), dd(std::move(levels)) {}
  const ObjectConfig& oc;
  Mapper mapper;
  Deduplicator dd;
  std::vector<std::uint64_t> dest_key_hashes;
  std::unordered_set<std::string> dest_added;
  // Records mapped whose plan, were they created alone, is not their mapped fields plus the
  // idempotency key (validation problems): phase 2 decides them in full, as it does every record
  // when there was no prevalidation.
  std::unordered_set<std::string> not_ready;
  std::vector<std::string> mapped_ids;  // without dedup: the records mapped, in the order mapped
  // Without registered validators (which may count or log their calls), a record is validated as
  // a create once, when mapped, while its fields are at hand; phase 2 then writes the plan of a
  // record that stays alone without parsing it again. Anything else is validated in phase 2.
  bool prevalidate = false;
  bool fused = false;  // records are being mapped by extract (dry run)
  std::int64_t config_version = 0;
  json::parser parser;
  std::string value;  // scratch for the mapped value
  alignas(std::max_align_t) unsigned char arena[8192];  // map_record's per-record JSON arena

  // Keys a fused extract left for plan_object in this pass (stored in `records`; usually few):
  // a record not among them was not left earlier, so its repeat check needs no `records` lookup.
  // Past kLeftKept keys every record is looked up.
  static constexpr std::size_t kLeftKept = 65536;
  std::unordered_set<std::string> left_keys;
  bool left_overflow = false;
  bool may_be_left(const std::string& k) const { return left_overflow || (!left_keys.empty() && left_keys.count(k)); }
  void note_left(const std::string& k) {
    if (left_overflow) return;
    if (left_keys.size() == kLeftKept) {
      left_overflow = true;
      left_keys.clear();
      return;
    }
    left_keys.insert(k);
  }

  bool dest_may_have(std::size_t lvl, const std::string& v) const {
    return std::binary_search(dest_key_hashes.begin(), dest_key_hashes.end(), dest_key_hash(lvl, v));
  }
  // Per dedup level: an external-id level (compared with the destination only) whose source
  // values no destination record holds are given to the deduplicator as kStandIn (map_record).
  std::vector<std::uint8_t> stand_in_level;
};

namespace {

// What one phase-1 transaction produces outside the state. Env::write may run a body again (map
// growth): reset at each attempt and applied (MapBatch::apply) only after the commit.
struct MapBatch {
  struct PendingSource {
    std::string id;
    std::int64_t updated_at;
    std::vector<std::vector<std::string>> keys;
  };
  // sources[0, nsources) are this batch's; the rest are kept from earlier batches so that their
  // vectors' memory is reused (one record's key values are several small allocations).
  std::vector<PendingSource> sources;
  std::size_t nsources = 0;
  std::vector<std::pair<std::string, std::vector<std::vector<std::string>>>> dest_candidates;
  std::unordered_set<std::string> batch_dests;
  std::vector<std::string> not_ready, mapped;
  std::vector<Deduplicator::SourceEntity> entities;  // apply's view of `sources`

  // The next source's slot (its key vectors hold the values of an earlier batch's source).
  PendingSource& next_source() {
    if (nsources == sources.size()) sources.emplace_back();
    return sources[nsources++];
  }
  void clear() {
    nsources = 0;
    dest_candidates.clear();
    batch_dests.clear();
    not_ready.clear();
    mapped.clear();
  }
  Status apply(MapPass& p) {
    for (auto& id : not_ready) p.not_ready.insert(std::move(id));
    for (auto& id : mapped) p.mapped_ids.push_back(std::move(id));
    // Added as one batch: the deduplicator's value index is large and read at random.
    entities.clear();
    for (std::size_t i = 0; i < nsources; ++i) entities.push_back({sources[i].id, sources[i].updated_at, &sources[i].keys});
    CMG_RETURN_IF_ERROR(p.dd.add_sources(entities));
    for (auto& [did, dkeys] : dest_candidates) {
      p.dest_added.insert(did);
      CMG_RETURN_IF_ERROR(p.dd.add_destination(did, dkeys));
    }
    clear();
    return Status::ok();
  }
};

// What the deduplicator is given instead of a record's external id when no destination record
// holds that id. Such a value can only veto (a destination whose external ids all differ from a
// group's is not matched by a weaker key); one value no destination holds vetoes alike, and is
// kept once instead of once per record. (A NUL first byte: not an id anyone types.)
const std::string kStandIn = std::string(1, '\0') + "external id held by no destination record";

// How many ids repeated by the source the count check's message names.
constexpr std::size_t kRepeatedIdsShown = 5;

// `records` value of a record mapped by a dry run's extract, waiting for dedup in `mapped`
// (plan_object counts it as extracted in every other respect). Stored only when the dry run
// stops before planning (settle_fused): the status of a record it plans is written once, then.
constexpr std::string_view kFusedValue = R"({"s":"mapped"})";

// What map_record did with a record.
enum class Mapped {
  kDone,      // stored in `mapped` for dedup, queued, or left waiting for its parent
  kLeft,      // fused: not mapped (waits for a parent, or has a problem); plan_object maps it again
  kRepeated,  // fused: `mapped` holds this id already (a row read earlier in this pass)
};

}  // namespace

// Maps `src` (key `k`) and stores what phase 2 needs. Fused (extract of a dry run): a record
// that waits for a parent or has a problem is left untouched (kLeft) for plan_object to map
// again from its stored source copy, so that queueing happens after the count check.
static Result<Mapped> map_record(Migration::Impl& self, MapPass& p, MapBatch& b, Txn& t, const std::string& k,
                               const Record& src, std::int64_t extracted_at, std::int64_t mapped_at,
                               const json::object& corrections, const ParentLookup& lookup, RunCtx& ctx) {
  const ObjectConfig& oc = p.oc;
  // The mapped fields live only while this record is handled: allocated from the pass's buffer
  // (no heap allocation per field in the usual case), all released when this call returns.
  json::monotonic_resource arena(p.arena, sizeof p.arena);
  MappedRecord m = p.mapper.map(src, corrections, lookup, &arena);
  if (p.fused && (m.waits_for_parent || !m.problems.empty())) return Mapped::kLeft;
  if (m.waits_for_parent) return Mapped::kDone;  // stays extracted; planned once its parent is decided
  if (!m.problems.empty()) {
    json::object extra{{"config_version", p.config_version}};
    if (!m.queued_parents.empty()) {
      json::array ps;
      for (const auto& [po, pid] : m.queued_parents) ps.push_back(json::array{json::string(po), json::string(pid)});
      extra["parents"] = std::move(ps);
    }
    extra["translations"] = to_array(m.translations);
    extra["mapped"] = m.fields;
    extra["stages"] = state::stages_json(2, extracted_at, mapped_at);
    CMG_RETURN_IF_ERROR(self.enqueue(t, oc.name, src.id, m.problems, "map", std::move(extra), &ctx));
    return Mapped::kDone;
  }
  // The key values go straight into the batch's next source slot (kept only if the record is).
  std::vector<std::vector<std::string>> no_keys;
  MapBatch::PendingSource* pending = oc.dedup_none ? nullptr : &b.next_source();
  std::vector<std::vector<std::string>>& keys = pending ? pending->keys : no_keys;
  if (pending) self.dedup_keys_into(oc, m.fields, src.id, keys);
  bool ready = false;
  if (p.prevalidate) {
    const ObjectSchema* os = self.dst_schema->object(m.destination_object);
    if (os && (os->id_property.empty() || !m.fields.contains(os->id_property))) {
      std::vector<Problem> ps;
      self.validate(oc, *os, m.fields, true, ps);
      ready = ps.empty();
    }
  }
  std::string& value = p.value;
  value.clear();
  state::append_mapped_value(value, m, keys, src.updated_at, p.config_version, extracted_at, mapped_at);
  if (p.fused) {
    // The scratch state started empty: a mapped value already there is an earlier row's.
    CMG_ASSIGN_OR_RETURN(bool fresh, t.put_if_absent(state::kMapped, k, value));
    if (!fresh) {
      if (pending) --b.nsources;  // not kept: its slot goes back
      return Mapped::kRepeated;
    }
  } else {
    CMG_RETURN_IF_ERROR(t.put(state::kMapped, k, value));
  }
  if (p.prevalidate && !ready) b.not_ready.push_back(src.id);
  // The record's status stays "extracted" until it is planned: a pass that stops before then
  // maps it again either way, so a status write per record would buy nothing.
  if (oc.dedup_none) {
    b.mapped.push_back(src.id);
    return Mapped::kDone;
  }
  // Destination candidates sharing any key value (the veto needs all their key values).
  for (std::size_t lvl = 0; lvl < keys.size(); ++lvl) {
    for (const auto& v : keys[lvl]) {
      if (!p.dest_may_have(lvl, v)) continue;
      std::string prefix = key_of({oc.name, std::to_string(lvl), v, ""});
      CMG_RETURN_IF_ERROR(t.scan(state::kDedup, prefix, [&](std::string_view dk, std::string_view) {
        std::string did(store::split_key(dk)[3]);
        if (!p.dest_added.count(did) && b.batch_dests.insert(did).second)
          b.dest_candidates.emplace_back(did, std::vector<std::vector<std::string>>{});
        return true;
      }));
    }
  }
  for (std::size_t lvl = 0; lvl < keys.size() && lvl < p.stand_in_level.size(); ++lvl)
    if (p.stand_in_level[lvl])
      for (auto& v : keys[lvl])
        if (!p.dest_may_have(lvl, v)) v = kStandIn;
  pending->id = src.id;
  pending->updated_at = src.updated_at;
  return Mapped::kDone;
}

// A dry run that stops between extract and plan (count check, cancel): the records its extract
// mapped get the status they wait with, so that the report counts them.
static Status settle_fused(store::Env& env, const ObjectConfig& oc) {
  const std::string prefix = key_of({oc.name, ""});
  std::string after;
  for (bool more = true; more;) {
    constexpr std::size_t kChunk = 20000;
    std::vector<std::string> keys;
    CMG_RETURN_IF_ERROR(env.read([&](Txn& t) {
      return t.scan(state::kMapped, prefix, [&](std::string_view k, std::string_view) {
        keys.emplace_back(k);
        return keys.size() < kChunk;
      }, after);
    }));
    more = keys.size() == kChunk;
    if (keys.empty()) break;
    CMG_RETURN_IF_ERROR(env.write([&](Txn& t) -> Status {
      for (const auto& k : keys) CMG_RETURN_IF_ERROR(t.put_if_absent(state::kRecords, k, kFusedValue).status());
      return Status::ok();
    }));
    after = keys.back();
  }
  return Status::ok();
}

// The key values of the destination candidates found by map_record in this transaction.
static Status read_candidate_keys(Txn& t, const ObjectConfig& oc, MapBatch& b) {
  for (auto& [did, dkeys] : b.dest_candidates) {
    CMG_ASSIGN_OR_RETURN(auto dk, get_json(t, state::kDestKeys, key_of({oc.name, did})));
    if (!dk) continue;
    for (const auto& lvl : dk->at("k").get_array()) dkeys.push_back(from_array(&lvl));
  }
  return Status::ok();
}

// ---- extract ----

Result<StepResult> Migration::Impl::extract(const ObjectConfig& oc, RunCtx& ctx, MapPass* fuse) {
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
    ro.batch_size = ctx.opts->dry_run ? kDryExtractBatch : kExtractBatch;
    CMG_ASSIGN_OR_RETURN(auto reader, source->read(oc.source, ro));
    RecordBatch batch;
    MapBatch mapped;
    std::int64_t done = 0;
    // Rows whose id a row read earlier in this pass had: only the first row of an id is kept,
    // and the count check below names them. (A row whose id was stored by an earlier attempt of
    // this extract, interrupted and resumed, is not one of them.)
    std::int64_t repeats = 0;
    json::array repeated_ids;  // the first few, for the count check's message
    std::vector<std::string> batch_repeats;
    std::int64_t batch_fresh = 0, fresh_total = 0;  // records a fused pass stored (no repeats)
    const std::int64_t pass_started = state::stamp_ms();
    if (fuse) {
      fuse->fused = true;
      fuse->left_keys.clear();
      fuse->left_overflow = false;
      if (reported > 0) fuse->dd.reserve(static_cast<std::size_t>(reported));
    }
    for (;;) {
      CMG_ASSIGN_OR_RETURN(bool more, reader->next(batch));
      if (!more) break;
      const std::int64_t extracted_at = state::stamp_ms();
      CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
        std::string k;
        batch_repeats.clear();  // the body runs again when the map grows
        if (!fuse) {
          for (const auto& r : batch) {
            k.assign(oc.name).push_back('\x1f');
            k += r.id;
            CMG_ASSIGN_OR_RETURN(bool fresh, t.put_if_absent(state::kRecords, k, state::kExtractedValue));
            if (fresh) {
              CMG_RETURN_IF_ERROR(t.put(state::kSrc, k, state::source_value(r, extracted_at)));
              continue;
            }
            CMG_ASSIGN_OR_RETURN(auto kept, t.get(state::kSrc, k));
            if (kept && state::source_extracted_at(*kept) >= pass_started) batch_repeats.push_back(r.id);
          }
          return Status::ok();
        }
        // Dry run: mapped at once (see MapPass); what cannot be is stored for plan_object. The
        // scratch state starts empty, and a record is stored either in `mapped` (mapped) or in
        // `records` (left for plan_object): an id found in either was read earlier in this pass.
        mapped.clear();
        batch_fresh = 0;
        ParentLookup lookup = [&](const std::string& o, const std::string& sid) { return parent_state(t, o, sid); };
        const json::object no_corrections;
        for (const auto& r : batch) {
          k.assign(oc.name).push_back('\x1f');
          k += r.id;
          std::optional<std::string_view> left_earlier;
          if (fuse->may_be_left(k)) {
            CMG_ASSIGN_OR_RETURN(left_earlier, t.get(state::kRecords, k));
          }
          Mapped what = Mapped::kRepeated;
          if (!left_earlier) {
            CMG_ASSIGN_OR_RETURN(what, map_record(*this, *fuse, mapped, t, k, r, extracted_at, extracted_at,
                                                  no_corrections, lookup, ctx));
          }
          if (what == Mapped::kLeft) {
            CMG_ASSIGN_OR_RETURN(auto mapped_earlier, t.get(state::kMapped, k));
            if (mapped_earlier) what = Mapped::kRepeated;
          }
          if (what == Mapped::kRepeated) {
            batch_repeats.push_back(r.id);
            continue;
          }
          ++batch_fresh;
          if (what == Mapped::kDone) continue;
          fuse->note_left(k);  // kept when the body runs again (map growth): a lookup too many at worst
          CMG_RETURN_IF_ERROR(t.put(state::kRecords, k, state::kExtractedValue));
          CMG_RETURN_IF_ERROR(t.put(state::kSrc, k, state::source_value(r, extracted_at)));
        }
        return read_candidate_keys(t, oc, mapped);
      }));
      if (fuse) CMG_RETURN_IF_ERROR(mapped.apply(*fuse));
      fresh_total += batch_fresh;
      repeats += static_cast<std::int64_t>(batch_repeats.size());
      for (auto& id : batch_repeats)
        if (repeated_ids.size() < kRepeatedIdsShown) repeated_ids.emplace_back(id);
      done += static_cast<std::int64_t>(batch.size());
      if (ctx.opts->progress) ctx.opts->progress({oc.name, "extract", done, reported});
      if (ctx.opts->cancelled && ctx.opts->cancelled()) return StepResult::kCancelled;
    }
    // A fused pass started from an empty scratch state and counted what it stored; otherwise
    // the records of earlier, interrupted attempts of this extract count too.
    std::int64_t read = fresh_total;
    if (!fuse) {
      CMG_RETURN_IF_ERROR(env->read([&](Txn& t) {
        return t.scan(state::kRecords, key_of({oc.name, ""}), [&](std::string_view, std::string_view) {
          ++read;
          return true;
        });
      }));
    }
    info["read"] = true;
    info["count"] = read;
    if (repeats > 0) {
      info["repeated"] = repeats;
      info["repeated_ids"] = std::move(repeated_ids);
    }
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
                        (oc.expected_count ? " (configured)" : " (reported by the source)");
      if (const auto* n = info.if_contains("repeated"); n && n->is_int64()) {
        // Why the counts differ, when the source repeated ids: which ones.
        const json::array& named = info.at("repeated_ids").as_array();
        std::string ids;
        for (const auto& id : named) ids += (ids.empty() ? "" : ", ") + std::string(id.as_string());
        const auto shown = static_cast<std::int64_t>(named.size());
        msg += "; " + std::to_string(n->get_int64()) + (n->get_int64() == 1 ? " row repeats" : " rows repeat") +
               " the id of an earlier row (only the first row of an id is kept): " + ids +
               (n->get_int64() > shown ? ", ..." : "");
      }
      msg += "; run --accept-counts --reviewer NAME to continue";
      raise_alert(&ctx, {"count_mismatch", oc.name, msg});
      CMG_RETURN_IF_ERROR(set_run_state("paused", msg));
      return StepResult::kPaused;
    }
  }
  return StepResult::kContinue;
}

// ---- destination index ----

Status Migration::Impl::index_destination(const ObjectConfig& oc, std::vector<std::uint64_t>* key_hashes) {
  if (key_hashes) key_hashes->clear();
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
    std::vector<std::uint64_t> batch_hashes;  // applied after the commit (the body may run again)
    CMG_RETURN_IF_ERROR(for_each_batch(*reader, [&](RecordBatch& batch) -> Status {
      CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
        batch_hashes.clear();
        for (const auto& r : batch) {
          std::string ext;
          if (!os->id_property.empty())
            if (const auto* v = r.fields.if_contains(os->id_property)) ext = value_to_text(*v);
          auto keys = dedup_keys(oc, r.fields, ext);
          json::array ka;
          for (std::size_t lvl = 0; lvl < keys.size(); ++lvl) {
            ka.push_back(to_array(keys[lvl]));
            for (const auto& v : keys[lvl]) {
              CMG_RETURN_IF_ERROR(t.put(state::kDedup, key_of({oc.name, std::to_string(lvl), v, r.id}), ""));
              batch_hashes.push_back(dest_key_hash(lvl, v));
            }
          }
          CMG_RETURN_IF_ERROR(put_json(t, state::kDestKeys, key_of({oc.name, r.id}),
                                       json::object{{"k", std::move(ka)}, {"o", dobj}, {"u", r.updated_at}}));
        }
        return Status::ok();
      }));
      if (key_hashes) key_hashes->insert(key_hashes->end(), batch_hashes.begin(), batch_hashes.end());
      return Status::ok();
    }));
  }
  if (key_hashes) {
    std::sort(key_hashes->begin(), key_hashes->end());
    key_hashes->erase(std::unique(key_hashes->begin(), key_hashes->end()), key_hashes->end());
  }
  return Status::ok();
}

// ---- plan (map → dedup → validate) ----

Result<std::unique_ptr<MapPass>> Migration::Impl::begin_map_pass(const ObjectConfig& oc) {
  std::vector<DedupKey> levels;
  for (const auto& k : oc.dedup) levels.push_back({k.name, k.kind != DedupKeyKind::kExternalId});
  auto p = std::make_unique<MapPass>(oc, *dst_schema, src_schema->object(oc.source), *owners, std::move(levels));
  CMG_RETURN_IF_ERROR(index_destination(oc, &p->dest_key_hashes));
  for (std::size_t lvl = 0; lvl < oc.dedup.size(); ++lvl)
    p->stand_in_level.push_back(oc.dedup[lvl].kind == DedupKeyKind::kExternalId && !p->dest_may_have(lvl, kStandIn));
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto c, get_json(t, state::kMeta, "config"));
    if (c) p->config_version = c->at("version").to_number<std::int64_t>();
    return Status::ok();
  }));
  p->prevalidate = std::none_of(validators.begin(), validators.end(), [&](const auto& v) {
    return v.first.empty() || v.first == oc.name;
  });
  return p;
}

Status Migration::Impl::plan_object(const ObjectConfig& oc, RunCtx& ctx, MapPass* fused) {
  // Records to decide now: extracted and not yet planned (those a dry run's extract mapped are
  // in `fused` already).
  std::vector<std::string> ids;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) {
    return t.scan(state::kRecords, key_of({oc.name, ""}), [&](std::string_view k, std::string_view v) {
      // "mapped" records were left by an older version that stopped before dedup; decided again.
      if (v.find("\"s\":\"extracted\"") != std::string_view::npos ||
          (!fused && v.find("\"s\":\"mapped\"") != std::string_view::npos))
        ids.emplace_back(store::split_key(k)[1]);
      return true;
    });
  }));
  if (ids.empty() && !fused) return Status::ok();
  std::unique_ptr<MapPass> own;
  if (!fused) {
    CMG_ASSIGN_OR_RETURN(own, begin_map_pass(oc));
  }
  MapPass& pass = fused ? *fused : *own;
  if (!fused) pass.dd.reserve(ids.size());
  pass.fused = false;
  Deduplicator& dd = pass.dd;
  const bool prevalidate = pass.prevalidate;
  json::parser& parser = pass.parser;
  std::unordered_set<std::string>& not_ready = pass.not_ready;
  std::vector<std::string>& mapped_ids = pass.mapped_ids;
  const std::size_t plan_batch = ctx.opts->dry_run ? kDryPlanBatch : kPlanBatch;

  // Phase 1: map each record; problems go to the queue, the rest wait for dedup in `mapped`.
  MapBatch batch;
  for (std::size_t start = 0; start < ids.size(); start += plan_batch) {
    std::size_t end = std::min(ids.size(), start + plan_batch);
    const std::int64_t mapped_at = state::stamp_ms();
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
      batch.clear();
      ParentLookup lookup = [&](const std::string& o, const std::string& sid) { return parent_state(t, o, sid); };
      std::string k;
      for (std::size_t i = start; i < end; ++i) {
        const std::string& sid = ids[i];
        k.assign(oc.name).push_back('\x1f');
        k += sid;
        Record src;
        std::int64_t extracted_at = 0;
        {
          // Parsed before anything is written: values returned by get are valid only until then.
          CMG_ASSIGN_OR_RETURN(auto raw, t.get(state::kSrc, k));
          if (!raw || !parse_source(parser, *raw, src, &extracted_at))
            return Status(Code::kStorage, "missing source copy of " + oc.name + "/" + sid);
        }
        json::object corrections;
        {
          CMG_ASSIGN_OR_RETURN(auto raw, t.get(state::kQueue, k));
          json::object qitem;
          if (raw) {
            if (!parse_object_into(parser, *raw, qitem))
              return Status(Code::kStorage, "corrupt value in state database 'queue'");
            if (auto* c = qitem.if_contains("corrections"); c && c->is_object()) corrections = std::move(c->get_object());
          }
        }
        CMG_RETURN_IF_ERROR(map_record(*this, pass, batch, t, k, src, extracted_at, mapped_at, corrections, lookup, ctx)
                                .status());
      }
      return read_candidate_keys(t, oc, batch);
    }));
    CMG_RETURN_IF_ERROR(batch.apply(pass));
    if (ctx.opts->progress) ctx.opts->progress({oc.name, "map", static_cast<std::int64_t>(end), static_cast<std::int64_t>(ids.size())});
  }

  // The ids are not needed any more; their memory is, while the deduplicator resolves.
  std::vector<std::string>().swap(ids);

  // In a dry run's scratch state `records` holds no status of this object when phase 2 starts (its
  // extract stored the records it mapped in `mapped`). Phase 2 puts the statuses in the order of
  // the groups' primaries, so they go at the end of the database, where LMDB fills pages instead
  // of splitting them in half. The other members of a merged group sort anywhere: their statuses
  // are put after the last chunk (on every way out), so that one early member with a large id does
  // not turn every later put into an insert in the middle.
  const bool defer_members = fused != nullptr;
  std::vector<std::pair<std::string, std::string>> deferred, chunk_deferred;
  auto phase2 = [&]() -> Status {
    // Phase 2: groups → plans, a chunk of groups per transaction. Groups are streamed out of the
    // deduplicator so that only one chunk is held at a time.
    auto rule = merge_rule_for(oc, oc.skip_unchanged);
    std::int64_t planned_groups = 0;
    // Plans groups[0, end).
    auto plan_chunk = [&](const std::vector<DedupGroup>& groups, const std::size_t end) -> Status {
      const std::size_t start = 0;
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
      // When this chunk was deduplicated and validated (one clock read per chunk).
      const std::int64_t decided_at = state::stamp_ms();
      CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
        chunk_deferred.clear();  // the body runs again when the map grows
        std::string k, status_value;
        for (std::size_t gi = start; gi < end; ++gi) {
          const auto& g = groups[gi];
          if (g.kind == GroupKind::kSingle && g.decision == DestinationDecision::kNew && g.members.size() == 1 &&
              g.members.front().linked_by.empty()) {
            // A record that stays alone and is created as mapped (the common case): its plan is
            // the one the general path below would store, so it is not stored but derived from the
            // mapped value when read (state::load_plan). Prevalidated in phase 1 ("ready"): mapped
            // in this pass by map_record, valid as a create, without the idempotency property.
            const std::string& id = g.members.front().id;
            if (prevalidate && (not_ready.empty() || !not_ready.count(id))) {
              k.assign(oc.name).push_back('\x1f');
              k += id;
              const ObjectSchema* os = nullptr;
              if (oc.route_by.empty()) {
                os = dst_schema->object(oc.destination);
              } else {
                // Routed: the destination object is the mapped value's first member.
                CMG_ASSIGN_OR_RETURN(auto raw, t.get(state::kMapped, k));
                std::string_view dobj;
                if (raw && state::mapped_destination(*raw, &dobj)) os = dst_schema->object(std::string(dobj));
              }
              if (os) {
                status_value.clear();
                state::append_planned_as_mapped_value(status_value, id, decided_at, os->id_property);
                CMG_RETURN_IF_ERROR(t.put(state::kRecords, k, status_value));
                continue;
              }
            }
          }
          std::vector<Record> members;
          json::value front_translations, front_defaults, front_dropped;
          std::string dobj;
          std::int64_t extracted_at = 0, mapped_at = 0;  // of the group: its last member's
          for (const auto& mem : g.members) {
            json::object mj;
            {
              CMG_ASSIGN_OR_RETURN(auto raw, t.get(state::kMapped, key_of({oc.name, mem.id})));
              if (!raw) return Status(Code::kStorage, "missing mapped copy of " + oc.name + "/" + mem.id);
              if (!parse_object_into(parser, *raw, mj)) return Status(Code::kStorage, "corrupt value in state database 'mapped'");
            }
            if (const auto* x = mj.if_contains("x"); x && x->is_int64()) extracted_at = std::max(extracted_at, x->get_int64());
            if (const auto* m = mj.if_contains("m"); m && m->is_int64()) mapped_at = std::max(mapped_at, m->get_int64());
            Record r;
            r.object = str(mj, "o");
            r.id = mem.id;
            r.fields = std::move(mj.at("fields").get_object());
            r.updated_at = mj.at("u").to_number<std::int64_t>();
            if (members.empty()) {
              front_translations = std::move(mj.at("translations"));
              front_defaults = std::move(mj.at("defaults"));
              front_dropped = std::move(mj.at("dropped"));
            }
            if (dobj.empty()) dobj = r.object;
            members.push_back(std::move(r));
          }
          const std::string primary = g.members.front().id;
          json::array member_ids;
          for (const auto& mem : g.members) member_ids.push_back(json::string(mem.id));
          auto queue_all = [&](const std::vector<Problem>& ps, const std::string& stage, json::object extra) -> Status {
            // The steps the group got through, the one that queued it included.
            extra["stages"] = state::stages_json(stage == "validate" ? 4 : 3, extracted_at, mapped_at, decided_at, decided_at);
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
          plan["translations"] = std::move(front_translations);
          plan["defaults"] = std::move(front_defaults);
          plan["dropped"] = std::move(front_dropped);
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
          plan["stages"] = state::stages_json(4, extracted_at, mapped_at, decided_at, decided_at);
          CMG_RETURN_IF_ERROR(put_json(t, state::kPlans, key_of({oc.name, primary}), plan));
          const std::string planned = state::planned_value(primary);
          for (const auto& mem : g.members) {
            if (defer_members && mem.id != primary) {
              chunk_deferred.emplace_back(key_of({oc.name, mem.id}), planned);
              continue;
            }
            CMG_RETURN_IF_ERROR(t.put(state::kRecords, key_of({oc.name, mem.id}), planned));
          }
        }
        return Status::ok();
      }));
      for (auto& d : chunk_deferred) deferred.push_back(std::move(d));
      planned_groups += static_cast<std::int64_t>(end);
      if (ctx.opts->progress) ctx.opts->progress({oc.name, "dedup", planned_groups, -1});
      return Status::ok();
    };

    // chunk[0, n) is the chunk being filled; its elements are assigned over from one chunk to the
    // next, so that their vectors and strings keep their memory (a group per source record).
    std::vector<DedupGroup> chunk;
    std::size_t n = 0;
    auto slot = [&]() -> DedupGroup& {
      if (n == chunk.size()) chunk.emplace_back();
      return chunk[n++];
    };
    if (oc.dedup_none) {
      for (auto& id : mapped_ids) {
        DedupGroup& g = slot();
        g = DedupGroup{};
        g.members.push_back({std::move(id), 0, ""});
        if (n >= plan_batch) {
          CMG_RETURN_IF_ERROR(plan_chunk(chunk, n));
          n = 0;
        }
      }
    } else {
      CMG_RETURN_IF_ERROR(dd.resolve([&](const DedupGroup& g) -> Status {
        slot() = g;
        if (n < plan_batch) return Status::ok();
        Status st = plan_chunk(chunk, n);
        n = 0;
        return st;
      }));
    }
    if (n > 0) CMG_RETURN_IF_ERROR(plan_chunk(chunk, n));
    return Status::ok();
  };
  const Status planned = phase2();
  // In chunks: each put lands on a page of its own, and LMDB holds a transaction's dirty pages in
  // memory (and keeps them for reuse after it).
  std::sort(deferred.begin(), deferred.end());
  Status flushed;
  for (std::size_t from = 0; from < deferred.size() && flushed.is_ok(); from += plan_batch) {
    flushed = env->write([&](Txn& t) -> Status {
      for (std::size_t i = from; i < deferred.size() && i < from + plan_batch; ++i)
        CMG_RETURN_IF_ERROR(t.put(state::kRecords, deferred[i].first, deferred[i].second));
      return Status::ok();
    });
  }
  return planned.is_ok() ? flushed : planned;
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
    store::EnvOptions eo = state::env_options();
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
    // A dry run starts from an empty scratch state: its extract maps what it reads (MapPass).
    std::unique_ptr<MapPass> fused;
    if (opts.dry_run && !reprocess && !delta) {
      CMG_ASSIGN_OR_RETURN(fused, begin_map_pass(oc));
    }
    CMG_ASSIGN_OR_RETURN(stop, extract(oc, ctx, fused.get()));
    if (stop != StepResult::kContinue) {
      if (fused) CMG_RETURN_IF_ERROR(settle_fused(*env, oc));
      break;
    }
    if (delta) {
      CMG_ASSIGN_OR_RETURN(stop, delta_object(oc, ctx));
      if (stop != StepResult::kContinue) break;
    }
    if (reprocess) CMG_RETURN_IF_ERROR(release_for_reprocess(oc, ctx));
    CMG_RETURN_IF_ERROR(plan_object(oc, ctx, fused.get()));
    fused.reset();
    if (opts.dry_run) continue;
    CMG_ASSIGN_OR_RETURN(stop, write_object(oc, ctx));
    if (stop != StepResult::kContinue) break;
  }

  std::string forced;
  if (stop == StepResult::kPaused) forced = "paused";
  else if (stop == StepResult::kHalted) forced = "halted";
  // Not "running" any more (report() would take that for a live run): the counts decide.
  if (forced.empty()) CMG_RETURN_IF_ERROR(set_run_state("incomplete", ""));
  CMG_ASSIGN_OR_RETURN(Report r, report(forced));
  if (r.complete) CMG_RETURN_IF_ERROR(set_run_state("complete", ""));
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
