#include "sandbox/faults.hpp"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>

namespace cmg::sandbox {

namespace json = boost::json;

bool FaultPlan::any() const {
  return rate_429 > 0 || rate_5xx > 0 || rate_timeout > 0 || rate_reset > 0 || rate_lost_reply > 0 ||
         rate_malformed > 0 || rate_partial > 0 || effective_read_rate() > 0;
}

double FaultPlan::effective_read_rate() const {
  return read_rate >= 0 ? read_rate : (rate_429 + rate_5xx + rate_timeout + rate_reset) / 4;
}

namespace {

struct RateField {
  const char* name;
  double FaultPlan::*member;
};
constexpr RateField kRates[] = {
    {"rate_429", &FaultPlan::rate_429},           {"rate_5xx", &FaultPlan::rate_5xx},
    {"rate_timeout", &FaultPlan::rate_timeout},   {"rate_reset", &FaultPlan::rate_reset},
    {"rate_lost_reply", &FaultPlan::rate_lost_reply}, {"rate_malformed", &FaultPlan::rate_malformed},
    {"rate_partial", &FaultPlan::rate_partial},
};

std::optional<double> number_of(const json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return std::nullopt;
}

}  // namespace

Result<FaultPlan> fault_plan_from_json(std::string_view text, const std::string& origin) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object())
    return parse_error(origin + ": a fault plan is a JSON object such as {\"seed\":1,\"rate_429\":0.05}" +
                       (ec ? " (" + ec.message() + ")" : std::string()));
  FaultPlan p;
  double sum = 0;
  for (const auto& [k, val] : v.get_object()) {
    std::string key(k);
    auto n = number_of(val);
    if (!n || !std::isfinite(*n)) return invalid_argument(origin + "." + key + ": must be a number");
    if (key == "seed") {
      if (*n < 0 || *n != std::floor(*n)) return invalid_argument(origin + ".seed: must be a whole number >= 0");
      p.seed = val.is_uint64() ? val.get_uint64() : static_cast<std::uint64_t>(*n);
      continue;
    }
    if (key == "retry_after_ms") {
      if (*n < 0 || *n > 3600000) return invalid_argument(origin + ".retry_after_ms: must be 0..3600000");
      p.retry_after_ms = static_cast<int>(*n);
      continue;
    }
    if (key == "read_rate") {
      if (*n > 1 || (*n < 0 && *n != -1)) return invalid_argument(origin + ".read_rate: must be 0..1 (or -1 for the default)");
      p.read_rate = *n;
      continue;
    }
    bool known = false;
    for (const auto& rf : kRates) {
      if (key != rf.name) continue;
      if (*n < 0 || *n > 1) return invalid_argument(origin + "." + key + ": a rate must be between 0 and 1");
      p.*rf.member = *n;
      sum += *n;
      known = true;
    }
    if (!known)
      return invalid_argument(origin + "." + key +
                              ": unknown key (allowed: seed, rate_429, rate_5xx, rate_timeout, rate_reset, "
                              "rate_lost_reply, rate_malformed, rate_partial, retry_after_ms, read_rate)");
  }
  if (sum > 1 + 1e-9) return invalid_argument(origin + ": the write fault rates add up to more than 1");
  return p;
}

std::string fault_plan_to_json(const FaultPlan& p) {
  json::object o{{"seed", p.seed}};
  for (const auto& rf : kRates) o[rf.name] = p.*rf.member;
  o["retry_after_ms"] = p.retry_after_ms;
  o["read_rate"] = p.read_rate;
  return json::serialize(o);
}

namespace internal {

const char* fault_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kNone: return "";
    case FaultKind::k429: return "429";
    case FaultKind::k500: return "500";
    case FaultKind::k503: return "503";
    case FaultKind::kTimeout: return "timeout";
    case FaultKind::kReset: return "reset";
    case FaultKind::kLostReply: return "lost_reply";
    case FaultKind::kMalformed: return "malformed";
    case FaultKind::kPartial: return "partial";
  }
  return "";
}

void FaultInjector::set(const FaultPlan& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = plan;
  any_ = plan.any();
  rng_.seed(plan.seed);
}

FaultPlan FaultInjector::plan() const {
  std::lock_guard<std::mutex> lock(mu_);
  return plan_;
}

double FaultInjector::uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

WriteFault FaultInjector::draw_write(std::size_t ops) {
  std::lock_guard<std::mutex> lock(mu_);
  WriteFault f;
  if (!any_) return f;
  double u = uniform();
  const std::pair<double, FaultKind> order[] = {
      {plan_.rate_429, FaultKind::k429},          {plan_.rate_5xx, FaultKind::k500},
      {plan_.rate_timeout, FaultKind::kTimeout},  {plan_.rate_reset, FaultKind::kReset},
      {plan_.rate_lost_reply, FaultKind::kLostReply}, {plan_.rate_malformed, FaultKind::kMalformed},
      {plan_.rate_partial, FaultKind::kPartial},
  };
  for (const auto& [rate, kind] : order) {
    if (u >= rate) {
      u -= rate;
      continue;
    }
    f.kind = kind;
    break;
  }
  switch (f.kind) {
    case FaultKind::k500:
      // Half of the 5xx are 503 Service Unavailable (with Retry-After), half 500.
      if (uniform() < 0.5) f.kind = FaultKind::k503;
      f.apply = false;
      break;
    case FaultKind::k429:
    case FaultKind::kReset: f.apply = false; break;
    case FaultKind::kTimeout:
    case FaultKind::kMalformed: f.apply = uniform() < 0.5; break;
    case FaultKind::kPartial: {
      if (ops == 0) {
        f.kind = FaultKind::kNone;
        break;
      }
      f.reject.assign(ops, false);
      std::size_t n = 1 + static_cast<std::size_t>(rng_() % std::max<std::size_t>(1, ops / 20));
      for (std::size_t i = 0; i < n; ++i) f.reject[rng_() % ops] = true;
      break;
    }
    default: break;
  }
  return f;
}

FaultKind FaultInjector::draw_read() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!any_) return FaultKind::kNone;
  if (uniform() >= plan_.effective_read_rate()) return FaultKind::kNone;
  return uniform() < 0.5 ? FaultKind::k429 : FaultKind::k503;
}

std::vector<WriteResult> FaultInjector::whole_call_results(FaultKind kind, std::size_t ops) const {
  int retry_after = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    retry_after = plan_.retry_after_ms;
  }
  WriteResult r;
  r.outcome = WriteResult::Outcome::kFailed;
  r.retryable = true;
  switch (kind) {
    case FaultKind::k429:
      r.status = 429;
      r.retry_after_ms = retry_after;
      r.message = "429 Too Many Requests (injected); Retry-After: " + std::to_string(retry_after) + " ms";
      break;
    case FaultKind::k500: r.status = 500; r.message = "500 Internal Server Error (injected)"; break;
    case FaultKind::k503:
      r.status = 503;
      r.retry_after_ms = retry_after;
      r.message = "503 Service Unavailable (injected); Retry-After: " + std::to_string(retry_after) + " ms";
      break;
    case FaultKind::kTimeout: r.outcome_unknown = true; r.message = "timeout waiting for the reply (injected)"; break;
    case FaultKind::kReset: r.outcome_unknown = true; r.message = "connection reset by peer (injected)"; break;
    case FaultKind::kLostReply: r.outcome_unknown = true; r.message = "connection closed before the reply (injected)"; break;
    case FaultKind::kMalformed:
      r.outcome_unknown = true;
      r.message = "malformed response body: truncated JSON (injected)";
      break;
    default: break;
  }
  return std::vector<WriteResult>(ops, r);
}

Status FaultInjector::read_failure(FaultKind kind, std::string_view call, std::string_view object) {
  int retry_after = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    retry_after = plan_.retry_after_ms;
  }
  last_retry_after_ = retry_after;
  std::string what = kind == FaultKind::k429 ? "429 Too Many Requests" : "503 Service Unavailable";
  return Status(Code::kUnavailable, what + " (injected) on " + std::string(call) + " " + std::string(object) +
                                        "; Retry-After: " + std::to_string(retry_after) + " ms");
}

void FaultInjector::count_request(bool faulted) {
  ++requests_;
  if (faulted) ++faults_;
}

void FaultInjector::log(Request r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (logging_) log_.push_back(std::move(r));
}

void FaultInjector::set_log(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  logging_ = on;
  log_.clear();
}

std::vector<Request> FaultInjector::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

Result<std::optional<FaultPlan>> fault_plan_from_env() {
  const char* env = std::getenv("CMG_SANDBOX_FAULTS");
  if (!env || !*env) return std::optional<FaultPlan>();
  std::string text = env;
  std::string origin = "CMG_SANDBOX_FAULTS";
  if (text[0] == '@') {
    std::string path = text.substr(1);
    std::ifstream in(path, std::ios::binary);
    if (!in) return invalid_argument("CMG_SANDBOX_FAULTS: cannot read the fault plan file " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    origin = path;
  }
  CMG_ASSIGN_OR_RETURN(auto plan, fault_plan_from_json(text, origin));
  return std::optional<FaultPlan>(plan);
}

}  // namespace internal
}  // namespace cmg::sandbox
