// Env: a thin, safe layer over one LMDB environment (a directory) with named sub-databases.
//
// Keys and values are byte strings. crmmigrate stores values as compact JSON text (DESIGN §2: one
// format, easy to inspect with `mdb_dump`), except audit sequence keys, which are 8-byte big-endian
// integers so that they sort numerically. Databases given natural key order (EnvOptions) keep it
// through a file copy (`mdb_copy`, `cp` of a closed environment) but not through `mdb_dump` +
// `mdb_load`, which rebuilds them in byte order: copy a state, do not reload it.
//
// Transactions: `Env::write(fn)` runs `fn` in one write transaction and commits it; when LMDB reports
// MDB_MAP_FULL the transaction is aborted, the map size doubled and `fn` run again, so `fn` must only
// touch the transaction (no outside side effects). `Env::read(fn)` runs `fn` in a read-only
// transaction. Both are thread-safe; LMDB allows one writer and many readers across processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crmmigrate/core/status.hpp"

namespace cmg::store {

class Txn;

/// Called before every commit with the number of commits so far; returning a non-OK Status makes the
/// commit fail with that Status (the transaction is aborted). Used by fault-injection tests.
using CommitHook = std::function<Status(std::uint64_t commit_number)>;

struct EnvOptions {
  std::size_t initial_map_size = std::size_t{64} << 20;  // grows on MDB_MAP_FULL
  unsigned max_dbs = 32;
  bool read_only = false;
  bool no_sync = false;  // tests and dry runs only: skips fsync at commit
  /// Databases whose keys compare in natural order, recorded when the environment is created (an
  /// existing environment keeps the order it was created with, whatever is passed here). Natural
  /// order compares composite keys (key_of) part by part, a shorter part first and parts of one
  /// length by bytes: "9" < "10" < "1a" < "010", so ids numbered without leading zeros sort by
  /// value (and ids of one length, such as UUIDs, by bytes). Ids numbered in sequence are then
  /// put in key order, which fills pages instead of splitting them. A scan() prefix on these
  /// databases must end at a part boundary (key_of(.., "")) or be a whole key: "c\x1f1" does not
  /// select "c\x1f12", which sorts after "c\x1f2".
  std::vector<std::string> natural_order;
};

class Env {
 public:
  /// Opens (creating the directory when missing) the environment at `dir` and clears stale readers.
  /// Errors: kIO (directory unusable), kStorage (LMDB refused).
  static Result<std::unique_ptr<Env>> open(const std::string& dir, const EnvOptions& opts = {});
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  /// Runs `fn` inside one write transaction and commits. Retries after growing the map on
  /// MDB_MAP_FULL. A non-OK Status from `fn` aborts the transaction and is returned unchanged.
  Status write(const std::function<Status(Txn&)>& fn);
  /// Runs `fn` inside one read-only transaction (a consistent snapshot).
  Status read(const std::function<Status(Txn&)>& fn) const;

  const std::string& path() const { return path_; }
  std::size_t map_size() const;
  void set_commit_hook(CommitHook hook);

  struct Impl;

 private:
  explicit Env(std::unique_ptr<Impl> impl, std::string path);
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

/// A transaction handle passed to Env::read / Env::write callbacks. Borrowed: valid only inside
/// the callback. Returned string_views point into the map and are valid until the callback returns.
class Txn {
 public:
  bool writable() const { return writable_; }

  /// Value stored under `key` in database `db`, or nullopt.
  Result<std::optional<std::string_view>> get(std::string_view db, std::string_view key);
  Status put(std::string_view db, std::string_view key, std::string_view value);
  /// Stores only when the key is absent; returns false when it already existed.
  Result<bool> put_if_absent(std::string_view db, std::string_view key, std::string_view value);
  /// Removes `key`; returns false when it was absent.
  Result<bool> del(std::string_view db, std::string_view key);
  /// Calls `fn(key, value)` for every key starting with `prefix`, in key order, from `start_after`
  /// (exclusive; empty = from the first). `fn` returns false to stop.
  Status scan(std::string_view db, std::string_view prefix,
              const std::function<bool(std::string_view key, std::string_view value)>& fn,
              std::string_view start_after = {});
  /// Like scan, in reverse key order (for "latest first" listings).
  Status scan_reverse(std::string_view db, std::string_view prefix,
                      const std::function<bool(std::string_view key, std::string_view value)>& fn);
  /// Number of entries in `db` (0 when it does not exist yet).
  Result<std::uint64_t> count(std::string_view db);
  /// Removes every entry of `db`.
  Status clear(std::string_view db);

  struct Impl;
  Txn(Impl* impl, bool writable) : impl_(impl), writable_(writable) {}

 private:
  Impl* impl_;
  bool writable_;
};

/// Composite key "a\x1fb\x1fc": the unit separator cannot appear in object names or ids we accept.
std::string key_of(std::initializer_list<std::string_view> parts);
/// Splits a composite key back into its parts.
std::vector<std::string_view> split_key(std::string_view key);
/// 8-byte big-endian encoding so that integer keys sort numerically.
std::string be64(std::uint64_t v);
std::uint64_t from_be64(std::string_view s);

/// Exclusive advisory lock on `<dir>/run.lock` (flock). Held for the lifetime of the object; released
/// by the kernel if the process dies, so a crash never leaves a migration locked.
class RunLock {
 public:
  /// kLocked when another process holds it (its pid is in the message when readable).
  static Result<std::unique_ptr<RunLock>> acquire(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace cmg::store
