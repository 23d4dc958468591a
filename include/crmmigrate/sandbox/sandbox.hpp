// SandboxCrm: the built-in, in-process model of a CRM (DESIGN §4), used as source and destination
// in demos and tests. It persists to its own LMDB environment (a directory), so it survives restarts
// of the migrating process, and it is self-describing: the preset name, schema, users, pipelines and
// declared quota are stored in its `meta` database.
//
// Presets: "pipedrive" (a source shaped like Pipedrive API v1: persons, organizations, deals, notes,
// activities, numeric ids 1, 2, 3…) and "hubspot" (a destination shaped like HubSpot CRM v3:
// companies, contacts, deals, notes, calls, meetings, tasks, emails; ids "1000001"…; every object
// has the unique `crm_source_id` property used as the upsert idProperty).
//
// Storage (all values compact JSON): `meta` (preset, schema, pipelines, quota, id counters, write
// counters), `records.<object>` (8-byte big-endian id → {"id","created_at","updated_at","fields"},
// so listings are in numeric id order), `by_updated.<object>` (be64(updated_at) + be64(id) → "",
// for delta reads) and `unique` (object, field, normalised value → id; emails compare
// case-insensitively). Blank values are never indexed.
//
// Thread-safety: every member function may be called from several threads; LMDB serialises write
// transactions (one write() call = one transaction) and readers see consistent snapshots. A
// RecordReader returned by read()/list() belongs to one thread and keeps the sandbox's storage alive.
//
// Fault injection (DESIGN §4) sits at the connector boundary and never changes the stored data
// model. A FaultPlan gives a rate per kind; one seeded generator per SandboxCrm draws a fault (or
// none) for every Destination call, so the same calls in the same order get the same faults.
//   write():  429 with Retry-After (nothing applied) · 500/503 (nothing applied; 503 carries
//             Retry-After) · timeout (applied or not, drawn from the seed) · connection reset (not
//             applied) · lost reply (applied, the caller gets no reply) · malformed/truncated body
//             (applied or not) · partial batch failure (1..max(1, n/20) ops rejected with a 400 and a
//             FieldError coded INVALID_VALUE, the others applied). Whole-call faults come back as one
//             kFailed, retryable WriteResult per op (status 429/500/503, or 0 for no usable reply,
//             with retry_after_ms and outcome_unknown; see WriteResult).
//   find(), read(ids), list() and every page of a list reader: 429/503 with Retry-After at
//             `FaultPlan::read_rate`, as a Code::kUnavailable Status; last_retry_after_ms() tells it.
// The Source side (read(object, opts), get, count, schema) and the admin calls never fault.
// Where the plan comes from, the later one winning: the plan stored in the sandbox's `meta`
// (store_faults), then the environment variable CMG_SANDBOX_FAULTS when the sandbox is opened — a
// JSON object such as {"seed":1,"rate_429":0.05,"rate_lost_reply":0.02,"retry_after_ms":500} or
// "@/path/to/faults.json" — so a CLI child process can be run against a faulty sandbox; then
// set_faults() on the instance.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/schema.hpp"
#include "crmmigrate/core/status.hpp"
#include "crmmigrate/store/lmdb_env.hpp"

namespace cmg::sandbox {

/// A sales pipeline and its stages, in display order. `id`/stage values are what the API takes
/// (Pipedrive: "1", "9"; HubSpot: "default", "closedwon").
struct Pipeline {
  std::string id;
  std::string label;
  std::vector<Option> stages;
};

/// What write() has done since the sandbox was created (persisted with the data, so a crash and a
/// reopen keep them consistent with the records).
struct Counters {
  std::uint64_t write_calls = 0;      // write() calls that reached the store
  std::uint64_t records_created = 0;  // kCreated outcomes
  std::uint64_t records_updated = 0;  // kUpdated outcomes
  std::uint64_t records_failed = 0;   // kFailed outcomes (validation, 404, 409)
  // Since this SandboxCrm was opened (kept in memory, not persisted):
  std::uint64_t requests = 0;         // Destination calls answered: write, find, read(ids), list + each page
  std::uint64_t faults = 0;           // of which answered with an injected fault
};

/// Fault rates per kind (each 0..1; their sum should be at most 1) for write(), and read_rate for
/// find()/read()/list(). JSON keys are the member names; unknown keys are rejected.
struct FaultPlan {
  std::uint64_t seed = 0;
  double rate_429 = 0;
  double rate_5xx = 0;
  double rate_timeout = 0;
  double rate_reset = 0;
  double rate_lost_reply = 0;
  double rate_malformed = 0;
  double rate_partial = 0;
  int retry_after_ms = 1000;  // Retry-After sent with 429 and 503
  double read_rate = -1;      // find/read/list; -1 = a quarter of rate_429 + rate_5xx + rate_timeout + rate_reset

  /// True when some rate is above 0.
  bool any() const;
  /// read_rate with the default resolved.
  double effective_read_rate() const;
};

/// Parses a FaultPlan from JSON text; `origin` names the text in errors ("CMG_SANDBOX_FAULTS").
/// Errors: kParse (not a JSON object), kInvalidArgument (unknown key, rate outside 0..1, rates
/// summing above 1, negative retry_after_ms), each naming the key.
Result<FaultPlan> fault_plan_from_json(std::string_view text, const std::string& origin);
/// The plan as a compact JSON object (every member).
std::string fault_plan_to_json(const FaultPlan& plan);

/// One Destination call as the sandbox answered it (see SandboxCrm::set_request_log).
struct Request {
  std::string call;          // "write", "find", "read", "list", "list_page"
  std::string object;
  std::int64_t at_ms = 0;    // the sandbox clock (set_clock) when the call arrived
  std::size_t ops = 0;       // write: ops in the batch; find/read: values asked for
  std::string fault;         // "" or "429", "500", "503", "timeout", "reset", "lost_reply", "malformed", "partial"
  bool applied = false;      // write: the batch (or, for "partial", its other ops) was applied
  int retry_after_ms = 0;    // Retry-After sent with the reply
  std::vector<std::string> rejected;  // "partial": idempotency key (upsert) or id (update) of each rejected op
};

/// One record for the admin insert_many(): fields as given (not validated), timestamps in Unix ms.
struct NewRecord {
  boost::json::object fields;
  std::int64_t updated_at = 0;
  std::int64_t created_at = 0;  // 0 = same as updated_at
};

/// Names of the built-in presets ("hubspot", "pipedrive").
std::vector<std::string> preset_names();

/// The schema a preset declares (objects, fields, users), without creating a sandbox.
/// Errors: kInvalidArgument for an unknown preset.
Result<Schema> preset_schema(std::string_view preset);

class SandboxCrm : public Source, public Destination {
 public:
  /// Creates a sandbox of `preset` in `dir` (created when missing).
  /// Errors: kInvalidArgument (unknown preset), kAlreadyExists (`dir` already holds a sandbox),
  /// kIO/kStorage (LMDB). The caller shares ownership of the result.
  static Result<std::shared_ptr<SandboxCrm>> create(const std::string& dir, std::string_view preset);
  /// Opens the sandbox stored in `dir`. Errors: kNotFound naming `dir` when it holds no sandbox,
  /// kParse when its meta data is damaged, kIO/kStorage (LMDB), kInvalidArgument/kParse when
  /// CMG_SANDBOX_FAULTS is set but is not a valid FaultPlan (or names a file that cannot be read).
  static Result<std::shared_ptr<SandboxCrm>> open(const std::string& dir);

  ~SandboxCrm() override;
  SandboxCrm(const SandboxCrm&) = delete;
  SandboxCrm& operator=(const SandboxCrm&) = delete;

  // ---- Source and Destination ----

  /// Objects, fields and users (a copy). Never fails once opened.
  Result<Schema> schema() override;
  /// Records of `object` now. Errors: kInvalidArgument for an unknown object.
  Result<std::int64_t> count(std::string_view object) override;

  // ---- Source ----

  /// Streams records of `object` in numeric id order, or — when `opts.since_updated_at` is set —
  /// in (updated_at, id) order starting at (since_updated_at, since_id) inclusive. Each batch is
  /// read in its own read transaction (like the pages of an HTTP API), so records changed between
  /// batches move. `opts.fields` limits the fields returned. Errors: kInvalidArgument (unknown
  /// object, non-numeric since_id, batch_size 0).
  Result<std::unique_ptr<RecordReader>> read(std::string_view object, const ReadOptions& opts) override;
  /// One record by id; nullopt when it does not exist. Errors: kInvalidArgument (unknown object).
  Result<std::optional<Record>> get(std::string_view object, std::string_view id) override;

  // ---- Destination ----

  /// Every record of `object` in id order (same as read() without `since_*`).
  Result<std::unique_ptr<RecordReader>> list(std::string_view object, const ReadOptions& opts) override;
  /// Records whose `field` equals one of `values`, in id order, each once. Emails compare
  /// case-insensitively; for a Pipedrive-style list value ([{"value": …}]) any element may match.
  /// Unique fields use the index, other fields a scan. Errors: kInvalidArgument (unknown object or
  /// field).
  Result<std::vector<Record>> find(std::string_view object, std::string_view field,
                                   const std::vector<std::string>& values) override;
  /// Applies `ops` in order inside ONE write transaction (after a crash the whole batch is applied
  /// or none of it) and returns one WriteResult per op. Each op is validated on its own, as the
  /// platform would (a failed op does not fail the others): kUpsert creates (201) or updates (200)
  /// the record whose id_property equals `idempotency_key` (an object without an id_property, as
  /// in the pipedrive preset, always creates); kUpdate updates record `id` (404 when absent). Validation failures are 400 with FieldErrors coded PROPERTY_DOESNT_EXIST,
  /// READ_ONLY_VALUE, REQUIRED, INVALID_OPTION, INVALID_INTEGER, INVALID_NUMBER, INVALID_BOOLEAN,
  /// INVALID_DATE, INVALID_DATETIME, INVALID_EMAIL, INVALID_VALUE, TOO_LONG, INVALID_ASSOCIATION,
  /// INVALID_OWNER_ID; a unique value held by another record is 409 DUPLICATE_VALUE with
  /// `existing_id` (nothing written for that op). System fields (ids, created/modified times) are set
  /// by the sandbox. Errors (whole call): kInvalidArgument (unknown object), kIO/kStorage.
  Result<std::vector<WriteResult>> write(std::string_view object, const std::vector<WriteOp>& ops) override;
  /// Records by id, nullopt for ids that do not exist. Errors: kInvalidArgument (unknown object).
  Result<std::vector<std::optional<Record>>> read(std::string_view object,
                                                  const std::vector<std::string>& ids) override;
  /// The preset's declared limits (not enforced yet).
  Quota quota() const override;

  // ---- Introspection ----

  const std::string& preset() const;
  /// The directory of the LMDB environment.
  const std::string& dir() const;
  std::vector<Pipeline> pipelines() const;
  /// Counters of write() activity. Errors: kIO/kStorage.
  Result<Counters> counters() const;
  /// Replaces the clock used for system timestamps (Unix ms; default: the system clock). Tests use
  /// it for deterministic updated_at values. `now_ms` must be thread-safe if write() is called
  /// from several threads.
  void set_clock(std::function<std::int64_t()> now_ms);
  /// Replaces the fault plan of this instance and restarts its generator from `plan.seed`.
  /// A plan with every rate 0 turns faults off. Thread-safe.
  void set_faults(const FaultPlan& plan);
  /// The plan in force on this instance.
  FaultPlan faults() const;
  /// Stores `plan` in the sandbox's meta (loaded by every later open(), below CMG_SANDBOX_FAULTS)
  /// and puts it in force here; nullopt removes the stored plan (and turns faults off here).
  /// Errors: kIO/kStorage.
  Status store_faults(const std::optional<FaultPlan>& plan);
  /// Keeps (true) or stops keeping a log of Destination calls, in memory; turning it on clears it.
  void set_request_log(bool on);
  /// The calls logged since set_request_log(true), in arrival order (a copy). Thread-safe.
  std::vector<Request> requests() const;
  /// See Destination::last_retry_after_ms (per instance: the most recent faulted call).
  std::int64_t last_retry_after_ms() const override;
  /// Calls `hook` before every commit of the sandbox's own LMDB environment; a non-OK Status aborts
  /// that transaction and is returned by the call that committed (store::CommitHook). Tests use it
  /// to simulate a crash inside write(). Thread-safe.
  void set_commit_hook(store::CommitHook hook);

  // ---- Admin (generator and tests): no validation, no limits, no counters ----

  /// Stores a new record and returns its id. System fields are set from the timestamps
  /// (`created_at` 0 = `updated_at`); unique indexes are maintained without uniqueness checks.
  /// Errors: kInvalidArgument (unknown object), kIO/kStorage.
  Result<std::string> insert(std::string_view object, boost::json::object fields, std::int64_t updated_at,
                             std::int64_t created_at = 0);
  /// Like insert() for many records in one transaction; ids are returned in input order.
  Result<std::vector<std::string>> insert_many(std::string_view object, const std::vector<NewRecord>& records);
  /// Overlays `fields` on record `id` and sets its updated time. Errors: kNotFound, kInvalidArgument.
  Status update_fields(std::string_view object, std::string_view id, const boost::json::object& fields,
                       std::int64_t updated_at);
  /// Deletes record `id` (as if deleted in the CRM); false when it did not exist.
  Result<bool> remove(std::string_view object, std::string_view id);
  /// Adds the user, or replaces the one with the same id. Errors: kInvalidArgument (empty id).
  Status set_user(const User& user);

  struct Impl;

 private:
  explicit SandboxCrm(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace cmg::sandbox
