// Status and Result<T>: how every fallible crmmigrate function reports failure.
//
// A Status is either OK or carries a Code and a human message that already names the file, line or
// JSON path involved. Functions return [[nodiscard]] Status or Result<T>; exceptions are reserved for
// programming errors (the C API and CLI catch them at the boundary).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace cmg {

/// Error categories. The CLI maps them to exit codes (DESIGN §5): kInvalidArgument and kConfig → 2,
/// kLocked → 4, kUnavailable/kPermissionDenied → 6, the rest → 2 with the message on stderr.
enum class Code {
  kOk = 0,
  kInvalidArgument,   // bad call or command-line usage
  kConfig,            // migration config invalid (message names the JSON path)
  kParse,             // malformed input file (message names file and line)
  kNotFound,          // a named record, item or file does not exist
  kAlreadyExists,     // unique value taken (e.g. destination duplicate)
  kLocked,            // another run holds the migration lock
  kUnavailable,       // source/destination unreachable (retryable at a higher level)
  kPermissionDenied,  // credentials refused
  kIO,                // filesystem or storage failure
  kStorage,           // LMDB error other than I/O
  kCancelled,         // stopped by a signal or a cancel callback
  kPlugin,            // a user-supplied plugin (connector, rule) failed
  kInternal,          // a bug: an invariant did not hold
};

/// Short stable name of a code ("config", "parse", ...), used in JSON and by bindings.
const char* code_name(Code code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const noexcept { return code_ == Code::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  /// "<code>: <message>" for logs.
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status config_error(std::string m) { return {Code::kConfig, std::move(m)}; }
inline Status parse_error(std::string m) { return {Code::kParse, std::move(m)}; }
inline Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status io_error(std::string m) { return {Code::kIO, std::move(m)}; }
inline Status internal_error(std::string m) { return {Code::kInternal, std::move(m)}; }

/// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                       // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}                // NOLINT: implicit by design
  bool is_ok() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return is_ok(); }
  const Status& status() const {
    static const Status ok_status;
    return is_ok() ? ok_status : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cmg

#define CMG_CONCAT_IMPL(a, b) a##b
#define CMG_CONCAT(a, b) CMG_CONCAT_IMPL(a, b)

/// Returns the Status from the enclosing function when `expr` is not OK.
#define CMG_RETURN_IF_ERROR(expr) CMG_RETURN_IF_ERROR_IMPL(CMG_CONCAT(cmg_status_, __COUNTER__), expr)
#define CMG_RETURN_IF_ERROR_IMPL(tmp, expr) \
  do {                                      \
    ::cmg::Status tmp = (expr);             \
    if (!tmp.is_ok()) return tmp;           \
  } while (0)

/// `CMG_ASSIGN_OR_RETURN(auto x, make_x());` declares x from a Result or returns its Status.
#define CMG_ASSIGN_OR_RETURN(lhs, rexpr) \
  CMG_ASSIGN_OR_RETURN_IMPL(CMG_CONCAT(cmg_result_, __COUNTER__), lhs, rexpr)
#define CMG_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                              \
  if (!tmp.is_ok()) return tmp.status();           \
  lhs = std::move(tmp).value()
