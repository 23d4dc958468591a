// Private: the sandbox's seeded fault injector (see the fault notes in sandbox.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"

namespace cmg::sandbox::internal {

enum class FaultKind { kNone, k429, k500, k503, kTimeout, kReset, kLostReply, kMalformed, kPartial };

/// The Request::fault name of a kind ("" for kNone).
const char* fault_name(FaultKind kind);

/// What to do with one write() call.
struct WriteFault {
  FaultKind kind = FaultKind::kNone;
  bool apply = true;          // whether the batch (the non-rejected ops for kPartial) is applied
  std::vector<bool> reject;   // kPartial: ops answered with a 400 instead of being applied
};

/// Thread-safe. One generator per sandbox instance, restarted by set().
class FaultInjector {
 public:
  void set(const FaultPlan& plan);
  FaultPlan plan() const;
  WriteFault draw_write(std::size_t ops);
  /// kNone, k429 or k503.
  FaultKind draw_read();

  /// The kFailed results of a whole-call fault, one per op.
  std::vector<WriteResult> whole_call_results(FaultKind kind, std::size_t ops) const;
  /// The kUnavailable status of a faulted find/read/list call; records its Retry-After.
  Status read_failure(FaultKind kind, std::string_view call, std::string_view object);

  void count_request(bool faulted);
  void log(Request r);
  void set_log(bool on);
  std::vector<Request> requests() const;

  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> faults_{0};
  std::atomic<std::int64_t> last_retry_after_{0};

 private:
  double uniform();  // mu_ held
  mutable std::mutex mu_;
  FaultPlan plan_;
  bool any_ = false;
  std::mt19937_64 rng_;
  bool logging_ = false;
  std::vector<Request> log_;
};

/// The plan from CMG_SANDBOX_FAULTS (JSON text, or "@file"), or nullopt when it is unset or empty.
Result<std::optional<FaultPlan>> fault_plan_from_env();

}  // namespace cmg::sandbox::internal
