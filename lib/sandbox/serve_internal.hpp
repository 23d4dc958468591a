// Private: pieces shared by the HubSpot and Pipedrive dialects of `sandbox serve` (serve.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/net/http.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"
#include "crmmigrate/sandbox/serve.hpp"
#include "sandbox/faults.hpp"

namespace cmg::sandbox::serve_internal {

namespace json = boost::json;

/// Burst limit plus a daily count (UTC day). The burst window is fixed (Pipedrive: it announces
/// when it resets) or rolling (HubSpot's TEN_SECONDLY_ROLLING policy: at most N requests in ANY
/// window, so a client may use what has left the window instead of waiting for a reset).
class RateLimiter {
 public:
  struct Decision {
    bool allowed = true;
    std::int64_t burst_max = 0;
    std::int64_t burst_remaining = 0;
    std::int64_t window_ms = 0;
    std::int64_t reset_ms = 0;  // until the burst window resets
    std::int64_t daily_max = 0;
    std::int64_t daily_remaining = 0;
    std::int64_t retry_after_ms = 0;  // when !allowed
  };
  explicit RateLimiter(const Quota& q, bool rolling = false) : quota_(q), rolling_(rolling) {}
  /// Counts one request at `now_ms` (a rejected one is not counted). Thread-safe.
  Decision take(std::int64_t now_ms, bool enforce);

 private:
  std::mutex mu_;
  Quota quota_;
  bool rolling_ = false;
  std::deque<std::int64_t> arrivals_;  // rolling: the counted requests inside the window
  std::int64_t window_start_ = -1;
  std::int64_t in_window_ = 0;
  std::int64_t day_ = -1;
  std::int64_t in_day_ = 0;
};

/// State shared by every request of one served sandbox.
struct Context {
  std::shared_ptr<SandboxCrm> crm;
  SandboxServeOptions options;
  Quota quota;
  std::unique_ptr<RateLimiter> limiter;
  internal::FaultInjector faults;

  std::int64_t now_ms() const;
};

/// A JSON reply with `status`.
net::HttpResponse json_reply(int status, const json::value& body);

/// Constant-time comparison of a presented token with the expected one.
bool token_equals(std::string_view given, std::string_view expected) noexcept;

/// Every value of query parameter `name` (repeated and comma-separated forms both split).
std::vector<std::string> query_list(const net::HttpRequest& req, std::string_view name);

/// Path segments of `path` ("/a/b" → {"a","b"}), percent-decoded.
std::vector<std::string> split_path(std::string_view path);

/// Parses a JSON request body; nullopt with `error` set when it is not JSON.
std::optional<json::value> parse_body(const net::HttpRequest& req, std::string& error);

/// A random-looking correlation id (UUID form) for error bodies.
std::string correlation_id();

/// Parses a positive decimal integer; nullopt otherwise.
std::optional<std::int64_t> parse_int(std::string_view s) noexcept;

/// What happens to a write after the fault draw.
struct WriteFaultPlan {
  internal::WriteFault fault;
  /// True when the call must be answered with an error and nothing applied (429, 5xx, reset).
  bool refuse() const;
};

/// Applies a drawn timeout / lost reply / malformed fault to a normal reply of an applied (or, for
/// timeout/malformed, possibly not applied) write.
void decorate_write_reply(net::HttpResponse& res, const internal::WriteFault& fault, const Context& ctx);

/// Builds a dialect's error reply (Pipedrive ignores `category`).
using ErrorFn = net::HttpResponse (*)(int status, std::string_view category, std::string_view message);

/// Draws the fault of a read request: a 429 or 503 reply (with Retry-After), or nullopt.
std::optional<net::HttpResponse> read_fault(Context& ctx, ErrorFn error);

/// A write request after its fault draw: either `refusal` (nothing applied) or one result per op
/// (empty when a timeout/malformed fault chose not to apply the call).
struct WriteRun {
  internal::WriteFault fault;
  std::optional<net::HttpResponse> refusal;
  std::vector<WriteResult> results;
};
/// Draws a fault for `ops` and applies them (except the partially rejected ones) in one write().
Result<WriteRun> run_write(Context& ctx, std::string_view object, const std::vector<WriteOp>& ops, ErrorFn error);
/// The reply of a write whose timeout/malformed fault chose not to apply it.
net::HttpResponse unapplied_reply(const internal::WriteFault& fault, const Context& ctx);

/// Every record of `object` (Source-side read, never faulted) in id order.
Result<std::vector<Record>> all_records(SandboxCrm& crm, std::string_view object);

/// The dialects: each answers every request after the token and rate-limit checks (serve.cpp).
net::HttpResponse hubspot_handle(Context& ctx, const net::HttpRequest& req);
net::HttpResponse hubspot_error(int status, std::string_view category, std::string_view message);
net::HttpResponse pipedrive_handle(Context& ctx, const net::HttpRequest& req);
net::HttpResponse pipedrive_error(int status, std::string_view message);

}  // namespace cmg::sandbox::serve_internal
