// Migration: one configured migration over its durable state (DESIGN §1, §2, §5). It wires the
// stages (extract → map → dedup → validate → write → confirm) from a MigrationConfig, keeps every
// decision in the LMDB state, and answers plan, run, status, reconcile, queue and audit requests.
//
// Thread-safety: one Migration object is used by one thread at a time. Several processes may open
// the same migration: only one of them may run/reprocess at a time (exit code 4 for the others),
// while status, queue and audit work alongside it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "crmmigrate/core/config.hpp"
#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/merge.hpp"
#include "crmmigrate/core/normalize.hpp"
#include "crmmigrate/core/validate.hpp"
#include "crmmigrate/core/status.hpp"

namespace cmg {

namespace store {
class Env;
}

/// Per-object accounting: source = written + merged + queued + skipped + pending.
struct ObjectCounts {
  std::int64_t source = 0;
  std::int64_t written = 0;   // created in the destination
  std::int64_t merged = 0;    // folded into an existing (or same-run) destination record
  std::int64_t queued = 0;    // waiting for a person (open or fixed queue items)
  std::int64_t skipped = 0;   // deliberately not migrated (merge rule or reviewer)
  std::int64_t pending = 0;   // not decided yet
};

/// The report of DESIGN §5, for run, status and reconcile.
struct Report {
  std::string state;  // complete | incomplete | halted | paused | running
  bool complete = false;
  std::vector<std::pair<std::string, ObjectCounts>> objects;  // config order
  std::int64_t queue_open = 0;
  std::int64_t readback_mismatches = 0;
  std::vector<boost::json::object> discrepancies;  // reconcile: one entry per discrepant record
  std::vector<std::string> alerts;                 // alerts raised by this call
  std::string message;                             // one-line human summary of why this state

  boost::json::object to_json() const;
};

struct Alert {
  std::string kind;     // "count_mismatch", "halt", "paused"
  std::string object;
  std::string message;
};

struct Progress {
  std::string object;
  std::string phase;  // "extract", "plan", "write", "reconcile"
  std::int64_t done = 0;
  std::int64_t total = 0;  // -1 when unknown
};

struct RunOptions {
  bool dry_run = false;              // extract → map → dedup → validate only, in scratch state
  std::string only_object;           // --object
  std::optional<std::int64_t> limit; // --limit: at most this many records written by this call
  bool accept_counts = false;        // continue after a count mismatch pause
  bool ack_halt = false;             // resume after an error-rate halt
  std::string reviewer;              // required with accept_counts / ack_halt
  std::function<void(const Progress&)> progress;
  std::function<bool()> cancelled;   // polled between batches; true stops cleanly
};

struct QueueFilter {
  std::string id;         // one item ("contacts/123")
  std::string reason;     // closed-list reason name
  std::string object;     // config object name
  std::string status;     // open | fixed | resolved | skipped ("" = open and fixed)
  std::string field;      // items with a problem on this field
  std::string text;       // substring of the item's JSON
};

class Migration {
 public:
  /// Opens the migration described by `config`: its state environment (created when missing) and
  /// its connectors. `source`/`destination` replace the configured connectors when given (custom
  /// connectors). Errors: kConfig for unknown connectors, kUnavailable/kNotFound when unreachable.
  /// `initial_map_size` sets the state's first LMDB map size in bytes (0 = 1 GiB; it grows on demand
  /// either way — tests use a tiny one to exercise growth).
  static Result<std::unique_ptr<Migration>> open(MigrationConfig config, std::shared_ptr<Source> source = nullptr,
                                                 std::shared_ptr<Destination> destination = nullptr,
                                                 std::size_t initial_map_size = 0);
  ~Migration();

  /// The coverage report (zero writes to the destination). With `approve`, records a sign-off by
  /// `reviewer` of this config + schemas; refused while the plan has blocking gaps.
  Result<boost::json::object> plan(bool approve, const std::string& reviewer);

  /// Runs (or resumes) the migration. A pause, halt or open queue is a state in the report.
  /// Errors: kLocked when another run holds the lock; kInvalidArgument without a matching sign-off.
  Result<Report> run(const RunOptions& opts);

  /// Reprocesses fixed queue items, items queued under an older config version and children whose
  /// parent is resolved, through map → dedup → validate → write.
  Result<Report> reprocess(const RunOptions& opts);

  /// The delta pass: re-reads source records changed since the main extraction (cursor
  /// (updated_at, id) per object, minus the configured lookback) and applies them through the same
  /// pipeline: new records are migrated, changed ones updated in the destination — unless the
  /// destination record also changed since our write (queued as both_sides_changed, both values
  /// shown) — and records deleted in the source are queued as deleted_in_source (nothing is deleted
  /// automatically). Errors: as run().
  Result<Report> delta(const RunOptions& opts);

  /// Counts from the state (no destination calls).
  Result<Report> status();

  /// The accounting equation per object and a read-back of every confirmed record.
  Result<Report> reconcile(const RunOptions& opts = {});

  /// Queue items matching `filter`, oldest first, from `offset`, at most `limit`.
  Result<std::vector<boost::json::object>> queue_list(const QueueFilter& filter, std::size_t offset = 0,
                                                      std::size_t limit = SIZE_MAX);
  /// Records a correction on every matching open item: `set` (destination field → value) is applied
  /// when the item is reprocessed. Returns how many items were fixed.
  Result<std::int64_t> queue_fix(const QueueFilter& filter, const boost::json::object& set, const std::string& reviewer,
                                 const std::string& note);
  /// Marks every matching open/fixed item skipped by `reviewer` with `note` (required).
  Result<std::int64_t> queue_skip(const QueueFilter& filter, const std::string& reviewer, const std::string& note);

  /// Calls `fn` for each audit event (oldest first), optionally of one record ("contacts/123" or a
  /// bare source id). `fn` returns false to stop.
  Status audit(const std::string& record, const std::function<bool(const boost::json::object&)>& fn);

  // ---- Plugins (custom rules from C++, C or Python). Registered plugins are shared with the
  // caller and used by every later call on this Migration; register them before plan/run. ----

  /// Replaces the merge rule of config object `object`. Errors: kNotFound for an unknown object.
  Status set_merge_rule(const std::string& object, std::shared_ptr<MergeRule> rule);
  /// Adds a validator run after the schema validator on every record of `object` ("" = all).
  Status add_validator(const std::string& object, std::shared_ptr<RecordValidator> validator);
  /// Replaces the normaliser of dedup key `key` (a key name in the object's "dedup" list).
  /// Errors: kNotFound for an unknown object or key.
  Status set_normalizer(const std::string& object, const std::string& key, std::shared_ptr<Normalizer> normalizer);

  /// Alerts are delivered here (and to the configured alert command) as they are raised.
  void set_alert_callback(std::function<void(const Alert&)> cb);

  const MigrationConfig& config() const;
  /// The migration's LMDB state, for tools that read it alongside the calls above (the review
  /// console's paged queue and record timelines). Borrowed: valid while this Migration lives. Read it
  /// with Env::read (thread-safe); change the state only through the calls above.
  const store::Env& state_env() const;

  struct Impl;

 private:
  explicit Migration(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Creates a connector from its config ("sandbox", "files"). Used by Migration::open; exposed for
/// tools (the CLI's sandbox commands) and tests.
Result<std::shared_ptr<Source>> make_source(const ConnectorConfig& c, const std::string& base_dir);
Result<std::shared_ptr<Destination>> make_destination(const ConnectorConfig& c, const std::string& base_dir);

}  // namespace cmg
