// QuotaScheduler (see crmmigrate/net/quota.hpp).
#include "crmmigrate/net/quota.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>

#include <boost/json.hpp>

#include "pipeline/pipeline_internal.hpp"

namespace cmg::net {

namespace json = boost::json;

namespace {

constexpr std::int64_t kDayMs = 24LL * 60 * 60 * 1000;

// Non-negative integer header value; -1 when absent or not a number.
std::int64_t header_int(const Headers& h, std::string_view name) {
  std::string_view v = header_value(h, name);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string_view::npos) return -1;
  return std::strtoll(std::string(v).c_str(), nullptr, 10);
}

int month_index(std::string_view m) {
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i)
    if (m == kMonths[i]) return i;
  return -1;
}

}  // namespace

std::int64_t parse_retry_after_ms(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return -1;
  if (v.find_first_not_of("0123456789.") == std::string_view::npos) {
    if (v.size() > 12 || v.front() == '.' || std::count(v.begin(), v.end(), '.') > 1) return -1;
    double s = std::strtod(std::string(v).c_str(), nullptr);
    return static_cast<std::int64_t>(std::ceil(s * 1000.0));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (v.size() != 29 || v.substr(3, 2) != ", " || v.substr(25) != " GMT") return -1;
  std::string s(v);
  std::tm tm{};
  int month = month_index(v.substr(8, 3));
  if (month < 0) return -1;
  auto num = [&](std::size_t pos, std::size_t len) -> int {
    for (std::size_t i = pos; i < pos + len; ++i)
      if (s[i] < '0' || s[i] > '9') return -1;
    return std::atoi(s.substr(pos, len).c_str());
  };
  tm.tm_mday = num(5, 2);
  tm.tm_mon = month;
  tm.tm_year = num(12, 4) - 1900;
  tm.tm_hour = num(17, 2);
  tm.tm_min = num(20, 2);
  tm.tm_sec = num(23, 2);
  if (tm.tm_mday < 1 || tm.tm_year < 0 || tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0) return -1;
  std::int64_t at = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  return std::max<std::int64_t>(0, at - now);
}

Result<QuotaLimits> quota_limits_from_json(const json::value& v, const std::string& path, QuotaLimits d) {
  const auto* o = v.if_object();
  if (!o) return config_error(path + ": expected an object");
  for (const auto& [k, val] : *o) {
    std::string at = path + "." + std::string(k);
    if (k == "reserve") {
      if (!val.is_number() || val.to_number<double>() < 0 || !std::isfinite(val.to_number<double>()))
        return config_error(at + ": expected a number >= 0 (a fraction < 1, or a count of daily requests)");
      d.reserve = val.to_number<double>();
      continue;
    }
    std::int64_t n = 0;
    if (val.is_int64()) n = val.get_int64();
    else if (val.is_uint64() && val.get_uint64() < (1ULL << 62)) n = static_cast<std::int64_t>(val.get_uint64());
    else return config_error(at + ": expected a whole number >= 0");
    if (n < 0) return config_error(at + ": expected a whole number >= 0");
    if (k == "burst_requests") {
      if (n > 1000000) return config_error(at + ": at most 1000000");
      d.burst_requests = static_cast<int>(n);
    } else if (k == "burst_window_ms") {
      d.burst_window_ms = n;
    } else if (k == "daily_requests") {
      d.daily_requests = n;
    } else {
      return config_error(at + ": unknown key (allowed: burst_requests, burst_window_ms, daily_requests, reserve)");
    }
  }
  if (d.burst_requests > 0 && d.burst_window_ms <= 0)
    return config_error(path + ".burst_window_ms: required (> 0) with burst_requests");
  return d;
}

Quota to_quota(const QuotaLimits& l, int max_batch) {
  Quota q;
  q.burst_requests = l.burst_requests;
  q.burst_window_ms = static_cast<int>(std::min<std::int64_t>(l.burst_window_ms, 1 << 30));
  q.daily_requests = l.daily_requests;
  q.max_batch = max_batch;
  return q;
}

QuotaScheduler::QuotaScheduler(QuotaLimits limits, std::shared_ptr<Clock> clock)
    : clock_(std::move(clock)), limits_(limits) {
  margin_ = limits_.margin_ms >= 0 ? limits_.margin_ms
                                   : std::clamp<std::int64_t>(limits_.burst_window_ms / 50, 20, 1000);
}

std::int64_t QuotaScheduler::now() const { return clock_ ? clock_->now_ms() : pipeline_clock()->now_ms(); }

void QuotaScheduler::sleep(std::int64_t ms) const {
  if (clock_) clock_->sleep_ms(ms);
  else pipeline_clock()->sleep_ms(ms);
}

int QuotaScheduler::effective_burst() const {
  std::lock_guard<std::mutex> lock(mu_);
  return limits_.burst_requests <= 0 ? 0 : limits_.burst_requests - burst_reserve();
}

std::int64_t QuotaScheduler::effective_daily() const {
  std::lock_guard<std::mutex> lock(mu_);
  return limits_.daily_requests <= 0 ? 0 : limits_.daily_requests - daily_reserve();
}

QuotaLimits QuotaScheduler::limits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return limits_;
}

QuotaStats QuotaScheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

bool QuotaScheduler::idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::int64_t t = now();
  prune(t);
  return sent_.empty() && not_before_ <= t;
}

int QuotaScheduler::burst_reserve() const {
  int n = limits_.burst_requests;
  if (n <= 0 || limits_.reserve <= 0 || limits_.reserve >= 1) return 0;
  int keep = static_cast<int>(std::floor(n * (1.0 - limits_.reserve)));
  return n - std::max(1, keep);  // always at least one request per window for us
}

std::int64_t QuotaScheduler::daily_reserve() const {
  std::int64_t d = limits_.daily_requests;
  if (d <= 0 || limits_.reserve <= 0) return 0;
  if (limits_.reserve < 1) return d - static_cast<std::int64_t>(std::floor(d * (1.0 - limits_.reserve)));
  return std::min<std::int64_t>(d, static_cast<std::int64_t>(limits_.reserve));
}

void QuotaScheduler::prune(std::int64_t t) const {
  std::int64_t span = limits_.burst_window_ms + margin_;
  while (!sent_.empty() && sent_.front() + span <= t) sent_.pop_front();
}

std::int64_t QuotaScheduler::wait_needed(std::int64_t t) const {
  std::int64_t w = std::max<std::int64_t>(0, not_before_ - t);
  if (limits_.burst_requests > 0) {
    prune(t);
    std::size_t eff = static_cast<std::size_t>(limits_.burst_requests - burst_reserve());
    if (sent_.size() >= eff) {
      std::int64_t expires = sent_[sent_.size() - eff] + limits_.burst_window_ms + margin_;
      w = std::max(w, expires - t);
    }
  }
  if (limits_.daily_requests > 0) {
    bool new_day = day_start_ < 0 || t >= day_start_ + kDayMs;
    std::int64_t used = new_day ? 0 : day_used_;
    std::int64_t left = limits_.daily_requests - daily_reserve() - used;
    if (platform_daily_left_ >= 0)
      left = std::min(left, platform_daily_left_ - sent_since_daily_header_ - daily_reserve());
    if (left <= 0) w = std::max(w, (new_day ? t : day_start_) + kDayMs - t);
  }
  return w;
}

Status QuotaScheduler::acquire(std::uint64_t* ticket) {
  for (;;) {
    std::int64_t w;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::int64_t t = now();
      w = wait_needed(t);
      if (w <= 0) {
        if (limits_.burst_requests > 0) sent_.push_back(t);
        if (day_start_ < 0 || t >= day_start_ + kDayMs) {
          day_start_ = t;
          day_used_ = 0;
          platform_daily_left_ = -1;  // a new day: the platform's count from yesterday is void
        }
        ++day_used_;
        ++sent_since_daily_header_;
        ++stats_.acquired;
        ++seq_;
        if (ticket) *ticket = seq_;
        return Status::ok();
      }
      if (limits_.max_wait_ms > 0 && w > limits_.max_wait_ms) {
        bool daily = w > limits_.burst_window_ms + margin_ && not_before_ - t < w;
        return Status(Code::kUnavailable,
                      std::string(daily ? "daily request budget exhausted (reserve included)"
                                        : "the platform asked us to pause") +
                          ": the next request is allowed in " + std::to_string((w + 999) / 1000) +
                          " s, beyond the " + std::to_string(limits_.max_wait_ms / 1000) + " s we wait");
      }
      stats_.waited_ms += w;
    }
    sleep(w);
  }
}

void QuotaScheduler::defer(std::int64_t ms) {
  if (ms <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  not_before_ = std::max(not_before_, now() + ms);
}

void QuotaScheduler::observe(int status, const Headers& h, std::uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  std::int64_t t = now();
  auto block_until = [&](std::int64_t at) { not_before_ = std::max(not_before_, at); };

  // Limits announced by the platform only ever lower ours.
  std::int64_t max = header_int(h, "X-HubSpot-RateLimit-Max");
  std::int64_t interval = header_int(h, "X-HubSpot-RateLimit-Interval-Milliseconds");
  std::int64_t remaining = header_int(h, "X-HubSpot-RateLimit-Remaining");
  std::int64_t reset_ms = -1;
  if (max < 0) {
    max = header_int(h, "x-ratelimit-limit");
    remaining = header_int(h, "x-ratelimit-remaining");
    std::int64_t reset_s = header_int(h, "x-ratelimit-reset");
    if (reset_s >= 0) reset_ms = reset_s * 1000;
  }
  if (max > 0 && max <= 1000000) {
    if (limits_.burst_requests <= 0 || max < limits_.burst_requests) {
      limits_.burst_requests = static_cast<int>(max);
      if (interval > 0) limits_.burst_window_ms = interval;
      if (limits_.burst_window_ms <= 0) limits_.burst_window_ms = reset_ms > 0 ? reset_ms : 1000;
    }
    if (interval > limits_.burst_window_ms) limits_.burst_window_ms = interval;
    if (limits_.margin_ms < 0) margin_ = std::clamp<std::int64_t>(limits_.burst_window_ms / 50, 20, 1000);
  }
  if (remaining >= 0 && limits_.burst_requests > 0 && remaining <= burst_reserve() && reset_ms >= 0) {
    // Pipedrive says when its window resets (whole seconds: round up by the margin).
    block_until(t + reset_ms + margin_);
  } else if (remaining >= 0 && limits_.burst_requests > 0) {
    // HubSpot does not. Our log already paces our own requests; when the platform has fewer left
    // than the log leaves us, the difference was sent by someone else (or by an earlier process of
    // ours): count it as sent now, so it leaves our window when it must have left the platform's.
    // Requests acquired after the one answered may not have reached the platform yet.
    prune(t);
    const std::int64_t eff = limits_.burst_requests - burst_reserve();
    const std::int64_t ours_left = eff - static_cast<std::int64_t>(sent_.size());
    const std::int64_t later = ticket > 0 && ticket <= seq_ ? static_cast<std::int64_t>(seq_ - ticket) : 0;
    const std::int64_t platform_left = remaining - burst_reserve() - later;
    for (std::int64_t n = std::min(ours_left, ours_left - platform_left); n > 0; --n) sent_.push_back(t);
  }

  std::int64_t daily_max = header_int(h, "X-HubSpot-RateLimit-Daily");
  std::int64_t daily_left = header_int(h, "X-HubSpot-RateLimit-Daily-Remaining");
  if (daily_left < 0) daily_left = header_int(h, "x-daily-requests-left");
  if (daily_max > 0 && (limits_.daily_requests <= 0 || daily_max < limits_.daily_requests))
    limits_.daily_requests = daily_max;
  if (daily_left >= 0) {
    platform_daily_left_ = daily_left;
    sent_since_daily_header_ = 0;
  }

  std::int64_t retry = parse_retry_after_ms(header_value(h, "Retry-After"));
  if (status == 429) {
    ++stats_.throttled;
    if (retry < 0) retry = limits_.burst_window_ms > 0 ? limits_.burst_window_ms : 1000;
  }
  if (retry > 0) block_until(t + retry);
}

std::int64_t QuotaScheduler::eta_ms(std::int64_t n) const {
  if (n <= 0) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  std::int64_t t = now();
  std::int64_t base = std::max<std::int64_t>(0, not_before_ - t);
  std::int64_t burst_eta = 0, daily_eta = 0;
  if (limits_.burst_requests > 0) {
    prune(t);
    std::int64_t eff = limits_.burst_requests - burst_reserve();
    std::int64_t free_now = std::max<std::int64_t>(0, eff - static_cast<std::int64_t>(sent_.size()));
    if (n > free_now) {
      std::int64_t windows = (n - free_now + eff - 1) / eff;
      burst_eta = windows * (limits_.burst_window_ms + margin_);
    }
  }
  if (limits_.daily_requests > 0) {
    std::int64_t eff = limits_.daily_requests - daily_reserve();
    bool new_day = day_start_ < 0 || t >= day_start_ + kDayMs;
    std::int64_t left = eff - (new_day ? 0 : day_used_);
    if (!new_day && platform_daily_left_ >= 0)
      left = std::min(left, platform_daily_left_ - sent_since_daily_header_ - daily_reserve());
    left = std::max<std::int64_t>(0, left);
    if (n > left) {
      if (eff <= 0) return INT64_MAX / 4;
      std::int64_t days = (n - left + eff - 1) / eff;
      daily_eta = (new_day ? kDayMs : day_start_ + kDayMs - t) + (days - 1) * kDayMs;
    }
  }
  return base + std::max(burst_eta, daily_eta);
}

}  // namespace cmg::net
