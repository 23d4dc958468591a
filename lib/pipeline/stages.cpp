// Stages composed by hand (include/crmmigrate/pipeline/stages.hpp): a thin layer over the core
// classes (Mapper, Deduplicator, SchemaValidator, MergeRule) and the state layout of Migration.
#include "crmmigrate/pipeline/stages.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>
#include <unordered_map>

#include "crmmigrate/core/dedup.hpp"
#include "crmmigrate/core/time.hpp"
#include "crmmigrate/store/lmdb_env.hpp"
#include "state_internal.hpp"

namespace cmg::stages {

namespace json = boost::json;
using state::get_json;
using state::put_json;
using state::str;
using store::key_of;
using store::Txn;

const char* action_name(Action action) noexcept {
  switch (action) {
    case Action::kCreate: return "create";
    case Action::kMerge: return "merge";
    case Action::kFolded: return "folded";
    case Action::kSkip: return "skip";
    case Action::kQueue: return "queue";
  }
  return "unknown";
}

namespace {

// Normalised dedup key values per level of one record's destination fields (dedup_key_values,
// as Migration computes them, so both find the same matches).
std::vector<std::vector<std::string>> dedup_values(const ObjectConfig& oc, const PhoneNormalizer& phones,
                                                   const std::map<std::string, std::shared_ptr<Normalizer>>& custom,
                                                   const json::object& fields, const std::string& external_id) {
  std::vector<const Normalizer*> plugins;
  for (const auto& k : oc.dedup) {
    auto it = custom.find(k.name);
    plugins.push_back(it == custom.end() ? nullptr : it->second.get());
  }
  std::vector<std::vector<std::string>> out;
  dedup_key_values(oc, phones, custom.empty() ? nullptr : plugins.data(), fields, external_id, out);
  return out;
}

Item queued(Item item, std::vector<Problem> problems) {
  item.action = Action::kQueue;
  item.problems = std::move(problems);
  return item;
}

}  // namespace

// ---- Extractor ----

Extractor::Extractor(std::shared_ptr<Source> source, std::string source_object, ExtractorOptions options)
    : source_(std::move(source)), object_(std::move(source_object)), options_(std::move(options)) {}

Status Extractor::open() {
  if (reader_ || done_) return Status::ok();
  if (!source_) return invalid_argument("Extractor: no source");
  CMG_ASSIGN_OR_RETURN(reported_, source_->count(object_));
  ReadOptions ro;
  ro.batch_size = std::max<std::size_t>(1, options_.batch_size);
  CMG_ASSIGN_OR_RETURN(reader_, source_->read(object_, ro));
  return Status::ok();
}

Result<bool> Extractor::next(RecordBatch& out) {
  out.clear();
  if (done_) return false;
  CMG_RETURN_IF_ERROR(open());
  CMG_ASSIGN_OR_RETURN(bool more, reader_->next(out));
  if (!more) {
    done_ = true;
    reader_.reset();
    out.clear();
    return false;
  }
  read_ += static_cast<std::int64_t>(out.size());
  return true;
}

std::int64_t Extractor::expected() const noexcept {
  return options_.expected_count ? *options_.expected_count : reported_;
}

Status Extractor::check_count() const {
  std::int64_t want = expected();
  if (want < 0 || want == read_) return Status::ok();
  return invalid_argument(object_ + ": read " + std::to_string(read_) + " records, expected " + std::to_string(want) +
                          (options_.expected_count ? " (configured)" : " (reported by the source)"));
}

// ---- Mapper ----

struct Mapper::Impl {
  ObjectConfig object;
  Schema destination;
  Schema source;
  OwnerResolver owners;
  ::cmg::Mapper mapper;  // borrows the members above: declared last
  Impl(ObjectConfig o, Schema d, Schema s, const OwnersConfig& oc)
      : object(std::move(o)),
        destination(std::move(d)),
        source(std::move(s)),
        owners(source.users, destination.users, oc),
        mapper(object, destination, source.object(object.source), owners) {}
};

Mapper::Mapper(ObjectConfig object, Schema destination, Schema source, OwnersConfig owners)
    : impl_(std::make_unique<Impl>(std::move(object), std::move(destination), std::move(source), owners)) {}
Mapper::~Mapper() = default;

const ObjectConfig& Mapper::object() const noexcept { return impl_->object; }

Item Mapper::map(const Record& source, const ParentLookup& parents) const {
  static const ParentLookup kNoParents = [](const std::string&, const std::string&) { return ParentState{}; };
  MappedRecord m = impl_->mapper.map(source, json::object{}, parents ? parents : kNoParents);
  Item it;
  it.object = impl_->object.name;
  it.source = source;
  it.destination_object = std::move(m.destination_object);
  it.fields = std::move(m.fields);
  it.problems = std::move(m.problems);
  it.translations = std::move(m.translations);
  it.defaults = std::move(m.defaults);
  it.dropped = std::move(m.dropped);
  it.waits_for_parent = m.waits_for_parent;
  if (it.waits_for_parent && it.problems.empty())
    it.problems.push_back({Reason::kParentQueued, "", "", "parent",
                           "a parent record is not decided yet; map this record again once it is", ""});
  it.action = it.problems.empty() ? Action::kCreate : Action::kQueue;
  return it;
}

std::vector<Item> Mapper::map(const RecordBatch& batch, const ParentLookup& parents) const {
  std::vector<Item> out;
  out.reserve(batch.size());
  for (const auto& r : batch) out.push_back(map(r, parents));
  return out;
}

// ---- Deduplicator ----

struct Deduplicator::Impl {
  ObjectConfig object;
  PhoneNormalizer phones;
  std::map<std::string, std::shared_ptr<Normalizer>> normalizers;  // key name → plugin
  std::shared_ptr<MergeRule> rule;
  std::map<std::string, Item, bool (*)(std::string_view, std::string_view) noexcept> items{&id_less};
  struct DestEntry {
    std::string object;
    std::vector<std::vector<std::string>> keys;
  };
  std::map<std::string, DestEntry> destination;  // destination id → its key values

  Impl(ObjectConfig o, std::string region) : object(std::move(o)), phones(std::move(region)) {
    rule = std::make_shared<FieldMergeRule>(object.merge_default, object.merge_fields, object.skip_unchanged);
  }
};

Deduplicator::Deduplicator(ObjectConfig object, std::string phone_region)
    : impl_(std::make_unique<Impl>(std::move(object), std::move(phone_region))) {}
Deduplicator::~Deduplicator() = default;

void Deduplicator::set_merge_rule(std::shared_ptr<MergeRule> rule) {
  if (rule) impl_->rule = std::move(rule);
}

Status Deduplicator::set_normalizer(const std::string& key, std::shared_ptr<Normalizer> normalizer) {
  for (const auto& k : impl_->object.dedup)
    if (k.name == key) {
      impl_->normalizers[key] = std::move(normalizer);
      return Status::ok();
    }
  return not_found(impl_->object.name + ": no dedup key '" + key + "'");
}

Status Deduplicator::index_destination(Destination& destination, const Schema& schema) {
  const ObjectConfig& oc = impl_->object;
  if (oc.dedup_none || oc.dedup.empty()) return Status::ok();
  for (const auto& dobj : oc.destination_objects()) {
    const ObjectSchema* os = schema.object(dobj);
    if (!os) return config_error("destination has no object '" + dobj + "' (object " + oc.name + ")");
    ReadOptions ro;
    ro.batch_size = 1000;
    CMG_ASSIGN_OR_RETURN(auto reader, destination.list(dobj, ro));
    CMG_RETURN_IF_ERROR(for_each_batch(*reader, [&](RecordBatch& batch) {
      for (const auto& r : batch) {
        std::string ext;
        if (!os->id_property.empty())
          if (const auto* v = r.fields.if_contains(os->id_property)) ext = value_to_text(*v);
        impl_->destination[r.id] = {dobj, dedup_values(oc, impl_->phones, impl_->normalizers, r.fields, ext)};
      }
      return Status::ok();
    }));
  }
  return Status::ok();
}

Status Deduplicator::add(std::vector<Item> items) {
  for (auto& it : items) {
    std::string id = it.source.id;
    if (!impl_->items.emplace(id, std::move(it)).second)
      return Status(Code::kAlreadyExists, impl_->object.name + ": source record " + id + " added twice");
  }
  return Status::ok();
}

Result<std::vector<Item>> Deduplicator::resolve(Destination& destination) {
  const ObjectConfig& oc = impl_->object;
  auto& items = impl_->items;
  std::vector<Item> out;
  std::vector<Item> passed;  // arrived queued (mapping problems)
  std::vector<DedupGroup> groups;
  if (oc.dedup_none || oc.dedup.empty()) {
    for (auto& [id, it] : items) {
      DedupGroup g;
      g.members.push_back({id, it.source.updated_at, ""});
      if (it.action == Action::kQueue) passed.push_back(std::move(it));
      else groups.push_back(std::move(g));
    }
  } else {
    std::vector<DedupKey> levels;
    for (const auto& k : oc.dedup) levels.push_back({k.name, k.kind != DedupKeyKind::kExternalId});
    ::cmg::Deduplicator dd(levels);
    std::vector<std::string> ids;
    for (auto& [id, it] : items) {
      if (it.action == Action::kQueue) continue;
      CMG_RETURN_IF_ERROR(
          dd.add_source(id, it.source.updated_at, dedup_values(oc, impl_->phones, impl_->normalizers, it.fields, id)));
    }
    for (const auto& [did, e] : impl_->destination) CMG_RETURN_IF_ERROR(dd.add_destination(did, e.keys));
    CMG_ASSIGN_OR_RETURN(groups, dd.resolve());
    for (auto& [id, it] : items)
      if (it.action == Action::kQueue) passed.push_back(std::move(it));
  }

  // Destination records of the matched groups, read in chunks per destination object.
  std::map<std::string, std::vector<std::string>> to_read;
  for (const auto& g : groups)
    if (g.kind != GroupKind::kAmbiguous && g.decision == DestinationDecision::kMatch)
      to_read[impl_->destination[g.destination_ids[0]].object].push_back(g.destination_ids[0]);
  std::unordered_map<std::string, Record> found;
  for (auto& [dobj, ids] : to_read) {
    for (std::size_t i = 0; i < ids.size(); i += 100) {
      std::vector<std::string> chunk(ids.begin() + static_cast<std::ptrdiff_t>(i),
                                     ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), i + 100)));
      CMG_ASSIGN_OR_RETURN(auto recs, destination.read(dobj, chunk));
      for (std::size_t j = 0; j < chunk.size() && j < recs.size(); ++j)
        if (recs[j]) found.emplace(chunk[j], std::move(*recs[j]));
    }
  }

  for (const auto& g : groups) {
    std::vector<Item*> members;
    for (const auto& m : g.members) members.push_back(&items.at(m.id));
    Item& primary = *members[0];
    auto queue_all = [&](const std::vector<Problem>& ps) {
      for (Item* m : members) out.push_back(queued(std::move(*m), ps));
    };
    if (g.kind == GroupKind::kAmbiguous || g.decision == DestinationDecision::kAmbiguous) {
      std::string detail = g.detail.empty() ? "several records match on " + (g.link_key.empty() ? g.match_key : g.link_key)
                                            : g.detail;
      queue_all({{Reason::kAmbiguousMatch, "", "", "dedup:" + (g.link_key.empty() ? g.match_key : g.link_key), detail, ""}});
      continue;
    }
    // Fold the members' mapped fields into one record (primary first).
    std::vector<Record> mapped;
    for (Item* m : members) mapped.push_back(Record{m->destination_object, m->source.id, m->fields, m->source.updated_at});
    std::vector<const Record*> ptrs;
    for (const auto& r : mapped) ptrs.push_back(&r);
    Record folded = fold_group(ptrs);

    if (g.decision == DestinationDecision::kMatch) {
      const std::string& did = g.destination_ids[0];
      auto it = found.find(did);
      if (it == found.end()) {
        queue_all({{Reason::kAmbiguousMatch, "", did, "dedup:" + g.match_key,
                    "matched destination record " + did + " could not be read back", ""}});
        continue;
      }
      MergeOutcome mo;
      Status st = impl_->rule->merge({folded, it->second}, &mo);
      if (!st.is_ok()) {
        queue_all({{Reason::kMergeConflict, "", "", "merge", "merge rule " + impl_->rule->name() + ": " + st.message(), ""}});
        continue;
      }
      if (mo.kind == MergeOutcome::Kind::kConflict) {
        std::vector<Problem> ps;
        for (const auto& c : mo.conflicts)
          ps.push_back({Reason::kMergeConflict, c.field, value_to_text(c.source_value), "merge",
                        "source '" + value_to_text(c.source_value) + "' vs destination '" +
                            value_to_text(c.destination_value) + "'",
                        ""});
        if (ps.empty()) ps.push_back({Reason::kMergeConflict, "", "", "merge", mo.reason, ""});
        for (Item* m : members) m->rule = impl_->rule->name();
        queue_all(ps);
        continue;
      }
      if (mo.kind == MergeOutcome::Kind::kSkip) {
        for (Item* m : members) {
          m->action = Action::kSkip;
          m->reason = mo.reason;
          m->rule = impl_->rule->name();
          m->destination_id = did;
          m->match_key = g.match_key;
          out.push_back(std::move(*m));
        }
        continue;
      }
      primary.action = Action::kMerge;
      primary.fields = std::move(mo.changes);
      primary.destination_id = did;
      primary.destination_object = impl_->destination[did].object;
      primary.match_key = g.match_key;
      primary.rule = impl_->rule->name();
    } else {
      primary.action = Action::kCreate;
      primary.fields = std::move(folded.fields);
    }
    out.push_back(std::move(primary));
    for (std::size_t i = 1; i < members.size(); ++i) {
      Item& m = *members[i];
      m.action = Action::kFolded;
      m.merged_into = g.members[0].id;
      m.match_key = g.members[i].linked_by.empty() ? g.link_key : g.members[i].linked_by;
      m.destination_object = out.back().destination_object;
      m.destination_id = out.back().destination_id;
      out.push_back(std::move(m));
    }
  }
  for (auto& it : passed) out.push_back(std::move(it));
  items.clear();
  return out;
}

// ---- Validator ----

Validator::Validator(Schema destination) : schema_(std::move(destination)) {}

void Validator::add(std::shared_ptr<RecordValidator> validator) {
  if (validator) plugins_.push_back(std::move(validator));
}

bool Validator::validate(Item& item) const {
  if (item.action != Action::kCreate && item.action != Action::kMerge) return item.action != Action::kQueue;
  const ObjectSchema* os = schema_.object(item.destination_object);
  if (!os) {
    item.action = Action::kQueue;
    item.problems.push_back({Reason::kInvalidValue, "", item.destination_object, "object",
                             "the destination has no object '" + item.destination_object + "'", ""});
    return false;
  }
  const bool create = item.action == Action::kCreate;
  std::vector<Problem> ps;
  SchemaValidator{}.validate(*os, schema_, item.fields, create, ps);
  for (const auto& v : plugins_) v->validate(*os, schema_, item.fields, create, ps);
  if (ps.empty()) return true;
  item.action = Action::kQueue;
  item.problems = std::move(ps);
  return false;
}

void Validator::validate(std::vector<Item>& items) const {
  std::map<std::string, const Item*> primaries;
  for (auto& it : items) {
    validate(it);
    primaries[it.source.id] = &it;
  }
  for (auto& it : items) {
    if (it.action != Action::kFolded) continue;
    auto p = primaries.find(it.merged_into);
    if (p != primaries.end() && p->second->action == Action::kQueue) {
      it.action = Action::kQueue;
      it.problems = p->second->problems;
    }
  }
}

// ---- Writer ----

struct Writer::Impl {
  std::shared_ptr<Destination> dest;
  Schema schema;
  std::unique_ptr<store::Env> env;
  std::unique_ptr<store::RunLock> lock;
  WriterOptions opts;
  std::string dir;
  std::int64_t batch_seq = 0;

  // Confirms a sent (or recovered) group in transaction `t`: the primary and every member.
  Status confirm(Txn& t, const std::string& object, const std::string& primary, const std::string& dobj,
                 const std::string& did, bool created, const json::object& sent, const std::vector<std::string>& members,
                 json::object extra) {
    auto put_one = [&](const std::string& sid, const std::string& status, bool is_primary) -> Status {
      std::string k = key_of({object, sid});
      json::object rec{{"s", status}, {"d", did}, {"o", dobj}, {"p", primary}, {"t", state::now_ms()}};
      if (is_primary) rec["f"] = sent;
      CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k, rec));
      CMG_RETURN_IF_ERROR(t.put(state::kIdmap, k, did));
      json::object ev{{"action", status}, {"object", object}, {"source_id", sid}, {"destination_id", did},
                      {"destination_object", dobj}, {"run", opts.run_id}, {"batch", batch_seq}};
      if (!is_primary) ev["merged_into"] = primary;
      if (is_primary) ev["sent"] = sent;
      for (const auto& [ek, evv] : extra) ev[ek] = evv;
      CMG_ASSIGN_OR_RETURN(auto qi, get_json(t, state::kQueue, k));
      if (qi && str(*qi, "status") != "resolved" && str(*qi, "status") != "skipped") {
        (*qi)["status"] = "resolved";
        (*qi)["resolved_at"] = format_timestamp_ms(state::now_ms());
        (*qi)["destination_id"] = did;
        CMG_RETURN_IF_ERROR(put_json(t, state::kQueue, k, *qi));
      }
      return state::append_audit(t, std::move(ev));
    };
    CMG_RETURN_IF_ERROR(put_one(primary, created ? "written" : "merged", true));
    for (const auto& m : members) CMG_RETURN_IF_ERROR(put_one(m, "merged", false));
    CMG_RETURN_IF_ERROR(t.put(state::kIdmapRev, key_of({dobj, did}), key_of({object, primary})));
    return t.del(state::kIntents, key_of({object, primary})).status();
  }

  Status enqueue(Txn& t, const Item& it, const std::string& stage) {
    std::string k = key_of({it.object, it.source.id});
    CMG_ASSIGN_OR_RETURN(auto old, get_json(t, state::kQueue, k));
    json::array ps;
    for (const auto& p : it.problems) ps.push_back(problem_to_json(p));
    Reason reason = primary_reason(it.problems);
    json::object item{{"id", it.object + "/" + it.source.id},
                      {"object", it.object},
                      {"source_id", it.source.id},
                      {"reason", reason_name(reason)},
                      {"stage", stage},
                      {"problems", ps},
                      {"status", "open"},
                      {"queued_at", old && old->contains("queued_at") ? old->at("queued_at")
                                                                       : json::value(format_timestamp_ms(state::now_ms()))},
                      {"updated_at", format_timestamp_ms(state::now_ms())},
                      {"source", it.source.fields},
                      {"mapped", it.fields},
                      {"corrections", json::object{}}};
    CMG_RETURN_IF_ERROR(put_json(t, state::kQueue, k, item));
    CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k, json::object{{"s", "queued"}}));
    CMG_RETURN_IF_ERROR(t.del(state::kIntents, k).status());
    return state::append_audit(t, json::object{{"action", "queued"}, {"object", it.object}, {"source_id", it.source.id},
                                               {"reason", reason_name(reason)}, {"stage", stage}, {"problems", ps},
                                               {"run", opts.run_id}});
  }

  // Settles intents left by an interrupted write: an upsert the destination holds is confirmed now,
  // anything else is dropped (sent again by the next write()).
  Status settle_intents() {
    std::vector<std::pair<std::string, json::object>> intents;
    CMG_RETURN_IF_ERROR(env->read([&](Txn& t) {
      return t.scan(state::kIntents, "", [&](std::string_view k, std::string_view v) {
        if (auto o = state::parse_object(v)) intents.emplace_back(std::string(k), std::move(*o));
        return true;
      });
    }));
    for (auto& [k, in] : intents) {
      auto parts = store::split_key(k);
      std::string object(parts[0]), primary(parts[1]), dobj = str(in, "dest_object");
      std::optional<std::string> found;
      const ObjectSchema* os = schema.object(dobj);
      if (str(in, "kind") == "upsert" && os && !os->id_property.empty()) {
        CMG_ASSIGN_OR_RETURN(auto recs, dest->find(dobj, os->id_property, {str(in, "key")}));
        if (!recs.empty()) found = recs.front().id;
      }
      CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
        if (!found) return t.del(state::kIntents, k).status();
        json::object sent = in.contains("fields") && in.at("fields").is_object() ? in.at("fields").get_object() : json::object{};
        return confirm(t, object, primary, dobj, *found, true, sent, state::from_array(in.if_contains("members")),
                       json::object{{"recovered", true}, {"key", "idempotency_key"}});
      }));
    }
    return Status::ok();
  }
};

Writer::Writer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Writer::~Writer() = default;

const std::string& Writer::state_dir() const noexcept { return impl_->dir; }

Result<std::unique_ptr<Writer>> Writer::open(std::shared_ptr<Destination> destination, const std::string& state_dir,
                                             WriterOptions options) {
  if (!destination) return invalid_argument("Writer: no destination");
  auto impl = std::make_unique<Impl>();
  impl->dest = std::move(destination);
  impl->dir = state_dir;
  impl->opts = std::move(options);
  if (impl->opts.run_id.empty()) impl->opts.run_id = format_timestamp_ms(state::now_ms());
  impl->opts.max_attempts = std::max(1, impl->opts.max_attempts);
  CMG_ASSIGN_OR_RETURN(impl->env, store::Env::open(state_dir, state::env_options()));
  CMG_ASSIGN_OR_RETURN(impl->lock, store::RunLock::acquire(state_dir));
  CMG_ASSIGN_OR_RETURN(impl->schema, impl->dest->schema());
  CMG_RETURN_IF_ERROR(impl->settle_intents());
  return std::unique_ptr<Writer>(new Writer(std::move(impl)));
}

Result<std::optional<std::string>> Writer::destination_id(const std::string& object, const std::string& source_id) const {
  std::optional<std::string> out;
  CMG_RETURN_IF_ERROR(impl_->env->read([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto v, t.get(state::kIdmap, key_of({object, source_id})));
    if (v) out = std::string(*v);
    return Status::ok();
  }));
  return out;
}

ParentLookup Writer::parents() const {
  Impl* impl = impl_.get();
  return [impl](const std::string& object, const std::string& source_id) {
    ParentState ps;
    Status st = impl->env->read([&](Txn& t) -> Status {
      CMG_ASSIGN_OR_RETURN(auto rec, get_json(t, state::kRecords, key_of({object, source_id})));
      if (!rec) return Status::ok();
      std::string s = state::status_of(*rec), d = str(*rec, "d");
      if ((s == "written" || s == "merged" || s == "skipped") && !d.empty()) {
        ps.kind = ParentState::Kind::kConfirmed;
        ps.destination_id = d;
      } else if (s == "queued" || s == "skipped") {
        ps.kind = ParentState::Kind::kQueued;
      }
      return Status::ok();
    });
    (void)st;  // an unreadable state reads as "absent": the child is queued, never written wrongly
    return ps;
  };
}

Result<WriteCounts> Writer::write(const std::string& object, std::vector<Item>& items) {
  Impl& w = *impl_;
  WriteCounts counts;
  std::map<std::string, std::size_t> index;  // source id → position
  for (std::size_t i = 0; i < items.size(); ++i) index[items[i].source.id] = i;
  std::map<std::string, std::vector<std::string>> members;  // primary → folded members
  for (const auto& it : items) {
    if (it.action != Action::kFolded) continue;
    if (!index.count(it.merged_into))
      return invalid_argument(object + "/" + it.source.id + " is folded into " + it.merged_into +
                              ", which is not among the items written");
    members[it.merged_into].push_back(it.source.id);
  }
  // A duplicate follows its primary into the queue or out of the migration (Validator::validate
  // does this too; a caller who skipped it must not lose the member).
  for (auto& it : items) {
    if (it.action != Action::kFolded) continue;
    const Item& p = items[index[it.merged_into]];
    if (p.action == Action::kQueue) {
      it.action = Action::kQueue;
      it.problems = p.problems;
    } else if (p.action == Action::kSkip) {
      it.action = Action::kSkip;
      it.reason = p.reason;
    }
  }
  for (auto it = members.begin(); it != members.end();) {
    Action a = items[index[it->first]].action;
    it = (a == Action::kQueue || a == Action::kSkip) ? members.erase(it) : std::next(it);
  }

  // Records already decided by an earlier call keep their outcome and are not sent again.
  std::vector<bool> final_state(items.size(), false);
  CMG_RETURN_IF_ERROR(w.env->read([&](Txn& t) -> Status {
    for (std::size_t i = 0; i < items.size(); ++i) {
      CMG_ASSIGN_OR_RETURN(auto rec, get_json(t, state::kRecords, key_of({object, items[i].source.id})));
      if (!rec) continue;
      std::string s = state::status_of(*rec);
      if (s != "written" && s != "merged" && s != "skipped") continue;
      final_state[i] = true;
      items[i].destination_id = str(*rec, "d");
      if (s == "written") ++counts.written;
      else if (s == "merged") ++counts.merged;
      else ++counts.skipped;
    }
    return Status::ok();
  }));

  // Queued and skipped records, in one transaction.
  CMG_RETURN_IF_ERROR(w.env->write([&](Txn& t) -> Status {
    for (std::size_t i = 0; i < items.size(); ++i) {
      const Item& it = items[i];
      if (final_state[i]) continue;
      if (it.action == Action::kQueue) {
        CMG_RETURN_IF_ERROR(w.enqueue(t, it, "stages"));
      } else if (it.action == Action::kSkip) {
        std::string k = key_of({object, it.source.id});
        CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k,
                                     json::object{{"s", "skipped"}, {"d", it.destination_id}, {"o", it.destination_object}}));
        CMG_RETURN_IF_ERROR(state::append_audit(
            t, json::object{{"action", "skipped"}, {"object", object}, {"source_id", it.source.id},
                            {"destination_id", it.destination_id}, {"reason", it.reason}, {"rule", it.rule},
                            {"run", w.opts.run_id}}));
      }
    }
    return Status::ok();
  }));
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (final_state[i]) continue;
    if (items[i].action == Action::kQueue) ++counts.queued;
    if (items[i].action == Action::kSkip) ++counts.skipped;
  }

  // Ops to send, grouped by destination object (kMerge without changes needs no call).
  struct Op {
    std::size_t item;
    WriteOp op;
    int attempts = 0;
    bool unknown = false;
    std::string last_error;
  };
  std::map<std::string, std::vector<Op>> by_object;
  std::vector<std::size_t> no_change;
  for (std::size_t i = 0; i < items.size(); ++i) {
    Item& it = items[i];
    if (final_state[i] || (it.action != Action::kCreate && it.action != Action::kMerge)) continue;
    Op op{i, {}, 0, false, ""};
    if (it.action == Action::kCreate) {
      const ObjectSchema* os = w.schema.object(it.destination_object);
      op.op.kind = WriteOp::Kind::kUpsert;
      op.op.idempotency_key = state::idempotency_key(it.source.id);
      if (os && !os->id_property.empty()) it.fields[os->id_property] = op.op.idempotency_key;
    } else {
      if (it.fields.empty()) {
        no_change.push_back(i);
        continue;
      }
      op.op.kind = WriteOp::Kind::kUpdate;
      op.op.id = it.destination_id;
    }
    op.op.fields = it.fields;
    by_object[it.destination_object].push_back(std::move(op));
  }

  auto members_of = [&](std::size_t i) {
    auto m = members.find(items[i].source.id);
    return m == members.end() ? std::vector<std::string>{} : m->second;
  };
  auto extra_of = [&](const Item& it) {
    json::object e{{"translations", state::to_array(it.translations)}, {"defaults", state::to_array(it.defaults)},
                   {"dropped", state::to_array(it.dropped)}};
    if (!it.match_key.empty()) e["key"] = it.match_key;
    if (!it.rule.empty()) e["rule"] = it.rule;
    return e;
  };
  // After a commit: the Item and its members carry the outcome.
  auto confirmed = [&](std::size_t i, const std::string& did) {
    items[i].destination_id = did;
    if (items[i].action == Action::kCreate) ++counts.written;
    else ++counts.merged;
    for (const auto& m : members_of(i)) {
      items[index[m]].destination_id = did;
      ++counts.merged;
    }
  };
  auto queue_group = [&](Txn& t, std::size_t i, const std::vector<Problem>& ps) -> Status {
    Item copy = items[i];
    copy.problems = ps;
    CMG_RETURN_IF_ERROR(w.enqueue(t, copy, "write"));
    for (const auto& m : members_of(i)) {
      Item mc = items[index[m]];
      mc.problems = ps;
      CMG_RETURN_IF_ERROR(w.enqueue(t, mc, "write"));
    }
    return Status::ok();
  };
  auto queued_after = [&](std::size_t i, const std::vector<Problem>& ps) {
    items[i].action = Action::kQueue;
    items[i].problems = ps;
    ++counts.queued;
    for (const auto& m : members_of(i)) {
      items[index[m]].action = Action::kQueue;
      items[index[m]].problems = ps;
      ++counts.queued;
    }
  };

  if (!no_change.empty()) {
    CMG_RETURN_IF_ERROR(w.env->write([&](Txn& t) -> Status {
      for (std::size_t i : no_change)
        CMG_RETURN_IF_ERROR(w.confirm(t, object, items[i].source.id, items[i].destination_object,
                                      items[i].destination_id, false, json::object{}, members_of(i), extra_of(items[i])));
      return Status::ok();
    }));
    for (std::size_t i : no_change) confirmed(i, items[i].destination_id);
  }

  const std::size_t max_batch = std::max<std::size_t>(
      1, std::min<std::size_t>(w.opts.batch_size, static_cast<std::size_t>(std::max(1, w.dest->quota().max_batch))));
  for (auto& [dobj, ops] : by_object) {
    const ObjectSchema* os = w.schema.object(dobj);
    const bool lookup = os && !os->id_property.empty();
    for (std::size_t start = 0; start < ops.size(); start += max_batch) {
      std::vector<Op> batch(std::make_move_iterator(ops.begin() + static_cast<std::ptrdiff_t>(start)),
                            std::make_move_iterator(ops.begin() + static_cast<std::ptrdiff_t>(std::min(ops.size(), start + max_batch))));
      while (!batch.empty()) {
        // Settle unknown outcomes through the idempotency key before anything is sent again.
        std::vector<std::string> keys;
        for (const auto& o : batch)
          if (o.unknown && o.op.kind == WriteOp::Kind::kUpsert && lookup) keys.push_back(o.op.idempotency_key);
        std::map<std::string, std::string> found;
        if (!keys.empty()) {
          CMG_ASSIGN_OR_RETURN(auto recs, w.dest->find(dobj, os->id_property, keys));
          for (const auto& r : recs)
            if (const auto* v = r.fields.if_contains(os->id_property)) found.emplace(value_to_text(*v), r.id);
        }
        enum class Fate { kSend, kRecovered, kGiveUp };
        std::vector<Fate> fate(batch.size(), Fate::kSend);
        for (std::size_t j = 0; j < batch.size(); ++j) {
          const Op& o = batch[j];
          if (o.unknown && found.count(o.op.idempotency_key)) fate[j] = Fate::kRecovered;
          else if (o.attempts >= w.opts.max_attempts || (o.unknown && o.op.kind == WriteOp::Kind::kUpsert && !lookup))
            fate[j] = Fate::kGiveUp;
        }
        auto give_up_problems = [&](const Op& o) {
          return std::vector<Problem>{{Reason::kRetriesExhausted, "", "", "write",
                                       "gave up after " + std::to_string(o.attempts) + " attempts: " + o.last_error, ""}};
        };
        if (std::any_of(fate.begin(), fate.end(), [](Fate f) { return f != Fate::kSend; })) {
          CMG_RETURN_IF_ERROR(w.env->write([&](Txn& t) -> Status {
            for (std::size_t j = 0; j < batch.size(); ++j) {
              const Item& it = items[batch[j].item];
              if (fate[j] == Fate::kRecovered)
                CMG_RETURN_IF_ERROR(w.confirm(t, object, it.source.id, dobj, found.at(batch[j].op.idempotency_key),
                                              it.action == Action::kCreate, batch[j].op.fields, members_of(batch[j].item),
                                              json::object{{"recovered", true}}));
              else if (fate[j] == Fate::kGiveUp)
                CMG_RETURN_IF_ERROR(queue_group(t, batch[j].item, give_up_problems(batch[j])));
            }
            return Status::ok();
          }));
          std::vector<Op> rest;
          for (std::size_t j = 0; j < batch.size(); ++j) {
            if (fate[j] == Fate::kRecovered) confirmed(batch[j].item, found.at(batch[j].op.idempotency_key));
            else if (fate[j] == Fate::kGiveUp) queued_after(batch[j].item, give_up_problems(batch[j]));
            else rest.push_back(std::move(batch[j]));
          }
          batch = std::move(rest);
          if (batch.empty()) break;
        }

        // (1) intents, committed before the batch is sent.
        ++w.batch_seq;
        CMG_RETURN_IF_ERROR(w.env->write([&](Txn& t) -> Status {
          for (const auto& o : batch) {
            const Item& it = items[o.item];
            CMG_RETURN_IF_ERROR(put_json(
                t, state::kIntents, key_of({object, it.source.id}),
                json::object{{"batch", w.batch_seq}, {"run", w.opts.run_id}, {"key", o.op.idempotency_key},
                             {"kind", o.op.kind == WriteOp::Kind::kUpsert ? "upsert" : "update"}, {"dest_object", dobj},
                             {"dest_id", o.op.id}, {"fields", o.op.fields},
                             {"members", state::to_array(members_of(o.item))}, {"at", state::now_ms()}}));
          }
          return Status::ok();
        }));
        // (2) send.
        std::vector<WriteOp> wops;
        for (const auto& o : batch) wops.push_back(o.op);
        auto results = w.dest->write(dobj, wops);
        counts.sent += static_cast<std::int64_t>(wops.size());
        std::vector<WriteResult> res;
        if (results.is_ok()) {
          res = std::move(*results);
        } else {
          // The connector cannot say how far it got: every op has an unknown outcome.
          res.resize(batch.size());
          for (auto& r : res) {
            r.retryable = true;
            r.outcome_unknown = true;
            r.message = results.status().message();
          }
        }
        // (3) confirmations, one transaction (the body only decides; effects follow the commit).
        enum class Next { kConfirmed, kRetry, kQueued };
        std::vector<Next> next(batch.size(), Next::kQueued);
        std::vector<std::vector<Problem>> problems(batch.size());
        CMG_RETURN_IF_ERROR(w.env->write([&](Txn& t) -> Status {
          for (std::size_t j = 0; j < batch.size(); ++j) {
            const Item& it = items[batch[j].item];
            const WriteResult r = j < res.size() ? res[j] : WriteResult{};
            problems[j].clear();
            if (r.outcome != WriteResult::Outcome::kFailed) {
              CMG_RETURN_IF_ERROR(w.confirm(t, object, it.source.id, dobj, r.id, it.action == Action::kCreate,
                                            batch[j].op.fields, members_of(batch[j].item), extra_of(it)));
              next[j] = Next::kConfirmed;
              continue;
            }
            if (r.retryable) {
              next[j] = Next::kRetry;
              continue;
            }
            for (const auto& fe : r.errors)
              problems[j].push_back({Reason::kRejectedByDestination, fe.field, fe.value, fe.code, fe.message, ""});
            if (r.status == 409 && !r.existing_id.empty())
              problems[j].push_back({Reason::kRejectedByDestination, "", r.existing_id, "409",
                                     "the destination already holds this record as " + r.existing_id +
                                         "; index the destination again and deduplicate",
                                     ""});
            if (problems[j].empty())
              problems[j].push_back({Reason::kRejectedByDestination, "", "", std::to_string(r.status), r.message, ""});
            CMG_RETURN_IF_ERROR(queue_group(t, batch[j].item, problems[j]));
            next[j] = Next::kQueued;
          }
          return Status::ok();
        }));
        std::vector<Op> retry;
        std::int64_t wait_ms = 0;
        for (std::size_t j = 0; j < batch.size(); ++j) {
          const WriteResult r = j < res.size() ? res[j] : WriteResult{};
          switch (next[j]) {
            case Next::kConfirmed: confirmed(batch[j].item, r.id); break;
            case Next::kQueued: queued_after(batch[j].item, problems[j]); break;
            case Next::kRetry: {
              Op o = std::move(batch[j]);
              ++o.attempts;
              o.unknown = o.unknown || r.outcome_unknown;
              o.last_error = r.message.empty() ? "status " + std::to_string(r.status) : r.message;
              std::int64_t backoff = std::min(w.opts.backoff_cap_ms, w.opts.backoff_ms << std::min(o.attempts - 1, 20));
              wait_ms = std::max({wait_ms, backoff, static_cast<std::int64_t>(r.retry_after_ms)});
              retry.push_back(std::move(o));
              break;
            }
          }
        }
        batch = std::move(retry);
        if (!batch.empty() && wait_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
      }
    }
  }
  return counts;
}

// ---- Reconciler ----

Reconciler::Reconciler(std::shared_ptr<Destination> destination, const Writer& writer)
    : destination_(std::move(destination)), writer_(writer) {}

Result<Reconciliation> Reconciler::reconcile(const std::string& object, std::int64_t source_count) const {
  Reconciliation out;
  struct Sent {
    std::string sid, did;
    json::object fields;
  };
  std::map<std::string, std::vector<Sent>> by_dest;
  CMG_RETURN_IF_ERROR(writer_.impl_->env->read([&](Txn& t) -> Status {
    CMG_RETURN_IF_ERROR(t.scan(state::kRecords, key_of({object, ""}), [&](std::string_view k, std::string_view v) {
      auto rec = state::parse_object(v);
      if (!rec) return true;
      std::string s = state::status_of(*rec);
      if (s == "written") ++out.counts.written;
      else if (s == "merged") ++out.counts.merged;
      else if (s == "queued") ++out.counts.queued;
      else if (s == "skipped") ++out.counts.skipped;
      const auto* f = rec->if_contains("f");
      if ((s == "written" || s == "merged") && f && f->is_object() && !f->get_object().empty())
        by_dest[str(*rec, "o")].push_back({std::string(store::split_key(k)[1]), str(*rec, "d"), f->get_object()});
      return true;
    }));
    return t.scan(state::kQueue, key_of({object, ""}), [&](std::string_view, std::string_view v) {
      auto qi = state::parse_object(v);
      if (qi && (str(*qi, "status") == "open" || str(*qi, "status") == "fixed")) ++out.queue_open;
      return true;
    });
  }));
  const std::int64_t decided = out.counts.written + out.counts.merged + out.counts.queued + out.counts.skipped;
  out.counts.source = std::max(source_count, decided);
  out.counts.pending = out.counts.source - decided;

  for (auto& [dobj, sent] : by_dest) {
    for (std::size_t i = 0; i < sent.size(); i += 100) {
      std::vector<std::string> ids;
      for (std::size_t j = i; j < std::min(sent.size(), i + 100); ++j) ids.push_back(sent[j].did);
      CMG_ASSIGN_OR_RETURN(auto got, destination_->read(dobj, ids));
      for (std::size_t j = 0; j < ids.size(); ++j) {
        const Sent& s = sent[i + j];
        if (j >= got.size() || !got[j]) {
          out.discrepancies.push_back(json::object{{"source_id", s.sid}, {"destination_id", s.did}, {"kind", "missing"}});
          continue;
        }
        json::array diffs;
        for (const auto& [f, v] : s.fields) {
          const json::value* now = got[j]->fields.if_contains(f);
          if (!state::same_stored_value(v, now))
            diffs.push_back(json::object{{"field", f}, {"sent", v}, {"found", now ? *now : json::value(nullptr)}});
        }
        if (!diffs.empty())
          out.discrepancies.push_back(json::object{{"source_id", s.sid}, {"destination_id", s.did},
                                                   {"kind", "field_differs"}, {"fields", std::move(diffs)}});
      }
    }
  }
  out.readback_mismatches = static_cast<std::int64_t>(out.discrepancies.size());
  out.complete = source_count == decided && out.counts.pending == 0 && out.counts.queued == 0 && out.queue_open == 0 &&
                 out.readback_mismatches == 0;
  return out;
}

}  // namespace cmg::stages
