// Source and Destination: the two interfaces every connector implements (files, sandbox, HTTP
// platforms, user plugins through the C and Python adapters).
//
// Thread-safety: a connector instance is used by one pipeline thread at a time unless it says
// otherwise. Ownership: connectors are held by shared_ptr (they may be shared with plugins).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/schema.hpp"
#include "crmmigrate/core/status.hpp"

namespace cmg {

/// Pull stream of record batches (Arrow-stream style). `next` fills `out` (cleared first) and
/// returns true, or returns false at the end of the stream.
class RecordReader {
 public:
  virtual ~RecordReader() = default;
  virtual Result<bool> next(RecordBatch& out) = 0;
};

/// Drains `reader`, calling `fn` with each batch (which `fn` may modify or move from). Stops at the
/// first non-OK Status from the reader or from `fn` and returns it.
Status for_each_batch(RecordReader& reader, const std::function<Status(RecordBatch&)>& fn);

/// Where to start reading: everything, or records changed at/after (updated_at, id).
struct ReadOptions {
  std::size_t batch_size = 500;
  std::optional<std::int64_t> since_updated_at;  // inclusive, Unix ms
  std::string since_id;                          // tie-breaker with since_updated_at
  std::vector<std::string> fields;               // empty = all fields
};

/// Serves a source's records from a cursor on behalf of a reader that cannot start at one itself
/// (the C and Python plugin adapters). The first call drains `pull` — which appends one batch to its
/// argument and returns false once the stream is exhausted — keeping the records at or after
/// (opts.since_updated_at, opts.since_id) in (updated_at, id) order, as Source::read promises; every
/// call then hands out the next opts.batch_size of them into `out` (cleared first) and returns false
/// at the end. Errors from `pull` are returned as they are. Holds the kept records in memory.
/// Not thread-safe (one reader's state).
class CursorReplay {
 public:
  Result<bool> next(const ReadOptions& opts, const std::function<Result<bool>(RecordBatch&)>& pull, RecordBatch& out);

 private:
  bool loaded_ = false;
  RecordBatch kept_;
  std::size_t pos_ = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  /// Objects, fields and users of the source.
  virtual Result<Schema> schema() = 0;
  /// Number of records of `object` the source reports now; -1 when it cannot tell.
  virtual Result<std::int64_t> count(std::string_view object) = 0;
  /// Streams records of `object` ordered by id (or by (updated_at, id) when `since_*` is set).
  virtual Result<std::unique_ptr<RecordReader>> read(std::string_view object, const ReadOptions& opts) = 0;
  /// One record by id; nullopt when it does not exist (deleted). Default: kNotFound status.
  virtual Result<std::optional<Record>> get(std::string_view object, std::string_view id);
  /// Cheap check that the source can be reached and accepts our credentials, made by plan before
  /// anything else. Errors: kPermissionDenied (credentials refused; the message names the variable
  /// holding them, never their value), kUnavailable (unreachable). Default: OK (local connectors).
  virtual Status check_access();
};

/// Per-record problem reported by a destination (platform-shaped errors are mapped to this).
struct FieldError {
  std::string field;
  std::string value;
  std::string code;     // e.g. "REQUIRED", "INVALID_OPTION", "DUPLICATE_VALUE", "READ_ONLY"
  std::string message;
};

struct WriteOp {
  enum class Kind {
    kUpsert,  // create, or update the record whose id_property equals idempotency_key
    kUpdate,  // update record `id` (merge into an existing destination record)
  };
  Kind kind = Kind::kUpsert;
  std::string id;               // kUpdate: destination id
  std::string idempotency_key;  // kUpsert: value of the object's id_property
  boost::json::object fields;   // properties to set (reference fields hold destination ids)
};

struct WriteResult {
  enum class Outcome { kCreated, kUpdated, kFailed };
  Outcome outcome = Outcome::kFailed;
  std::string id;                 // destination id when created/updated
  int status = 0;                 // platform status (HTTP-like: 200, 201, 400, 409, 429, 500...)
  bool retryable = false;         // transient failure: the same op may be sent again
  std::string existing_id;        // 409 duplicate: the destination record that holds the value
  std::vector<FieldError> errors; // field-level detail for kFailed
  std::string message;
  // Transient failures (appended for issue 3). A transient failure of the whole call — 429, 5xx,
  // timeout, connection reset, lost reply, unparsable body — is reported as an OK Result holding one
  // kFailed result per op, each with `retryable` set, the same `status` (0 when there was no usable
  // HTTP reply), `retry_after_ms` and `outcome_unknown`. A partial batch failure is per op: the
  // rejected ops are kFailed (400, FieldErrors, not retryable), the others succeed.
  int retry_after_ms = 0;        // the platform's Retry-After: send it nothing before this many ms
  bool outcome_unknown = false;  // no usable reply: the op may or may not have been applied; resolve
                                 // it through the idempotency key (lookup or upsert), never re-create
};

/// Declared request limits of a platform (used by the quota scheduler and plan's ETA).
struct Quota {
  int burst_requests = 0;          // requests allowed per burst window; 0 = unlimited
  int burst_window_ms = 0;
  std::int64_t daily_requests = 0; // 0 = unlimited
  int max_batch = 100;             // records per write request
};

class Destination {
 public:
  virtual ~Destination() = default;
  virtual Result<Schema> schema() = 0;
  virtual Result<std::int64_t> count(std::string_view object) = 0;
  /// Lists every record of `object` (used to index the destination for dedup).
  virtual Result<std::unique_ptr<RecordReader>> list(std::string_view object, const ReadOptions& opts) = 0;
  /// Records whose `field` equals one of `values` exactly (idempotency-key and unique lookups).
  virtual Result<std::vector<Record>> find(std::string_view object, std::string_view field,
                                           const std::vector<std::string>& values) = 0;
  /// Applies `ops` in order; one WriteResult per op. A non-OK Status means the whole call failed
  /// before or during sending (the caller resolves intents through the idempotency key); transient
  /// whole-call failures are better reported per op (see WriteResult::retry_after_ms).
  virtual Result<std::vector<WriteResult>> write(std::string_view object, const std::vector<WriteOp>& ops) = 0;
  /// Reads records by destination id; nullopt for ids that do not exist.
  virtual Result<std::vector<std::optional<Record>>> read(std::string_view object,
                                                          const std::vector<std::string>& ids) = 0;
  virtual Quota quota() const { return {}; }
  /// Like Source::check_access, for the destination. Default: OK.
  virtual Status check_access();
  /// Retry-After (ms) that came with the most recent call that failed with Code::kUnavailable (a
  /// transient failure of schema/count/list/find/read, or a whole write() call); 0 when the platform
  /// sent none. Only meaningful right after that call, on the thread that made it. Default: 0.
  virtual std::int64_t last_retry_after_ms() const { return 0; }
};

}  // namespace cmg
