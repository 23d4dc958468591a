// QuotaScheduler: paces the requests a connector sends to a rate-limited platform so that our own
// traffic never causes a 429 when the declared limits are right, and leaves a reserve for the other
// integrations that share the account's quota.
//
// Model:
// - Burst limit: at most `burst_requests` requests in ANY window of `burst_window_ms` (a sliding
//   log of send times plus `margin_ms`). A classic token bucket of capacity N refilled at N/W lets
//   2N requests through in one window (a full bucket plus the refill), which a platform counting
//   over a sliding window answers with 429 — hence the log.
// - Daily budget: `daily_requests` per 24 h, counted locally from the first request and replaced by
//   the platform's own count whenever a response carries it.
// - Reserve: `reserve` < 1 is a fraction of both limits left unused; `reserve` >= 1 is a number of
//   daily requests left unused. The platform's "remaining" headers are compared against the same
//   reserve, so traffic from other integrations slows us down instead of starving them.
// - Response headers update the state (observe()): HubSpot X-HubSpot-RateLimit-Max / -Remaining /
//   -Interval-Milliseconds / -Daily / -Daily-Remaining; Pipedrive x-ratelimit-limit / -remaining /
//   -reset (seconds) and x-daily-requests-left; Retry-After (seconds or an HTTP date) on any
//   response: no request is let through before it expires. A declared limit is lowered (never
//   raised) by a smaller limit the platform announces.
// - The platform's burst "remaining" count: when it is lower than what our own log leaves us —
//   requests we did not send (another integration, or an earlier process of ours whose log died
//   with it) — the difference is entered in the log as requests sent now, so they leave the window
//   a full window later. With several requests in flight a reply is older than our latest sends:
//   acquire() hands out a ticket and observe() takes it back, so the requests acquired after the one
//   answered are counted as not yet seen by the platform (without a ticket the reply is taken as the
//   latest). Pipedrive also says when its window resets: at 0 remaining we wait for that instead.
//
// Time comes from a cmg::Clock (the pipeline clock of lib/pipeline/pipeline_internal.hpp: steady ms
// and a sleep that a test clock turns into advancing time). A null clock means "the pipeline clock
// at the moment of the call", so tests that install a fake pipeline clock also control the quota.
//
// Thread-safety: every member function may be called concurrently (one mutex; acquire() sleeps
// without holding it).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <deque>
#include <string>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/status.hpp"
#include "crmmigrate/net/http.hpp"

namespace cmg {
struct Clock;  // lib/pipeline/pipeline_internal.hpp
}

namespace cmg::net {

struct QuotaLimits {
  int burst_requests = 0;            // per burst window; 0 = no burst limit
  std::int64_t burst_window_ms = 0;  // e.g. 10000 (HubSpot), 2000 (Pipedrive)
  std::int64_t daily_requests = 0;   // per 24 h; 0 = unlimited
  double reserve = 0;                // < 1: fraction of both limits; >= 1: daily requests left unused
  /// Added to the burst window so that network jitter between our send time and the platform's
  /// arrival time cannot squeeze N+1 requests into one of its windows. -1 = automatic
  /// (burst_window_ms / 50, between 20 and 1000 ms).
  std::int64_t margin_ms = -1;
  /// acquire() fails instead of sleeping longer than this (a spent daily budget). 0 = never fail.
  std::int64_t max_wait_ms = 15 * 60 * 1000;
};

/// Reads {"burst_requests","burst_window_ms","daily_requests","reserve"} (each optional, over
/// `defaults`) from a connector's "limits" option. Errors: kConfig naming `path` + key.
Result<QuotaLimits> quota_limits_from_json(const boost::json::value& v, const std::string& path,
                                           QuotaLimits defaults);

/// The limits as the Destination::quota() struct (max_batch as given).
Quota to_quota(const QuotaLimits& limits, int max_batch);

struct QuotaStats {
  std::uint64_t acquired = 0;     // requests let through
  std::uint64_t throttled = 0;    // 429 responses observed
  std::int64_t waited_ms = 0;     // total time acquire() slept
};

class QuotaScheduler {
 public:
  explicit QuotaScheduler(QuotaLimits limits, std::shared_ptr<Clock> clock = nullptr);

  /// Waits (sleeping on the clock) until one more request is allowed, then counts it as sent.
  /// Errors: kUnavailable when the wait would exceed max_wait_ms (the daily budget is spent or the
  /// platform asked for a longer pause); the message says how long and why.
  /// `ticket` (optional) receives the request's sequence number for observe().
  Status acquire(std::uint64_t* ticket = nullptr);
  /// Updates the state from a response (`status` 429 counts as throttled; Retry-After honoured on
  /// every status). `ticket`: the one acquire() gave for the request answered; 0 = the latest.
  void observe(int status, const Headers& headers, std::uint64_t ticket = 0);
  /// Blocks every request until now + `ms` (a later deadline wins), e.g. a Retry-After the caller
  /// parsed itself.
  void defer(std::int64_t ms);
  /// Milliseconds until `n_requests` more requests could all have been sent from the current state
  /// (0 when they fit now). Days of daily budget count as 24 h each.
  std::int64_t eta_ms(std::int64_t n_requests) const;
  /// The limits in force (declared, possibly lowered by the platform's headers), reserve applied.
  int effective_burst() const;
  std::int64_t effective_daily() const;
  QuotaLimits limits() const;
  QuotaStats stats() const;
  /// True when none of our requests is left in the burst window and no pause is pending: a fresh
  /// scheduler with the same limits would let the same requests through.
  bool idle() const;

 private:
  std::int64_t now() const;
  void sleep(std::int64_t ms) const;
  // Both under mu_:
  std::int64_t wait_needed(std::int64_t now) const;
  void prune(std::int64_t now) const;
  int burst_reserve() const;
  std::int64_t daily_reserve() const;

  std::shared_ptr<Clock> clock_;
  mutable std::mutex mu_;
  QuotaLimits limits_;
  std::int64_t margin_ = 0;
  mutable std::deque<std::int64_t> sent_;  // send times inside the current burst window
  std::int64_t not_before_ = 0;            // Retry-After / exhausted "remaining" headers
  std::int64_t day_start_ = -1;            // local daily window start (-1 = no request yet)
  std::int64_t day_used_ = 0;              // requests sent in the local daily window
  std::int64_t platform_daily_left_ = -1;  // from the last response carrying it (-1 = unknown)
  std::int64_t sent_since_daily_header_ = 0;
  std::uint64_t seq_ = 0;                  // tickets handed out by acquire()
  QuotaStats stats_;
};

/// Retry-After value in ms: delta-seconds (decimals allowed) or an IMF-fixdate relative to the
/// system clock. -1 when absent or unparsable.
std::int64_t parse_retry_after_ms(std::string_view value);

}  // namespace cmg::net
