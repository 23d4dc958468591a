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
// Fault injection (429/5xx/timeouts/lost replies, DESIGN §4) is not built yet; it will wrap write(),
// find() and read() at the connector boundary and never change the stored data model.
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
  /// kParse when its meta data is damaged, kIO/kStorage (LMDB).
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
