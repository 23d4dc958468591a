// QuotaScheduler with a controlled clock: burst window, daily budget, reserve, rate-limit headers,
// Retry-After, ETA — and a simulated platform that counts arrivals over a sliding window.
#include <doctest/doctest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <deque>
#include <random>

#include "crmmigrate/net/quota.hpp"
#include "pipeline/pipeline_internal.hpp"

namespace {

struct FakeClock final : cmg::Clock {
  std::int64_t t = 1000000;
  std::vector<std::int64_t> sleeps;
  std::int64_t now_ms() override { return t; }
  void sleep_ms(std::int64_t ms) override {
    sleeps.push_back(ms);
    if (ms > 0) t += ms;
  }
};

cmg::net::QuotaLimits limits(int burst, std::int64_t window, std::int64_t daily = 0, double reserve = 0) {
  cmg::net::QuotaLimits l;
  l.burst_requests = burst;
  l.burst_window_ms = window;
  l.daily_requests = daily;
  l.reserve = reserve;
  l.margin_ms = 0;
  return l;
}

}  // namespace

TEST_CASE("quota: burst window lets N through, then waits for the oldest to leave the window") {
  auto clock = std::make_shared<FakeClock>();
  cmg::net::QuotaScheduler q(limits(10, 1000), clock);
  std::int64_t start = clock->t;
  for (int i = 0; i < 10; ++i) REQUIRE(q.acquire().is_ok());
  CHECK(clock->sleeps.empty());
  REQUIRE(q.acquire().is_ok());
  CHECK(clock->t - start == 1000);
  // Over many requests no window of 1000 ms holds more than 10 send times.
  std::vector<std::int64_t> times;
  for (int i = 0; i < 95; ++i) {
    REQUIRE(q.acquire().is_ok());
    times.push_back(clock->t);
  }
  for (std::size_t i = 0; i + 10 < times.size(); ++i) CHECK(times[i + 10] - times[i] >= 1000);
  CHECK(q.stats().acquired == 106);
  CHECK(q.stats().waited_ms == clock->t - start);
}

TEST_CASE("quota: a fractional reserve leaves part of each limit unused") {
  auto clock = std::make_shared<FakeClock>();
  cmg::net::QuotaScheduler q(limits(10, 1000, 100, 0.2), clock);
  CHECK(q.effective_burst() == 8);
  CHECK(q.effective_daily() == 80);
  for (int i = 0; i < 8; ++i) REQUIRE(q.acquire().is_ok());
  CHECK(clock->sleeps.empty());
  REQUIRE(q.acquire().is_ok());
  REQUIRE(clock->sleeps.size() == 1);
  CHECK(clock->sleeps[0] == 1000);
}

TEST_CASE("quota: daily budget with a count reserve fails instead of sleeping for hours") {
  auto clock = std::make_shared<FakeClock>();
  auto l = limits(0, 0, 5, 2);  // 5 a day, 2 left for other integrations
  cmg::net::QuotaScheduler q(l, clock);
  CHECK(q.effective_daily() == 3);
  for (int i = 0; i < 3; ++i) REQUIRE(q.acquire().is_ok());
  auto s = q.acquire();
  CHECK(s.code() == cmg::Code::kUnavailable);
  CHECK(s.message().find("daily request budget") != std::string::npos);
  CHECK(clock->sleeps.empty());
  // Without a wait cap it sleeps until the local day is over, then goes on.
  l.max_wait_ms = 0;
  cmg::net::QuotaScheduler q2(l, clock);
  std::int64_t start = clock->t;
  for (int i = 0; i < 4; ++i) REQUIRE(q2.acquire().is_ok());
  CHECK(clock->t - start == 24LL * 3600 * 1000);
}

TEST_CASE("quota: Retry-After is honoured, 429s are counted") {
  auto clock = std::make_shared<FakeClock>();
  cmg::net::QuotaScheduler q(limits(100, 10000), clock);
  REQUIRE(q.acquire().is_ok());
  q.observe(429, {{"Retry-After", "3"}});
  std::int64_t at = clock->t;
  REQUIRE(q.acquire().is_ok());
  CHECK(clock->t - at == 3000);
  CHECK(q.stats().throttled == 1);
  // A 503 with a fractional Retry-After also closes the gate; a later, shorter one does not shorten it.
  q.observe(503, {{"retry-after", "1.5"}});
  q.observe(200, {{"Retry-After", "0"}});
  at = clock->t;
  REQUIRE(q.acquire().is_ok());
  CHECK(clock->t - at == 1500);
  CHECK(q.stats().throttled == 1);
  CHECK(cmg::net::parse_retry_after_ms("2") == 2000);
  CHECK(cmg::net::parse_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT") == 0);  // in the past
  CHECK(cmg::net::parse_retry_after_ms("Sun, 06 Nov 2994 08:49:37 GMT") > 0);
  CHECK(cmg::net::parse_retry_after_ms("soon") == -1);
  CHECK(cmg::net::parse_retry_after_ms("") == -1);
}

TEST_CASE("quota: HubSpot headers lower the limits and a busy account slows us down") {
  auto clock = std::make_shared<FakeClock>();
  cmg::net::QuotaScheduler q(limits(10, 1000, 1000), clock);
  REQUIRE(q.acquire().is_ok());
  q.observe(200, {{"X-HubSpot-RateLimit-Max", "5"},
                  {"X-HubSpot-RateLimit-Interval-Milliseconds", "2000"},
                  {"X-HubSpot-RateLimit-Remaining", "4"},
                  {"X-HubSpot-RateLimit-Daily", "500"},
                  {"X-HubSpot-RateLimit-Daily-Remaining", "499"}});
  CHECK(q.limits().burst_requests == 5);
  CHECK(q.limits().burst_window_ms == 2000);
  CHECK(q.limits().daily_requests == 500);
  // A larger announced limit never raises ours.
  q.observe(200, {{"X-HubSpot-RateLimit-Max", "50"}, {"X-HubSpot-RateLimit-Interval-Milliseconds", "2000"}});
  CHECK(q.limits().burst_requests == 5);
  // The platform says 0 left while we have sent 1: someone else is using the quota → wait a window.
  std::int64_t at = clock->t;
  q.observe(200, {{"X-HubSpot-RateLimit-Remaining", "0"}, {"X-HubSpot-RateLimit-Max", "5"}});
  REQUIRE(q.acquire().is_ok());
  CHECK(clock->t - at == 2000);
  // Daily remaining from the platform: 2 left → two more, then refused.
  q.observe(200, {{"X-HubSpot-RateLimit-Daily-Remaining", "2"}});
  REQUIRE(q.acquire().is_ok());
  REQUIRE(q.acquire().is_ok());
  CHECK(q.acquire().code() == cmg::Code::kUnavailable);
}

TEST_CASE("quota: requests the platform counted but we did not send are respected, with requests in flight") {
  // An earlier process of ours (or another integration) used part of the window: the platform's
  // Remaining is lower than our log leaves us. Two more of our requests are in flight when the reply
  // to the first arrives, so the platform has not counted them yet.
  auto clock = std::make_shared<FakeClock>();
  cmg::net::QuotaScheduler q(limits(10, 1000), clock);
  std::uint64_t first = 0, second = 0, third = 0;
  REQUIRE(q.acquire(&first).is_ok());
  REQUIRE(q.acquire(&second).is_ok());
  REQUIRE(q.acquire(&third).is_ok());
  CHECK(second == first + 1);
  CHECK(third == first + 2);
  const std::int64_t at = clock->t;
  // 5 counted = our first + 4 others; our other 2 arrive later: 3 are left for new requests.
  q.observe(200, {{"X-HubSpot-RateLimit-Max", "10"}, {"X-HubSpot-RateLimit-Remaining", "5"}}, first);
  for (int i = 0; i < 3; ++i) REQUIRE(q.acquire().is_ok());
  CHECK(clock->t == at);
  REQUIRE(q.acquire().is_ok());
  CHECK(clock->t - at == 1000);  // the 11th request of the platform's window waits for the window
  // A reply that agrees with our log adds nothing.
  cmg::net::QuotaScheduler calm(limits(10, 1000), clock);
  std::uint64_t tk = 0;
  REQUIRE(calm.acquire(&tk).is_ok());
  calm.observe(200, {{"X-HubSpot-RateLimit-Max", "10"}, {"X-HubSpot-RateLimit-Remaining", "9"}}, tk);
  const std::int64_t calm_at = clock->t;
  for (int i = 0; i < 9; ++i) REQUIRE(calm.acquire().is_ok());
  CHECK(clock->t == calm_at);
}

TEST_CASE("quota: Pipedrive headers (remaining 0 waits for the announced reset)") {
  auto clock = std::make_shared<FakeClock>();
  auto l = limits(80, 2000);
  l.margin_ms = 40;
  cmg::net::QuotaScheduler q(l, clock);
  REQUIRE(q.acquire().is_ok());
  std::int64_t at = clock->t;
  q.observe(200, {{"x-ratelimit-limit", "80"}, {"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "2"},
                  {"x-daily-requests-left", "1000"}});
  REQUIRE(q.acquire().is_ok());
  CHECK(clock->t - at == 2040);
}

TEST_CASE("quota: eta_ms counts burst windows and days") {
  auto clock = std::make_shared<FakeClock>();
  cmg::net::QuotaScheduler q(limits(10, 1000), clock);
  CHECK(q.eta_ms(0) == 0);
  CHECK(q.eta_ms(10) == 0);
  CHECK(q.eta_ms(11) == 1000);
  CHECK(q.eta_ms(25) == 2000);
  for (int i = 0; i < 5; ++i) REQUIRE(q.acquire().is_ok());
  CHECK(q.eta_ms(5) == 0);
  CHECK(q.eta_ms(6) == 1000);
  cmg::net::QuotaScheduler d(limits(0, 0, 100), clock);
  CHECK(d.eta_ms(100) == 0);
  CHECK(d.eta_ms(101) == 24LL * 3600 * 1000);
  CHECK(d.eta_ms(301) == 3 * 24LL * 3600 * 1000);
  // The HubSpot preset's 190 per 10 s with the automatic margin: 1,900 calls = 9 more windows.
  cmg::net::QuotaLimits hs;
  hs.burst_requests = 190;
  hs.burst_window_ms = 10000;
  cmg::net::QuotaScheduler h(hs, clock);
  CHECK(h.eta_ms(1900) == 9 * (10000 + 200));
}

TEST_CASE("quota: a platform counting arrivals over a sliding window never sees more than its limit") {
  // Send times come from the scheduler; arrival = send + jitter (up to 30 ms, below the margin).
  auto clock = std::make_shared<FakeClock>();
  auto l = limits(20, 1000);
  l.margin_ms = 50;
  cmg::net::QuotaScheduler q(l, clock);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> jitter(0, 30), think(0, 40);
  std::vector<std::int64_t> arrivals;
  for (int i = 0; i < 2000; ++i) {
    REQUIRE(q.acquire().is_ok());
    arrivals.push_back(clock->t + jitter(rng));
    clock->t += think(rng);
  }
  std::sort(arrivals.begin(), arrivals.end());
  int worst = 0;
  std::deque<std::int64_t> win;
  for (auto a : arrivals) {
    win.push_back(a);
    while (win.front() <= a - 1000) win.pop_front();  // the platform's window (a-1000, a]
    worst = std::max(worst, static_cast<int>(win.size()));
  }
  CHECK(worst <= 20);
  CHECK(worst >= 19);  // and the quota was actually used
}

TEST_CASE("quota: limits from a connector config") {
  cmg::net::QuotaLimits d;
  auto ok = cmg::net::quota_limits_from_json(
      boost::json::parse(R"({"burst_requests":50,"burst_window_ms":10000,"daily_requests":1000,"reserve":0.25})"),
      "$.destination.options.limits", d);
  REQUIRE(ok.is_ok());
  CHECK(ok->burst_requests == 50);
  CHECK(ok->daily_requests == 1000);
  CHECK(ok->reserve == doctest::Approx(0.25));
  auto bad = cmg::net::quota_limits_from_json(boost::json::parse(R"({"burst":5})"), "$.x.limits", d);
  CHECK(bad.status().code() == cmg::Code::kConfig);
  CHECK(bad.status().message().find("$.x.limits.burst") != std::string::npos);
  auto neg = cmg::net::quota_limits_from_json(boost::json::parse(R"({"reserve":-1})"), "$.x.limits", d);
  CHECK(neg.status().code() == cmg::Code::kConfig);
  auto nowin = cmg::net::quota_limits_from_json(boost::json::parse(R"({"burst_requests":5})"), "$.x.limits", d);
  CHECK(nowin.status().message().find("burst_window_ms") != std::string::npos);
}
