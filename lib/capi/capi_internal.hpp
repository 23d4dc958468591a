// Shared pieces of the C API translation layer: the per-thread last error, the guard every C body
// runs in, Status → C code mapping, JSON helpers, and the handle structs behind the opaque types.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/status.hpp"
#include "crmmigrate/crmmigrate.h"
#include "crmmigrate/pipeline/migration.hpp"

namespace cmg::capi {

/// Records {code, message} as the calling thread's last error and returns `code`. Never throws.
int set_error(int code, std::string_view message) noexcept;
void clear_error() noexcept;
/// The calling thread's last error message (what a plugin recorded with cmg_error_set_str()).
std::string last_message();

int to_c_code(Code code) noexcept;
/// Records the Status as the last error and returns its C code (CMG_OK for an OK Status).
int fail(const Status& st) noexcept;
inline int invalid(std::string_view message) noexcept { return set_error(CMG_EINVALID, message); }

/// Runs `body` (returning int) with the last error cleared first; any exception becomes
/// CMG_ENOMEM or CMG_EINTERNAL with its message, so none crosses into C.
template <typename F>
int guard(const char* fn, F&& body) noexcept {
  clear_error();
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return set_error(CMG_ENOMEM, std::string(fn) + ": out of memory");
  } catch (const std::exception& e) {
    return set_error(CMG_EINTERNAL, std::string(fn) + ": internal error: " + e.what());
  } catch (...) {
    return set_error(CMG_EINTERNAL, std::string(fn) + ": internal error: unknown exception");
  }
}

/// Same for bodies that return nothing (close functions).
template <typename F>
void guard_void(const char* fn, F&& body) noexcept {
  (void)guard(fn, [&]() -> int {
    body();
    return CMG_OK;
  });
}

/// Copies `text` into `out` (allocated with malloc, NUL-terminated). Throws std::bad_alloc.
void buf_assign(cmg_buf* out, std::string_view text);
/// Serialises `v` into `out`.
void buf_json(cmg_buf* out, const boost::json::value& v);

/// A cmg_buf the library passes to a plugin and disposes of afterwards.
struct ScopedBuf {
  cmg_buf b = CMG_BUF_INIT;
  ScopedBuf() = default;
  ScopedBuf(const ScopedBuf&) = delete;
  ScopedBuf& operator=(const ScopedBuf&) = delete;
  ~ScopedBuf() { cmg_buf_dispose(&b); }
  std::string_view view() const { return b.ptr ? std::string_view(b.ptr, b.size) : std::string_view(); }
  bool empty() const { return b.ptr == nullptr || b.size == 0; }
};

/// Parses JSON text; on failure returns false and sets `error` ("line:col" free, short).
bool parse_json(std::string_view text, boost::json::value& out, std::string& error);

/// A plugin record {"object"?, "id", "updated_at"?, "fields"} → Record (`object` by default).
bool record_from_plugin_json(const boost::json::value& v, std::string_view default_object, Record& out,
                             std::string& error);

/// The message of a plugin that returned `rc`: `fallback` when non-empty, else what it recorded
/// with cmg_error_set_str(), else a generic text. Prefixed with `who`.
std::string plugin_message(std::string_view who, int rc, const char* fallback);

/// Owns a plugin's user_data: calls destroy(user_data) exactly once, when the last owner goes.
class UserData {
 public:
  UserData(void (*destroy)(void*), void* user_data) noexcept : destroy_(destroy), user_data_(user_data) {}
  UserData(const UserData&) = delete;
  UserData& operator=(const UserData&) = delete;
  ~UserData() {
    if (destroy_) destroy_(user_data_);
  }
  void* get() const noexcept { return user_data_; }

 private:
  void (*destroy_)(void*);
  void* user_data_;
};

/// The first failure of a plugin that has no error channel in the C++ interface (validators,
/// normalizers). The running call polls it through RunOptions::cancelled and returns CMG_EPLUGIN.
class PluginFailures {
 public:
  void record(std::string message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failed_) message_ = std::move(message);
    failed_ = true;
  }
  bool failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  std::string message() const {
    std::lock_guard<std::mutex> lock(mu_);
    return message_;
  }
  void reset() {
    std::lock_guard<std::mutex> lock(mu_);
    failed_ = false;
    message_.clear();
  }

 private:
  mutable std::mutex mu_;
  bool failed_ = false;
  std::string message_;
};

}  // namespace cmg::capi

struct cmg_migration {
  std::unique_ptr<cmg::Migration> migration;
  std::shared_ptr<cmg::capi::PluginFailures> failures = std::make_shared<cmg::capi::PluginFailures>();
};

struct cmg_audit_cursor {
  std::vector<std::string> events;
  std::size_t next = 0;
};
