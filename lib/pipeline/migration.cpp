#include "crmmigrate/pipeline/migration.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include <boost/json.hpp>

#include "crmmigrate/core/dedup.hpp"
#include "crmmigrate/core/mapping.hpp"
#include "crmmigrate/core/merge.hpp"
#include "crmmigrate/core/normalize.hpp"
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
using state::str;
using store::key_of;
using store::Txn;

// ---------------------------------------------------------------------------------------------
// Report

json::object Report::to_json() const {
  json::object o;
  o["state"] = state;
  o["complete"] = complete;
  json::object objs;
  for (const auto& [name, c] : objects)
    objs[name] = json::object{{"source", c.source}, {"written", c.written}, {"merged", c.merged},
                              {"queued", c.queued},  {"skipped", c.skipped}, {"pending", c.pending}};
  o["objects"] = std::move(objs);
  o["queue_open"] = queue_open;
  o["readback_mismatches"] = readback_mismatches;
  if (!discrepancies.empty()) {
    json::array d;
    for (const auto& x : discrepancies) d.push_back(x);
    o["discrepancies"] = std::move(d);
  }
  if (!alerts.empty()) {
    json::array a;
    for (const auto& x : alerts) a.push_back(json::string(x));
    o["alerts"] = std::move(a);
  }
  if (!message.empty()) o["message"] = message;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Migration

Migration::Migration(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Migration::~Migration() = default;

const MigrationConfig& Migration::config() const { return impl_->cfg; }

void Migration::set_alert_callback(std::function<void(const Alert&)> cb) { impl_->alert_cb = std::move(cb); }

Result<std::unique_ptr<Migration>> Migration::open(MigrationConfig config, std::shared_ptr<Source> source,
                                                   std::shared_ptr<Destination> destination,
                                                   std::size_t initial_map_size) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = std::move(config);
  if (!source) {
    CMG_ASSIGN_OR_RETURN(source, make_source(impl->cfg.source, impl->cfg.base_dir));
  }
  if (!destination) {
    CMG_ASSIGN_OR_RETURN(destination, make_destination(impl->cfg.destination, impl->cfg.base_dir));
  }
  impl->source = std::move(source);
  // Reads retry transient failures behind one Retry-After gate; writes retry in write.cpp.
  impl->dest = with_retries(std::move(destination));
  // The map only reserves address space (the file grows as pages are used), so start large.
  impl->map_size = initial_map_size ? initial_map_size : (std::size_t{1} << 30);
  store::EnvOptions eo = state::env_options();
  eo.initial_map_size = impl->map_size;
  CMG_ASSIGN_OR_RETURN(impl->env, store::Env::open(impl->cfg.state_dir, eo));
  // Crash harness only (CMG_CRASH_POINT=commit / CMG_COMMIT_COUNT_FILE): no hook is installed otherwise.
  arm_commit_crash_point(*impl->env);
  return std::unique_ptr<Migration>(new Migration(std::move(impl)));
}

Result<json::object> Migration::plan(bool approve, const std::string& reviewer) {
  return impl_->plan(approve, reviewer);
}

Result<Report> Migration::run(const RunOptions& opts) { return impl_->run(opts, false, false); }
Result<Report> Migration::reprocess(const RunOptions& opts) { return impl_->run(opts, true, false); }
Result<Report> Migration::delta(const RunOptions& opts) { return impl_->run(opts, false, true); }
Result<Report> Migration::status() { return impl_->report(""); }
Result<Report> Migration::reconcile(const RunOptions& opts) { return impl_->reconcile(opts); }

Result<std::vector<json::object>> Migration::queue_list(const QueueFilter& f, std::size_t offset, std::size_t limit) {
  return impl_->queue_list(f, offset, limit);
}
Result<std::int64_t> Migration::queue_fix(const QueueFilter& f, const json::object& set, const std::string& reviewer,
                                          const std::string& note) {
  return impl_->queue_fix(f, set, reviewer, note);
}
Result<std::int64_t> Migration::queue_skip(const QueueFilter& f, const std::string& reviewer, const std::string& note) {
  return impl_->queue_skip(f, reviewer, note);
}
Status Migration::set_merge_rule(const std::string& object, std::shared_ptr<MergeRule> rule) {
  if (!impl_->cfg.object(object)) return not_found("no object named '" + object + "' in the config");
  if (!rule) return invalid_argument("set_merge_rule: rule is null");
  impl_->merge_rules[object] = std::move(rule);
  return Status::ok();
}

Status Migration::add_validator(const std::string& object, std::shared_ptr<RecordValidator> validator) {
  if (!object.empty() && !impl_->cfg.object(object)) return not_found("no object named '" + object + "' in the config");
  if (!validator) return invalid_argument("add_validator: validator is null");
  impl_->validators.emplace_back(object, std::move(validator));
  return Status::ok();
}

Status Migration::set_normalizer(const std::string& object, const std::string& key,
                                 std::shared_ptr<Normalizer> normalizer) {
  const ObjectConfig* oc = impl_->cfg.object(object);
  if (!oc) return not_found("no object named '" + object + "' in the config");
  bool known = false;
  for (const auto& k : oc->dedup) known = known || k.name == key;
  if (!known) return not_found("object '" + object + "' has no dedup key named '" + key + "'");
  if (!normalizer) return invalid_argument("set_normalizer: normalizer is null");
  impl_->normalizers[{object, key}] = std::move(normalizer);
  return Status::ok();
}

std::shared_ptr<const MergeRule> Migration::Impl::merge_rule_for(const ObjectConfig& oc, bool skip_unchanged) const {
  auto it = merge_rules.find(oc.name);
  if (it != merge_rules.end()) return it->second;
  return std::make_shared<FieldMergeRule>(oc.merge_default, oc.merge_fields, skip_unchanged);
}

void Migration::Impl::validate(const ObjectConfig& oc, const ObjectSchema& os, const json::object& fields,
                               bool is_create, std::vector<Problem>& problems) const {
  SchemaValidator().validate(os, *dst_schema, fields, is_create, problems);
  for (const auto& [obj, v] : validators)
    if (obj.empty() || obj == oc.name) v->validate(os, *dst_schema, fields, is_create, problems);
}

Status Migration::audit(const std::string& record, const std::function<bool(const json::object&)>& fn) {
  return impl_->audit(record, fn);
}

}  // namespace cmg
