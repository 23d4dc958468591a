#include "crmmigrate/store/lmdb_env.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

namespace cmg::store {

namespace {

Status lmdb_status(int rc, std::string_view what, const std::string& path) {
  std::string msg = std::string(what) + " (" + path + "): " + mdb_strerror(rc);
  if (rc == EIO || rc == ENOSPC || rc == EACCES || rc == ENOENT) return {Code::kIO, msg};
  return {Code::kStorage, msg};
}

MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
std::string_view from_val(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}


// Marker database of an environment created with EnvOptions::natural_order: one key per database
// name that compares in natural order.
constexpr const char* kKeyOrderDb = "key_order";

// Natural key order (see EnvOptions::natural_order): keys compare part by part on the '\x1f'
// separator, a shorter part first and parts of one length by bytes (ids numbered without leading
// zeros thus sort by value). A lexicographic order over part sequences, each part ordered by
// (length, bytes), is a total order, and a prefix that ends on a separator still selects one
// contiguous run of keys. Called for every key comparison LMDB makes: no part is scanned but the
// one where the keys first differ, from that byte to its end.
int natural_compare(const MDB_val* a, const MDB_val* b) {
  const auto* p = static_cast<const unsigned char*>(a->mv_data);
  const auto* q = static_cast<const unsigned char*>(b->mv_data);
  const std::size_t la = a->mv_size, lb = b->mv_size, n = la < lb ? la : lb;
  std::size_t i = 0;  // the first position where the keys differ (or n)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  std::uint64_t x = 0, y = 0;
  for (; i + 8 <= n; i += 8) {
    std::memcpy(&x, p + i, 8);
    std::memcpy(&y, q + i, 8);
    if (x != y) break;
  }
  if (i + 8 > n && n >= 8) {
    // The last eight bytes of the shorter length, overlapping what was compared already.
    std::memcpy(&x, p + n - 8, 8);
    std::memcpy(&y, q + n - 8, 8);
    i = n - 8;
  }
  if (x != y) {
    i += static_cast<std::size_t>(__builtin_ctzll(x ^ y)) / 8;  // the lowest differing byte comes first
  } else if (n >= 8) {
    i = n;
  }
#endif
  while (i < n && p[i] == q[i]) ++i;
  if (i == la && i == lb) return 0;
  // The keys agree up to i, separators included: the part holding position i starts at the same
  // offset in both, so the parts' lengths compare as their ends do.
  std::size_t ea = i, eb = i;
  while (ea < la && p[ea] != 0x1f) ++ea;
  while (eb < lb && q[eb] != 0x1f) ++eb;
  if (ea != eb) return ea < eb ? -1 : 1;
  if (i < ea) return p[i] < q[i] ? -1 : 1;
  return i == la ? -1 : 1;  // equal parts: the key without more parts sorts first
}

}  // namespace

struct Env::Impl {
  MDB_env* env = nullptr;
  std::string path;
  bool read_only = false;
  // Named database handles are process-wide in LMDB; open each once and keep it.
  std::mutex dbi_mutex;
  std::map<std::string, MDB_dbi, std::less<>> dbis;
  std::mutex hook_mutex;
  CommitHook hook;
  std::uint64_t commits = 0;

  ~Impl() {
    if (env) mdb_env_close(env);
  }
};

struct Txn::Impl {
  Env::Impl* env;
  MDB_txn* txn;

  // Resolves a named database; in a read transaction a database that does not exist yet is reported
  // as absent (nullopt) instead of an error.
  Result<std::optional<MDB_dbi>> dbi(std::string_view name, bool create) {
    // Every get/put names its database: the handles this transaction already resolved are looked
    // up here first, without the process-wide lock (the pipeline makes millions of calls).
    for (std::size_t i = 0; i < cached_n; ++i)
      if (cached[i].name == name) return std::optional<MDB_dbi>(cached[i].handle);
    // mdb_dbi_open must not run concurrently in one process; handles opened inside a transaction
    // become shared only when it commits, so they are published from `pending` at commit time.
    std::lock_guard<std::mutex> lock(env->dbi_mutex);
    auto it = env->dbis.find(name);
    if (it != env->dbis.end()) {
      // The key is owned by env->dbis, whose entries are never removed while the Env lives.
      if (cached_n < kCache) cached[cached_n++] = {it->first, it->second};
      return std::optional<MDB_dbi>(it->second);
    }
    for (auto& [n, h] : pending)
      if (n == name) return std::optional<MDB_dbi>(h);
    MDB_dbi handle = 0;
    std::string n(name);
    int rc = mdb_dbi_open(txn, n.c_str(), create ? MDB_CREATE : 0, &handle);
    if (rc == MDB_NOTFOUND) return std::optional<MDB_dbi>();
    if (rc != 0) return lmdb_status(rc, "opening database '" + n + "'", env->path);
    if (n != kKeyOrderDb && natural_order(n)) mdb_set_compare(txn, handle, natural_compare);
    pending.emplace_back(std::move(n), handle);
    return std::optional<MDB_dbi>(handle);
  }
  // Whether the environment's creator gave database `name` natural key order (the marker
  // database lists those names). Read in the transaction that opens the handle: one that sees the
  // database sees the marker, which was committed before any database was made.
  bool natural_order(const std::string& name) {
    MDB_dbi order = 0;
    if (mdb_dbi_open(txn, kKeyOrderDb, 0, &order) != 0) return false;
    MDB_val k = to_val(name), v;
    return mdb_get(txn, order, &k, &v) == 0;
  }
  void publish() {
    std::lock_guard<std::mutex> lock(env->dbi_mutex);
    for (auto& [n, h] : pending) env->dbis.emplace(n, h);
    pending.clear();
  }
  std::vector<std::pair<std::string, MDB_dbi>> pending;
  struct Cached {
    std::string_view name;
    MDB_dbi handle;
  };
  static constexpr std::size_t kCache = 16;
  Cached cached[kCache] = {};
  std::size_t cached_n = 0;

  // A write transaction's puts go through one cursor per database, kept open until the
  // transaction ends (LMDB then frees it). A positioned cursor checks first whether the next key
  // belongs on the leaf page it is on, which skips the descent from the root for keys put in
  // order (most batches); mdb_put would search from the root with a new cursor each time.
  // While a cursor's keys come after every key of the database, they are appended (MDB_APPEND):
  // a full last page then splits at its end instead of in half, so pages filled in key order stay
  // full (with half splits they stay half empty). The first key that does not come last ends
  // the appending for that cursor; MDB_APPEND refuses it (MDB_KEYEXIST) and it is put as usual.
  struct PutCursor {
    MDB_dbi handle;
    MDB_cursor* cursor;
    bool appending;
  };
  PutCursor put_cursors[kCache] = {};
  std::size_t put_cursors_n = 0;
  // Puts `key` → `value` into `handle` (MDB_NOOVERWRITE and the like in `flags`).
  int put(MDB_dbi handle, MDB_val* key, MDB_val* value, unsigned flags) {
    PutCursor* pc = nullptr;
    for (std::size_t i = 0; i < put_cursors_n && !pc; ++i)
      if (put_cursors[i].handle == handle) pc = &put_cursors[i];
    if (!pc) {
      MDB_cursor* c = nullptr;
      // More databases written than the table holds (not the pipeline's case): a plain put.
      if (put_cursors_n == kCache || mdb_cursor_open(txn, handle, &c) != 0) return mdb_put(txn, handle, key, value, flags);
      put_cursors[put_cursors_n] = {handle, c, true};
      pc = &put_cursors[put_cursors_n++];
    }
    if (pc->appending) {
      int rc = mdb_cursor_put(pc->cursor, key, value, flags | MDB_APPEND);
      if (rc != MDB_KEYEXIST) return rc;
      pc->appending = false;
    }
    return mdb_cursor_put(pc->cursor, key, value, flags);
  }
};

Result<std::unique_ptr<Env>> Env::open(const std::string& dir, const EnvOptions& opts) {
  std::error_code ec;
  if (!opts.read_only) std::filesystem::create_directories(dir, ec);
  if (ec) return io_error("cannot create state directory " + dir + ": " + ec.message());
  if (!std::filesystem::is_directory(dir, ec))
    return Status(Code::kNotFound, "no state directory at " + dir);

  auto impl = std::make_unique<Impl>();
  impl->path = dir;
  impl->read_only = opts.read_only;
  int rc = mdb_env_create(&impl->env);
  if (rc != 0) return lmdb_status(rc, "mdb_env_create", dir);
  mdb_env_set_maxdbs(impl->env, opts.max_dbs);
  mdb_env_set_maxreaders(impl->env, 256);
  rc = mdb_env_set_mapsize(impl->env, opts.initial_map_size);
  if (rc != 0) return lmdb_status(rc, "mdb_env_set_mapsize", dir);
  unsigned flags = MDB_NOTLS;  // read transactions may move between threads (console, bindings)
  if (opts.read_only) flags |= MDB_RDONLY;
  if (opts.no_sync) flags |= MDB_NOSYNC;
  rc = mdb_env_open(impl->env, dir.c_str(), flags, 0644);
  if (rc != 0) return lmdb_status(rc, "opening LMDB environment", dir);
  // A process killed while reading leaves its reader slot behind; clear those before we start.
  int dead = 0;
  mdb_reader_check(impl->env, &dead);
  if (!opts.read_only && !opts.natural_order.empty()) {
    // A new environment (no database yet) records which databases order their keys naturally;
    // an existing one keeps the order it was created with.
    MDB_txn* txn = nullptr;
    rc = mdb_txn_begin(impl->env, nullptr, 0, &txn);
    if (rc != 0) return lmdb_status(rc, "beginning write transaction", dir);
    MDB_dbi main = 0, order = 0;
    MDB_stat st;
    rc = mdb_dbi_open(txn, nullptr, 0, &main);
    if (rc == 0) rc = mdb_stat(txn, main, &st);
    if (rc == 0 && st.ms_entries == 0) {
      rc = mdb_dbi_open(txn, kKeyOrderDb, MDB_CREATE, &order);
      for (const auto& name : opts.natural_order) {
        if (rc != 0) break;
        MDB_val k = to_val(name), v = to_val("natural");
        rc = mdb_put(txn, order, &k, &v, 0);
      }
    }
    if (rc != 0) {
      mdb_txn_abort(txn);
      return lmdb_status(rc, "recording the key order", dir);
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) return lmdb_status(rc, "recording the key order", dir);
  }
  return std::unique_ptr<Env>(new Env(std::move(impl), dir));
}

Env::Env(std::unique_ptr<Impl> impl, std::string path) : impl_(std::move(impl)), path_(std::move(path)) {}
Env::~Env() = default;

std::size_t Env::map_size() const {
  MDB_envinfo info;
  mdb_env_info(impl_->env, &info);
  return info.me_mapsize;
}

void Env::set_commit_hook(CommitHook hook) {
  std::lock_guard<std::mutex> lock(impl_->hook_mutex);
  impl_->hook = std::move(hook);
}

Status Env::write(const std::function<Status(Txn&)>& fn) {
  if (impl_->read_only) return Status(Code::kInvalidArgument, "state opened read-only: " + path_);
  for (int attempt = 0;; ++attempt) {
    MDB_txn* raw = nullptr;
    int rc = mdb_txn_begin(impl_->env, nullptr, 0, &raw);
    if (rc == MDB_MAP_RESIZED) {
      // Another process grew the map: adopt its size and try again.
      mdb_env_set_mapsize(impl_->env, 0);
      continue;
    }
    if (rc != 0) return lmdb_status(rc, "beginning write transaction", path_);
    Txn::Impl ti{impl_.get(), raw, {}, {}, 0};
    Txn txn(&ti, true);
    Status st = fn(txn);
    bool full = st.code() == Code::kStorage && st.message().find("MDB_MAP_FULL") != std::string::npos;
    if (st.is_ok()) {
      CommitHook hook;
      {
        std::lock_guard<std::mutex> lock(impl_->hook_mutex);
        hook = impl_->hook;
      }
      if (hook) {
        Status hs = hook(impl_->commits + 1);
        if (!hs.is_ok()) {
          mdb_txn_abort(raw);
          return hs;
        }
      }
      rc = mdb_txn_commit(raw);
      if (rc == 0) {
        ++impl_->commits;
        ti.publish();
        return Status::ok();
      }
      if (rc != MDB_MAP_FULL) return lmdb_status(rc, "committing", path_);
      full = true;
    } else {
      mdb_txn_abort(raw);
    }
    if (!full) return st;
    if (attempt >= 20) return Status(Code::kStorage, "state map cannot grow further: " + path_);
    // MDB_MAP_FULL: grow the map (no transaction may be open in this process) and run fn again.
    std::size_t next = map_size() * 2;
    rc = mdb_env_set_mapsize(impl_->env, next);
    if (rc != 0) return lmdb_status(rc, "growing the map", path_);
  }
}

Status Env::read(const std::function<Status(Txn&)>& fn) const {
  for (;;) {
    MDB_txn* raw = nullptr;
    int rc = mdb_txn_begin(impl_->env, nullptr, MDB_RDONLY, &raw);
    if (rc == MDB_MAP_RESIZED) {
      mdb_env_set_mapsize(impl_->env, 0);
      continue;
    }
    if (rc != 0) return lmdb_status(rc, "beginning read transaction", path_);
    Txn::Impl ti{impl_.get(), raw, {}, {}, 0};
    Txn txn(&ti, false);
    Status st = fn(txn);
    // Committing (not aborting) a read-only transaction keeps the database handles it opened.
    if (mdb_txn_commit(raw) == 0) ti.publish();
    return st;
  }
}

// ---- Txn ----

static Status txn_error(Txn::Impl* t, int rc, std::string_view what) {
  if (rc == MDB_MAP_FULL) return Status(Code::kStorage, std::string(what) + ": MDB_MAP_FULL");
  return lmdb_status(rc, what, t->env->path);
}

Result<std::optional<std::string_view>> Txn::get(std::string_view db, std::string_view key) {
  CMG_ASSIGN_OR_RETURN(auto dbi, impl_->dbi(db, false));
  if (!dbi) return std::optional<std::string_view>();
  MDB_val k = to_val(key), v;
  int rc = mdb_get(impl_->txn, *dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != 0) return txn_error(impl_, rc, "get");
  return std::optional<std::string_view>(from_val(v));
}

Status Txn::put(std::string_view db, std::string_view key, std::string_view value) {
  CMG_ASSIGN_OR_RETURN(auto dbi, impl_->dbi(db, true));
  MDB_val k = to_val(key), v = to_val(value);
  int rc = impl_->put(*dbi, &k, &v, 0);
  if (rc != 0) return txn_error(impl_, rc, "put");
  return Status::ok();
}

Result<bool> Txn::put_if_absent(std::string_view db, std::string_view key, std::string_view value) {
  CMG_ASSIGN_OR_RETURN(auto dbi, impl_->dbi(db, true));
  MDB_val k = to_val(key), v = to_val(value);
  int rc = impl_->put(*dbi, &k, &v, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return false;
  if (rc != 0) return txn_error(impl_, rc, "put");
  return true;
}

Result<bool> Txn::del(std::string_view db, std::string_view key) {
  CMG_ASSIGN_OR_RETURN(auto dbi, impl_->dbi(db, writable_));
  if (!dbi) return false;
  MDB_val k = to_val(key);
  int rc = mdb_del(impl_->txn, *dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return txn_error(impl_, rc, "del");
  return true;
}

namespace {
struct CursorGuard {
  MDB_cursor* c = nullptr;
  ~CursorGuard() {
    if (c) mdb_cursor_close(c);
  }
};
bool has_prefix(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}
}  // namespace

Status Txn::scan(std::string_view db, std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& fn,
                 std::string_view start_after) {
  CMG_ASSIGN_OR_RETURN(auto dbi, impl_->dbi(db, false));
  if (!dbi) return Status::ok();
  CursorGuard cur;
  int rc = mdb_cursor_open(impl_->txn, *dbi, &cur.c);
  if (rc != 0) return txn_error(impl_, rc, "cursor");
  std::string_view from = start_after.empty() ? prefix : start_after;
  MDB_val k = to_val(from), v;
  rc = from.empty() ? mdb_cursor_get(cur.c, &k, &v, MDB_FIRST) : mdb_cursor_get(cur.c, &k, &v, MDB_SET_RANGE);
  if (rc == 0 && !start_after.empty() && from_val(k) == start_after) rc = mdb_cursor_get(cur.c, &k, &v, MDB_NEXT);
  while (rc == 0) {
    std::string_view key = from_val(k);
    if (!has_prefix(key, prefix)) break;
    if (!fn(key, from_val(v))) return Status::ok();
    rc = mdb_cursor_get(cur.c, &k, &v, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return txn_error(impl_, rc, "scan");
  return Status::ok();
}

Status Txn::scan_reverse(std::string_view db, std::string_view prefix,
                         const std::function<bool(std::string_view, std::string_view)>& fn) {
  CMG_ASSIGN_OR_RETURN(auto dbi, impl_->dbi(db, false));
  if (!dbi) return Status::ok();
  CursorGuard cur;
  int rc = mdb_cursor_open(impl_->txn, *dbi, &cur.c);
  if (rc != 0) return txn_error(impl_, rc, "cursor");
  MDB_val k, v;
  if (prefix.empty()) {
    rc = mdb_cursor_get(cur.c, &k, &v, MDB_LAST);
  } else {
    // Position after the last key with this prefix: the prefix with its last byte incremented.
    std::string upper(prefix);
    while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xff) upper.pop_back();
    if (upper.empty()) {
      rc = mdb_cursor_get(cur.c, &k, &v, MDB_LAST);
    } else {
      upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
      k = to_val(upper);
      rc = mdb_cursor_get(cur.c, &k, &v, MDB_SET_RANGE);
      rc = rc == 0 ? mdb_cursor_get(cur.c, &k, &v, MDB_PREV) : mdb_cursor_get(cur.c, &k, &v, MDB_LAST);
    }
  }
  while (rc == 0) {
    std::string_view key = from_val(k);
    if (!has_prefix(key, prefix)) break;
    if (!fn(key, from_val(v))) return Status::ok();
    rc = mdb_cursor_get(cur.c, &k, &v, MDB_PREV);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return txn_error(impl_, rc, "scan");
  return Status::ok();
}

Result<std::uint64_t> Txn::count(std::string_view db) {
  CMG_ASSIGN_OR_RETURN(auto dbi, impl_->dbi(db, false));
  if (!dbi) return std::uint64_t{0};
  MDB_stat st;
  int rc = mdb_stat(impl_->txn, *dbi, &st);
  if (rc != 0) return txn_error(impl_, rc, "stat");
  return static_cast<std::uint64_t>(st.ms_entries);
}

Status Txn::clear(std::string_view db) {
  CMG_ASSIGN_OR_RETURN(auto dbi, impl_->dbi(db, false));
  if (!dbi) return Status::ok();
  int rc = mdb_drop(impl_->txn, *dbi, 0);
  if (rc != 0) return txn_error(impl_, rc, "clear");
  return Status::ok();
}

// ---- keys ----

std::string key_of(std::initializer_list<std::string_view> parts) {
  std::string k;
  bool first = true;
  for (auto p : parts) {
    if (!first) k.push_back('\x1f');
    k.append(p.data(), p.size());
    first = false;
  }
  return k;
}

std::vector<std::string_view> split_key(std::string_view key) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    auto pos = key.find('\x1f', start);
    if (pos == std::string_view::npos) {
      out.push_back(key.substr(start));
      return out;
    }
    out.push_back(key.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string be64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return s;
}

std::uint64_t from_be64(std::string_view s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

// ---- RunLock ----

Result<std::unique_ptr<RunLock>> RunLock::acquire(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string path = dir + "/run.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    std::string who = n > 0 ? std::string(" (pid ") + std::string(buf, static_cast<std::size_t>(n)) + ")" : "";
    return Status(Code::kLocked, "another run holds the migration lock " + path + who);
  }
  std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) == 0) {
    ssize_t w = ::pwrite(fd, pid.data(), pid.size(), 0);
    (void)w;
  }
  return std::unique_ptr<RunLock>(new RunLock(fd));
}

RunLock::~RunLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

}  // namespace cmg::store
