// Private: the state and stage functions behind Migration (lib/pipeline/*.cpp).
#pragma once

#include <deque>
#include <map>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/core/config.hpp"
#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/mapping.hpp"
#include "crmmigrate/core/merge.hpp"
#include "crmmigrate/core/validate.hpp"
#include "crmmigrate/core/normalize.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "crmmigrate/store/lmdb_env.hpp"

namespace cmg {

/// Outcome of one run step; anything but kContinue stops the run with that state.
enum class StepResult { kContinue, kPaused, kHalted, kLimit, kCancelled };

/// Per-call context of run/reprocess.
struct RunCtx {
  const RunOptions* opts = nullptr;
  bool reprocess = false;
  std::string run_id;
  std::int64_t written_this_call = 0;
  std::deque<bool> window;  // recent write outcomes, true = failure (halt accounting)
  std::vector<std::string> alerts;
  std::int64_t batch_seq = 0;
};

struct Migration::Impl {
  MigrationConfig cfg;
  std::shared_ptr<Source> source;
  std::shared_ptr<Destination> dest;
  std::unique_ptr<store::Env> env;
  std::function<void(const Alert&)> alert_cb;
  std::optional<Schema> src_schema, dst_schema;
  std::unique_ptr<OwnerResolver> owners;
  std::unique_ptr<PhoneNormalizer> phones;
  std::size_t map_size = 0;  // initial LMDB map size of the state (and of a dry run's scratch state)

  // Plugins (migration.cpp). Objects without a registered rule use the config's field rules.
  std::map<std::string, std::shared_ptr<MergeRule>> merge_rules;
  std::vector<std::pair<std::string, std::shared_ptr<RecordValidator>>> validators;  // object ("" = all)
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Normalizer>> normalizers;  // (object, key)
  /// The merge rule of `oc`: the registered one, or the config's field rules.
  std::shared_ptr<const MergeRule> merge_rule_for(const ObjectConfig& oc, bool skip_unchanged) const;
  /// Schema validation plus every registered validator for `oc`.
  void validate(const ObjectConfig& oc, const ObjectSchema& os, const boost::json::object& fields, bool is_create,
                std::vector<Problem>& problems) const;

  // plan.cpp
  Status load_schemas();
  std::string signoff_hash() const;
  Result<boost::json::object> plan(bool approve, const std::string& reviewer);
  /// Blocking gaps of the plan (unmapped source fields, unknown or read-only targets, uncovered
  /// required fields); empty when a run may start.
  std::vector<std::string> blocking_gaps(boost::json::object* detail);

  // run.cpp
  Result<Report> run(const RunOptions& opts, bool reprocess, bool delta);
  Status record_config_version(std::int64_t* version);
  Status resolve_intents(RunCtx& ctx);
  Result<StepResult> extract(const ObjectConfig& oc, RunCtx& ctx);
  Status release_for_reprocess(const ObjectConfig& oc, RunCtx& ctx);
  // delta.cpp
  Result<StepResult> delta_object(const ObjectConfig& oc, RunCtx& ctx);
  Status index_destination(const ObjectConfig& oc);
  Status plan_object(const ObjectConfig& oc, RunCtx& ctx);
  Result<StepResult> write_object(const ObjectConfig& oc, RunCtx& ctx);
  std::vector<std::vector<std::string>> dedup_keys(const ObjectConfig& oc, const boost::json::object& fields,
                                                   const std::string& external_id) const;
  ParentState parent_state(store::Txn& t, const std::string& object, const std::string& source_id);
  void raise_alert(RunCtx* ctx, const Alert& a);
  Status set_run_state(const std::string& state, const std::string& reason);

  // report.cpp
  Result<Report> report(const std::string& forced_state);
  Result<Report> reconcile(const RunOptions& opts);

  // queue.cpp
  Result<std::vector<boost::json::object>> queue_list(const QueueFilter& f, std::size_t offset, std::size_t limit);
  Result<std::int64_t> queue_fix(const QueueFilter& f, const boost::json::object& set, const std::string& reviewer,
                                 const std::string& note);
  Result<std::int64_t> queue_skip(const QueueFilter& f, const std::string& reviewer, const std::string& note);
  Status audit(const std::string& record, const std::function<bool(const boost::json::object&)>& fn);
  /// Puts (or replaces) the queue item of a record and marks the record queued, with an audit event.
  Status enqueue(store::Txn& t, const std::string& object, const std::string& source_id,
                 const std::vector<Problem>& problems, const std::string& stage, boost::json::object extra,
                 RunCtx* ctx);
};

bool queue_item_matches(const boost::json::object& item, const QueueFilter& f);

}  // namespace cmg
