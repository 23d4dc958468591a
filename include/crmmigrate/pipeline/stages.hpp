// Stages composed by hand (DESIGN §3): Extractor → Mapper → Deduplicator → Validator → Writer →
// Reconciler, for programs that embed crmmigrate without a config file. Migration wires the same
// steps from a MigrationConfig, with resumable per-step state, plan sign-off, halts and the queue
// commands; these objects are the smaller, explicit form of that pipeline:
//
//   auto ex = stages::Extractor(source, "people");            // any Source, e.g. your own class
//   stages::Mapper mapper(object, dst_schema, src_schema);    // ObjectConfig built in code
//   stages::Deduplicator dedup(object);
//   stages::Validator validator(dst_schema);
//   CMG_ASSIGN_OR_RETURN(auto writer, stages::Writer::open(dest, "state/people"));
//   ... for each batch: items = mapper.map(batch, writer->parents()); dedup.add(items) ...
//   CMG_RETURN_IF_ERROR(dedup.index_destination(*dest, dst_schema));
//   CMG_ASSIGN_OR_RETURN(auto items, dedup.resolve(*dest));
//   validator.validate(items);
//   CMG_ASSIGN_OR_RETURN(auto counts, writer->write("contacts", items));
//   CMG_ASSIGN_OR_RETURN(auto rec, stages::Reconciler(dest, *writer).reconcile("contacts", ex.read()));
//
// Every source record ends as exactly one Item whose `action` says what happened to it: created,
// merged into a destination record, folded into a duplicate from the same source, skipped, or
// queued with field-level Problems — never dropped. The Writer keeps the exactly-once protocol of
// DESIGN §2 in an LMDB state directory the caller names: intents are committed before a batch is
// sent, confirmations after, and intents left by a crash are settled through the destination's
// idempotency key (the object's id_property) before anything new is sent.
//
// Errors are cmg::Status / Result values; a queued, skipped or merged record is an outcome, not an
// error. Thread-safety: each stage object is used by one thread at a time; const members may be
// called concurrently (Mapper::map, Validator::validate) as long as the registered plugins allow it.
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
#include "crmmigrate/core/mapping.hpp"
#include "crmmigrate/core/merge.hpp"
#include "crmmigrate/core/normalize.hpp"
#include "crmmigrate/core/problem.hpp"
#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/schema.hpp"
#include "crmmigrate/core/status.hpp"
#include "crmmigrate/core/validate.hpp"
#include "crmmigrate/pipeline/migration.hpp"

namespace cmg::stages {

/// What happens (or happened, after the Writer) to one source record.
enum class Action {
  kCreate,  ///< create a destination record (upsert on the idempotency key)
  kMerge,   ///< update the existing destination record `destination_id` with `fields` (merge changes)
  kFolded,  ///< a duplicate of source record `merged_into` (same batch); shares its outcome
  kSkip,    ///< not written, deliberately (`reason`: a merge rule decided so)
  kQueue,   ///< needs a person: `problems` say why, field by field
};

/// "create", "merge", "folded", "skip", "queue". Never null.
const char* action_name(Action action) noexcept;

/// One source record travelling through the stages. A plain value; owned by whoever holds it.
struct Item {
  std::string object;              ///< the object's name (ObjectConfig::name, e.g. "contacts")
  Record source;                   ///< as extracted
  std::string destination_object;  ///< where it goes ("" when routing failed)
  boost::json::object fields;      ///< destination fields to send (kCreate) or the changes (kMerge)
  std::vector<Problem> problems;   ///< non-empty ⇔ action == kQueue
  std::vector<std::string> translations, defaults, dropped;  ///< mapping trail (for audit)
  Action action = Action::kCreate;
  std::string destination_id;      ///< kMerge: the record merged into; after writing: the confirmed id
  std::string merged_into;         ///< kFolded: the source id of the group's primary
  std::string match_key;           ///< dedup key that matched (kMerge, kFolded); "" otherwise
  std::string rule;                ///< merge rule that decided (kMerge, kSkip, merge conflicts)
  std::string reason;              ///< kSkip: why
  bool waits_for_parent = false;   ///< a parent is not decided yet (queued as parent_queued): map it again later
};

/// Per-object counts in the shape of the report (source = written + merged + queued + skipped +
/// pending).
using Counts = ObjectCounts;

// ---------------------------------------------------------------------------------------------

struct ExtractorOptions {
  std::size_t batch_size = 500;
  /// Expected record count; when unset, the count the source reports at open() is expected.
  std::optional<std::int64_t> expected_count;
};

/// Streams the records of one source object and checks that as many were read as expected
/// (DESIGN §1 "extract": a mismatch is for a person to accept, not something to ignore).
///
/// Ownership: shares the Source. Thread-safety: one thread at a time.
class Extractor {
 public:
  Extractor(std::shared_ptr<Source> source, std::string source_object, ExtractorOptions options = {});

  /// Asks the source for its count and opens the stream. Called by the first next() if needed.
  /// Errors: those of Source::count and Source::read (kPlugin for a failing custom source).
  Status open();
  /// [out] `out`: the next batch (cleared first). Returns false at the end of the stream.
  /// Errors: as open(), and the reader's errors.
  Result<bool> next(RecordBatch& out);
  /// Records read so far.
  std::int64_t read() const noexcept { return read_; }
  /// The count the source reported at open(); -1 when it could not tell (or before open()).
  std::int64_t reported() const noexcept { return reported_; }
  /// The count expected: ExtractorOptions::expected_count, else reported().
  std::int64_t expected() const noexcept;
  /// After the end of the stream: OK when read() == expected() (or nothing is expected, -1);
  /// otherwise kInvalidArgument naming both numbers and the object.
  Status check_count() const;

 private:
  std::shared_ptr<Source> source_;
  std::string object_;
  ExtractorOptions options_;
  std::unique_ptr<RecordReader> reader_;
  std::int64_t reported_ = -1;
  std::int64_t read_ = 0;
  bool done_ = false;
};

// ---------------------------------------------------------------------------------------------

/// Field mapping, value translation, defaults, type coercion, owner resolution and parent
/// references (DESIGN §1 "map"), for one object described by an ObjectConfig built in code (or
/// taken from a parsed MigrationConfig). Unmappable values become Problems and the Item is queued.
///
/// Ownership: copies everything it is given. Thread-safety: immutable after construction; map()
/// may be called concurrently.
class Mapper {
 public:
  /// `object`: fields, translations, defaults, dedup keys and merge strategies of the object.
  /// `destination` / `source`: the two schemas (users included, for owner resolution).
  Mapper(ObjectConfig object, Schema destination, Schema source, OwnersConfig owners = {});
  ~Mapper();
  Mapper(const Mapper&) = delete;
  Mapper& operator=(const Mapper&) = delete;

  /// Maps one record. `parents` says where a referenced parent stands (Writer::parents() gives
  /// the Writer's ID map); without it every parent is absent (orphan_reference). Never fails:
  /// problems are in the Item (action kQueue).
  Item map(const Record& source, const ParentLookup& parents = {}) const;
  /// Maps a batch, in order.
  std::vector<Item> map(const RecordBatch& batch, const ParentLookup& parents = {}) const;

  const ObjectConfig& object() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------

/// The key cascade (DESIGN §1 "dedup") over mapped Items and the destination's records: folds
/// duplicates within the source, matches groups to existing destination records and asks the merge
/// rule what changes. Decisions do not depend on the order Items were added.
///
/// Outputs (resolve): each group's primary gets kCreate, kMerge (merge rule changes, destination id),
/// kSkip or kQueue (ambiguous_match, merge_conflict); its other members kFolded with merged_into,
/// or the primary's kSkip/kQueue. Items that arrive queued pass through unchanged.
///
/// Memory: holds every added Item until resolve(). Ownership: copies its inputs; shares plugins.
/// Thread-safety: one thread at a time.
class Deduplicator {
 public:
  /// Keys (ObjectConfig::dedup, strongest first), merge strategies and skip_unchanged come from
  /// `object`; `phone_region` is the default region of phone keys.
  explicit Deduplicator(ObjectConfig object, std::string phone_region = "US");
  ~Deduplicator();
  Deduplicator(const Deduplicator&) = delete;
  Deduplicator& operator=(const Deduplicator&) = delete;

  /// Replaces the merge rule built from the object's merge strategies (shared with the caller;
  /// must be thread-safe as MergeRule says).
  void set_merge_rule(std::shared_ptr<MergeRule> rule);
  /// Replaces the normaliser of the dedup key named `key`. Errors: kNotFound for an unknown key.
  Status set_normalizer(const std::string& key, std::shared_ptr<Normalizer> normalizer);

  /// Indexes every record of the object's destination object(s) (Destination::list). Call once
  /// before resolve(). Errors: kConfig when `schema` lacks a destination object; the
  /// destination's errors.
  Status index_destination(Destination& destination, const Schema& schema);
  /// Adds mapped Items. Errors: kAlreadyExists for a source id added twice.
  Status add(std::vector<Item> items);
  /// Decides every group (see above) and returns all Items added — primaries before their members,
  /// groups in id order, then the Items that arrived queued — and forgets them (the next add()
  /// starts afresh; the destination index is kept). Reads matched destination records
  /// (Destination::read, 100 ids per call) for the merge rule; a rule that cannot decide (non-OK
  /// Status) queues the group as merge_conflict with its message. Errors: the destination's.
  Result<std::vector<Item>> resolve(Destination& destination);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------

/// Validation against the destination's schema (required fields, picklists, types, lengths,
/// emails) plus any RecordValidator plugins (DESIGN §1 "validate"). An Item with problems is
/// queued; a group's members follow their primary into the queue. Nothing invalid is sent.
///
/// Ownership: copies the schema, shares the plugins. Thread-safety: validate() is const and may run
/// concurrently if the plugins allow it.
class Validator {
 public:
  explicit Validator(Schema destination);
  /// Adds a validator run after the schema validator.
  void add(std::shared_ptr<RecordValidator> validator);
  /// Validates one kCreate/kMerge Item (others are left alone). Returns true when it stays
  /// writable.
  bool validate(Item& item) const;
  /// Validates every Item, then queues kFolded members whose primary was queued.
  void validate(std::vector<Item>& items) const;

 private:
  Schema schema_;
  std::vector<std::shared_ptr<RecordValidator>> plugins_;
};

// ---------------------------------------------------------------------------------------------

struct WriterOptions {
  std::size_t batch_size = 100;      ///< records per Destination::write call (also ≤ Quota::max_batch)
  int max_attempts = 5;              ///< sends per record before it is queued as retries_exhausted
  std::int64_t backoff_ms = 200;     ///< first backoff; doubles; a Retry-After wins when longer
  std::int64_t backoff_cap_ms = 30000;
  std::string run_id;                ///< recorded in audit events; "" = a timestamp
};

/// What one Writer::write call did (Items already confirmed by an earlier call are counted with
/// the outcome stored then, and not sent again).
struct WriteCounts {
  std::int64_t written = 0;  ///< created (group primaries)
  std::int64_t merged = 0;   ///< merged into an existing record, or folded into a created one
  std::int64_t skipped = 0;
  std::int64_t queued = 0;
  std::int64_t sent = 0;     ///< records sent in this call (re-sends included)
};

/// Writes Items exactly once (DESIGN §2) and records every outcome in an LMDB state directory:
/// per batch, (1) intents committed, (2) Destination::write, (3) confirmations (ID map, statuses,
/// audit) committed in one transaction. Transient failures are retried with backoff (honouring
/// Retry-After); an unknown outcome is settled by looking the record up by its idempotency key
/// before it is sent again. Rejected records are queued (rejected_by_destination with the
/// destination's field errors; a 409 duplicate names the existing record).
///
/// State (named sub-databases of the directory): records (object␟source id → {"s","d","o","p"}),
/// idmap, intents, queue, audit — the same layout Migration uses, so the directory can be
/// inspected with the same tools. Ownership: shares the Destination; owns the environment.
/// Thread-safety: one thread at a time per Writer; one Writer per state directory at a time (it
/// holds the directory's run lock, kLocked for a second one).
class Writer {
 public:
  /// Opens (creating) the state in `state_dir`, takes its lock, reads the destination schema and
  /// settles intents left by an interrupted Writer. Errors: kLocked, kIO/kStorage, the
  /// destination's errors.
  static Result<std::unique_ptr<Writer>> open(std::shared_ptr<Destination> destination, const std::string& state_dir,
                                              WriterOptions options = {});
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  /// Writes (or records) `items` of object `object` and updates each Item: destination_id of
  /// confirmed records; action kQueue with problems for rejected ones. Items already confirmed in
  /// the state are not sent again. kFolded members must come with their primary in `items`.
  /// Errors: kStorage/kIO (state), kInvalidArgument (a kFolded member without its primary), and
  /// non-transient destination failures of the whole call. Queued records are not errors.
  Result<WriteCounts> write(const std::string& object, std::vector<Item>& items);

  /// Parent lookup over this state's ID map, for Mapper::map: a confirmed parent gives its
  /// destination id, a queued or skipped one kQueued, an unknown one kAbsent. Valid while the
  /// Writer lives.
  ParentLookup parents() const;
  /// Destination id confirmed for (object, source id); nullopt when none.
  Result<std::optional<std::string>> destination_id(const std::string& object, const std::string& source_id) const;
  /// The state directory.
  const std::string& state_dir() const noexcept;

  struct Impl;

 private:
  explicit Writer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class Reconciler;
};

// ---------------------------------------------------------------------------------------------

/// Result of Reconciler::reconcile for one object.
struct Reconciliation {
  Counts counts;                                    ///< from the Writer's state; pending = source − decided
  std::int64_t queue_open = 0;
  std::int64_t readback_mismatches = 0;             ///< records whose read-back differs or is missing
  std::vector<boost::json::object> discrepancies;   ///< {"source_id","destination_id","kind","fields"}
  bool complete = false;  ///< equation holds with 0 pending, 0 queued, 0 mismatches
};

/// The accounting equation and the read-back (DESIGN §1 "reconcile") over a Writer's state: every
/// confirmed record is read from the destination and compared field by field with what was sent.
///
/// Ownership: shares the Destination; borrows the Writer (must outlive the Reconciler).
/// Thread-safety: one thread at a time.
class Reconciler {
 public:
  Reconciler(std::shared_ptr<Destination> destination, const Writer& writer);
  /// Reconciles `object`, whose source holds `source_count` records (Extractor::read()).
  /// Errors: the state's and the destination's.
  Result<Reconciliation> reconcile(const std::string& object, std::int64_t source_count) const;

 private:
  std::shared_ptr<Destination> destination_;
  const Writer& writer_;
};

}  // namespace cmg::stages
