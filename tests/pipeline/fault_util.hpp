// Shared by the retry and soak tests: a fake pipeline clock, a destination-duplicate count and the
// Retry-After check over a sandbox's request log.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crmmigrate/core/record.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"
#include "pipeline/pipeline_internal.hpp"

/// A clock that never sleeps: sleep_ms() records the wait and moves time forward.
struct FakeClock final : cmg::Clock {
  std::int64_t t = 1'700'000'000'000;
  std::vector<std::int64_t> sleeps;
  std::int64_t now_ms() override { return t; }
  void sleep_ms(std::int64_t ms) override {
    sleeps.push_back(ms);
    if (ms > 0) t += ms;
  }
  std::int64_t slept() const {
    std::int64_t s = 0;
    for (auto v : sleeps) s += v;
    return s;
  }
};

/// Installs `clock` as the pipeline clock (and the sandbox's) for a scope.
struct ScopedClock {
  explicit ScopedClock(std::shared_ptr<FakeClock> c) { cmg::set_pipeline_clock(std::move(c)); }
  ~ScopedClock() { cmg::set_pipeline_clock(nullptr); }
};

inline void use_clock(cmg::sandbox::SandboxCrm& crm, const std::shared_ptr<FakeClock>& clock) {
  crm.set_clock([clock] { return clock->now_ms(); });
}

/// Records of the destination that share a crm_source_id with an earlier one.
inline std::size_t destination_duplicates(cmg::sandbox::SandboxCrm& dest) {
  std::size_t dups = 0;
  for (const char* obj : {"contacts", "companies", "deals", "notes", "calls", "meetings", "tasks", "emails"}) {
    std::map<std::string, int> seen;
    auto reader = dest.read(obj, cmg::ReadOptions{});  // the Source side: no faults
    if (!reader.is_ok()) return static_cast<std::size_t>(-1);
    cmg::RecordBatch b;
    for (;;) {
      auto more = (*reader)->next(b);
      if (!more.is_ok()) return static_cast<std::size_t>(-1);
      if (!*more) break;
      for (const auto& r : b)
        if (const auto* k = r.fields.if_contains("crm_source_id"); k && !cmg::value_is_blank(*k))
          if (++seen[cmg::value_to_text(*k)] == 2) ++dups;
    }
  }
  return dups;
}

/// Requests that arrived before the Retry-After of an earlier reply had expired.
inline std::vector<std::string> retry_after_violations(const std::vector<cmg::sandbox::Request>& log) {
  std::vector<std::string> out;
  std::int64_t not_before = 0;
  std::size_t from = 0;
  for (std::size_t i = 0; i < log.size(); ++i) {
    const auto& r = log[i];
    if (r.at_ms < not_before)
      out.push_back("request " + std::to_string(i) + " (" + r.call + " " + r.object + ") at " + std::to_string(r.at_ms) +
                    " before the Retry-After of request " + std::to_string(from) + " expired at " +
                    std::to_string(not_before));
    if (r.retry_after_ms > 0 && r.at_ms + r.retry_after_ms > not_before) {
      not_before = r.at_ms + r.retry_after_ms;
      from = i;
    }
  }
  return out;
}
