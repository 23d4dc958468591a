// Private: the state and stage functions behind Migration (lib/pipeline/*.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
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

// ---- waiting and retrying (retry.cpp) ----

/// Time source of the pipeline's waits (backoff, Retry-After). The default is the real clock
/// (steady time, std::this_thread::sleep_for); tests install a fake one that records sleeps and
/// advances its time instead of sleeping.
struct Clock {
  virtual ~Clock() = default;
  virtual std::int64_t now_ms() = 0;
  virtual void sleep_ms(std::int64_t ms) = 0;
};

/// The clock every run uses. set_pipeline_clock(nullptr) restores the real clock. Not to be
/// changed while a run is in progress.
std::shared_ptr<Clock> pipeline_clock();
void set_pipeline_clock(std::shared_ptr<Clock> clock);

struct RetryPolicy {
  int max_attempts = 5;          // per op (writes) or per call (reads), the first one included
  std::int64_t base_ms = 200;    // backoff before the 2nd attempt; doubles each time
  std::int64_t cap_ms = 30000;
};

/// Exponential backoff with "equal jitter" before attempt `attempt` + 1 (attempt >= 1):
/// d = min(cap, base * 2^(attempt-1)), then d/2 + random % (d/2 + 1).
std::int64_t backoff_ms(const RetryPolicy& p, int attempt, std::uint64_t random);

/// A Destination that (1) never sends a request before the destination's Retry-After has expired —
/// one gate for every call, set from write results (WriteResult::retry_after_ms) and from failed
/// calls (Destination::last_retry_after_ms) — and (2) retries schema/count/list/find/read, and every
/// page of a list reader, on Code::kUnavailable with exponential backoff and jitter. write() is sent
/// once (through the gate): write.cpp retries writes itself, because only it can resolve an unknown
/// outcome through the idempotency key. Used by one thread at a time (the gate is not locked).
/// Always held by a shared_ptr (see with_retries below): its list readers keep it alive.
class RetryingDestination final : public Destination, public std::enable_shared_from_this<RetryingDestination> {
 public:
  RetryingDestination(std::shared_ptr<Destination> inner, RetryPolicy policy);
  const std::shared_ptr<Destination>& inner() const { return inner_; }
  const RetryPolicy& policy() const { return policy_; }

  Result<Schema> schema() override;
  Result<std::int64_t> count(std::string_view object) override;
  Result<std::unique_ptr<RecordReader>> list(std::string_view object, const ReadOptions& opts) override;
  Result<std::vector<Record>> find(std::string_view object, std::string_view field,
                                   const std::vector<std::string>& values) override;
  Result<std::vector<WriteResult>> write(std::string_view object, const std::vector<WriteOp>& ops) override;
  Result<std::vector<std::optional<Record>>> read(std::string_view object, const std::vector<std::string>& ids) override;
  Quota quota() const override;
  std::int64_t last_retry_after_ms() const override;
  /// Not retried: a refused credential does not become valid by asking again.
  Status check_access() override { return inner_->check_access(); }

  /// Sleeps (pipeline clock) until the gate opens.
  void wait_turn();
  /// Closes the gate until now + `ms` (a later deadline wins).
  void defer(std::int64_t ms);
  /// Calls retried by this wrapper (reads) since it was made.
  std::uint64_t retries() const { return retries_; }

  /// Runs `call` until it succeeds, fails with a code other than kUnavailable, or has been tried
  /// policy().max_attempts times, waiting for the gate before each try.
  template <typename T, typename F>
  Result<T> with_retries(F&& call);

 private:
  std::shared_ptr<Destination> inner_;
  RetryPolicy policy_;
  std::int64_t not_before_ = 0;  // pipeline-clock ms
  std::uint64_t retries_ = 0;
  std::uint64_t rng_state_ = 0x9e3779b97f4a7c15ULL;
  std::uint64_t next_random();
};

/// `dest` itself when it already is a RetryingDestination, else a new one around it.
std::shared_ptr<RetryingDestination> with_retries(std::shared_ptr<Destination> dest, RetryPolicy policy = {});

template <typename T, typename F>
Result<T> RetryingDestination::with_retries(F&& call) {
  for (int attempt = 1;; ++attempt) {
    wait_turn();
    Result<T> r = call();
    if (r.is_ok() || r.status().code() != Code::kUnavailable || attempt >= policy_.max_attempts) return r;
    ++retries_;
    defer(std::max<std::int64_t>(inner_->last_retry_after_ms(), backoff_ms(policy_, attempt, next_random())));
  }
}

struct MapPass;  // run.cpp

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
  /// `fuse` (optional): map each record as it is read, into that pass (dry runs; see MapPass in run.cpp).
  Result<StepResult> extract(const ObjectConfig& oc, RunCtx& ctx, MapPass* fuse = nullptr);
  Status release_for_reprocess(const ObjectConfig& oc, RunCtx& ctx);
  // delta.cpp
  Result<StepResult> delta_object(const ObjectConfig& oc, RunCtx& ctx);
  /// Rebuilds the destination dedup index of `oc` (dbs dedup, dest_keys). `key_hashes` (optional,
  /// [out]): dest_key_hash() of every (level, value) indexed, sorted — a filter that lets
  /// plan_object skip index lookups that cannot find anything.
  Status index_destination(const ObjectConfig& oc, std::vector<std::uint64_t>* key_hashes = nullptr);
  /// Maps, deduplicates and validates the extracted records of `oc`. `fused`: the pass extract
  /// already fed (its records are not mapped again).
  Status plan_object(const ObjectConfig& oc, RunCtx& ctx, MapPass* fused = nullptr);
  /// A phase-1 pass over `oc`: mapper, deduplicator, destination index rebuilt.
  Result<std::unique_ptr<MapPass>> begin_map_pass(const ObjectConfig& oc);
  Result<StepResult> write_object(const ObjectConfig& oc, RunCtx& ctx);
  std::vector<std::vector<std::string>> dedup_keys(const ObjectConfig& oc, const boost::json::object& fields,
                                                   const std::string& external_id) const;
  /// dedup_keys into `out` (its vectors' capacity is reused).
  void dedup_keys_into(const ObjectConfig& oc, const boost::json::object& fields, const std::string& external_id,
                       std::vector<std::vector<std::string>>& out) const;
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

  // write.cpp: `dest` behind the Retry-After gate and read retries (made on first use; the same
  // object when `dest` already is a RetryingDestination).
  std::shared_ptr<RetryingDestination> retrying;
  RetryingDestination& retrying_dest();
};

bool queue_item_matches(const boost::json::object& item, const QueueFilter& f);

}  // namespace cmg
