// The pipeline clock, backoff, and the Retry-After gate in front of the destination.
#include <chrono>
#include <mutex>
#include <thread>

#include "pipeline_internal.hpp"

namespace cmg {

namespace {

class RealClock final : public Clock {
 public:
  std::int64_t now_ms() override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
  }
  void sleep_ms(std::int64_t ms) override {
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }
};

std::mutex g_clock_mu;
std::shared_ptr<Clock>& clock_slot() {
  static std::shared_ptr<Clock> clock = std::make_shared<RealClock>();
  return clock;
}

// Wraps a listing so that each page is fetched through the gate and retried like any other read.
class RetryingReader final : public RecordReader {
 public:
  RetryingReader(std::shared_ptr<RetryingDestination> owner, std::unique_ptr<RecordReader> inner)
      : owner_(std::move(owner)), inner_(std::move(inner)) {}
  Result<bool> next(RecordBatch& out) override {
    return owner_->with_retries<bool>([&] { return inner_->next(out); });
  }

 private:
  std::shared_ptr<RetryingDestination> owner_;
  std::unique_ptr<RecordReader> inner_;
};

}  // namespace

std::shared_ptr<Clock> pipeline_clock() {
  std::lock_guard<std::mutex> lock(g_clock_mu);
  return clock_slot();
}

void set_pipeline_clock(std::shared_ptr<Clock> clock) {
  std::lock_guard<std::mutex> lock(g_clock_mu);
  clock_slot() = clock ? std::move(clock) : std::make_shared<RealClock>();
}

std::int64_t backoff_ms(const RetryPolicy& p, int attempt, std::uint64_t random) {
  std::int64_t d = p.base_ms;
  for (int i = 1; i < attempt && d < p.cap_ms; ++i) d *= 2;
  d = std::min(d, p.cap_ms);
  std::int64_t half = d / 2;
  return half + static_cast<std::int64_t>(random % static_cast<std::uint64_t>(half + 1));
}

RetryingDestination::RetryingDestination(std::shared_ptr<Destination> inner, RetryPolicy policy)
    : inner_(std::move(inner)), policy_(policy) {}

std::uint64_t RetryingDestination::next_random() {
  // splitmix64: jitter only needs to be spread, not secret.
  std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void RetryingDestination::wait_turn() {
  auto clock = pipeline_clock();
  std::int64_t now = clock->now_ms();
  if (now < not_before_) clock->sleep_ms(not_before_ - now);
}

void RetryingDestination::defer(std::int64_t ms) {
  if (ms <= 0) return;
  not_before_ = std::max(not_before_, pipeline_clock()->now_ms() + ms);
}

Result<Schema> RetryingDestination::schema() {
  return with_retries<Schema>([&] { return inner_->schema(); });
}

Result<std::int64_t> RetryingDestination::count(std::string_view object) {
  return with_retries<std::int64_t>([&] { return inner_->count(object); });
}

Result<std::unique_ptr<RecordReader>> RetryingDestination::list(std::string_view object, const ReadOptions& opts) {
  CMG_ASSIGN_OR_RETURN(auto reader,
                       with_retries<std::unique_ptr<RecordReader>>([&] { return inner_->list(object, opts); }));
  return std::unique_ptr<RecordReader>(new RetryingReader(shared_from_this(), std::move(reader)));
}

Result<std::vector<Record>> RetryingDestination::find(std::string_view object, std::string_view field,
                                                      const std::vector<std::string>& values) {
  return with_retries<std::vector<Record>>([&] { return inner_->find(object, field, values); });
}

Result<std::vector<std::optional<Record>>> RetryingDestination::read(std::string_view object,
                                                                     const std::vector<std::string>& ids) {
  return with_retries<std::vector<std::optional<Record>>>([&] { return inner_->read(object, ids); });
}

Result<std::vector<WriteResult>> RetryingDestination::write(std::string_view object, const std::vector<WriteOp>& ops) {
  wait_turn();
  auto r = inner_->write(object, ops);
  if (!r.is_ok()) {
    defer(inner_->last_retry_after_ms());
    return r;
  }
  std::int64_t retry_after = 0;
  for (const auto& w : *r) retry_after = std::max<std::int64_t>(retry_after, w.retry_after_ms);
  defer(retry_after);
  return r;
}

Quota RetryingDestination::quota() const { return inner_->quota(); }

std::int64_t RetryingDestination::last_retry_after_ms() const { return inner_->last_retry_after_ms(); }

std::shared_ptr<RetryingDestination> with_retries(std::shared_ptr<Destination> dest, RetryPolicy policy) {
  if (auto r = std::dynamic_pointer_cast<RetryingDestination>(dest)) return r;
  return std::make_shared<RetryingDestination>(std::move(dest), policy);
}

RetryingDestination& Migration::Impl::retrying_dest() {
  if (!retrying || retrying.get() != dest.get()) {
    if (auto r = std::dynamic_pointer_cast<RetryingDestination>(dest)) {
      retrying = std::move(r);
    } else if (!retrying || retrying->inner() != dest) {
      retrying = cmg::with_retries(dest);
    }
  }
  return *retrying;
}

}  // namespace cmg
