// serve_sandbox(): token check, rate limits and fault draws shared by both dialects, then dispatch.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>

#include <fmt/format.h>

#include "crmmigrate/sandbox/serve.hpp"
#include "sandbox/serve_internal.hpp"

namespace cmg::sandbox {

const char* dialect_name(Dialect d) noexcept { return d == Dialect::kHubSpot ? "hubspot" : "pipedrive"; }

std::optional<Dialect> dialect_from_name(std::string_view name) noexcept {
  if (name == "hubspot") return Dialect::kHubSpot;
  if (name == "pipedrive") return Dialect::kPipedrive;
  return std::nullopt;
}

namespace serve_internal {

RateLimiter::Decision RateLimiter::take(std::int64_t now_ms, bool enforce) {
  std::lock_guard<std::mutex> lock(mu_);
  Decision d;
  d.burst_max = quota_.burst_requests;
  d.window_ms = quota_.burst_window_ms;
  d.daily_max = quota_.daily_requests;
  const std::int64_t window = std::max<std::int64_t>(1, quota_.burst_window_ms);
  if (rolling_) {
    // The requests counted in (now - window, now]; a slot frees when the oldest leaves.
    while (!arrivals_.empty() && (arrivals_.front() <= now_ms - window || arrivals_.front() > now_ms))
      arrivals_.pop_front();
    in_window_ = static_cast<std::int64_t>(arrivals_.size());
    window_start_ = arrivals_.empty() ? now_ms : arrivals_.front();
  } else if (window_start_ < 0 || now_ms - window_start_ >= window || now_ms < window_start_) {
    window_start_ = now_ms;
    in_window_ = 0;
  }
  const std::int64_t day = now_ms / 86400000;
  if (day != day_) {
    day_ = day;
    in_day_ = 0;
  }
  d.reset_ms = std::max<std::int64_t>(0, window_start_ + window - now_ms);
  bool burst_full = quota_.burst_requests > 0 && in_window_ >= quota_.burst_requests;
  bool daily_full = quota_.daily_requests > 0 && in_day_ >= quota_.daily_requests;
  if (enforce && (burst_full || daily_full)) {
    d.allowed = false;
    d.retry_after_ms = daily_full ? (day_ + 1) * 86400000 - now_ms : d.reset_ms;
  } else {
    ++in_window_;
    ++in_day_;
    if (rolling_ && quota_.burst_requests > 0) arrivals_.push_back(now_ms);
  }
  d.burst_remaining = std::max<std::int64_t>(0, quota_.burst_requests - in_window_);
  d.daily_remaining = std::max<std::int64_t>(0, quota_.daily_requests - in_day_);
  return d;
}

std::int64_t Context::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

net::HttpResponse json_reply(int status, const json::value& body) {
  net::HttpResponse res;
  res.status = status;
  res.set_header("Content-Type", "application/json;charset=utf-8");
  res.body = json::serialize(body);
  return res;
}

bool token_equals(std::string_view given, std::string_view expected) noexcept {
  // Length leaks, content does not: every byte of the expected token is compared.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

std::vector<std::string> query_list(const net::HttpRequest& req, std::string_view name) {
  std::vector<std::string> out;
  for (const std::string& value : req.query_all(name)) {
    std::size_t start = 0;
    while (start <= value.size()) {
      auto comma = value.find(',', start);
      std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!item.empty()) out.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(net::url_decode(path.substr(i, j - i)));
    i = j;
  }
  return out;
}

std::optional<json::value> parse_body(const net::HttpRequest& req, std::string& error) {
  boost::system::error_code ec;
  json::value v = json::parse(req.body, ec);
  if (ec) {
    error = req.body.empty() ? "the request body is empty" : "the request body is not JSON: " + ec.message();
    return std::nullopt;
  }
  return v;
}

std::string correlation_id() {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t a = rng() ^ (++counter << 17);
  std::uint64_t b = rng();
  return fmt::format("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", static_cast<std::uint32_t>(a >> 32),
                     static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                     static_cast<unsigned>(b >> 52), b & 0xffffffffffffULL);
}

std::optional<std::int64_t> parse_int(std::string_view s) noexcept {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

bool WriteFaultPlan::refuse() const {
  using internal::FaultKind;
  return fault.kind == FaultKind::k429 || fault.kind == FaultKind::k500 || fault.kind == FaultKind::k503 ||
         fault.kind == FaultKind::kReset;
}

void decorate_write_reply(net::HttpResponse& res, const internal::WriteFault& fault, const Context& ctx) {
  using internal::FaultKind;
  switch (fault.kind) {
    case FaultKind::kTimeout:
      res.delay = ctx.options.timeout_delay;
      break;
    case FaultKind::kLostReply: res.drop_connection = true; break;
    case FaultKind::kMalformed: res.body = res.body.substr(0, res.body.size() / 2); break;
    default: break;
  }
}

std::optional<net::HttpResponse> read_fault(Context& ctx, ErrorFn error) {
  auto kind = ctx.faults.draw_read();
  ctx.faults.count_request(kind != internal::FaultKind::kNone);
  if (kind == internal::FaultKind::kNone) return std::nullopt;
  int retry_ms = ctx.faults.plan().retry_after_ms;
  net::HttpResponse res = kind == internal::FaultKind::k429
                              ? error(429, "RATE_LIMITS", "You have reached your secondly limit. (injected)")
                              : error(503, "SERVICE_UNAVAILABLE", "Service Unavailable (injected)");
  res.set_header("Retry-After", std::to_string((retry_ms + 999) / 1000));
  return res;
}

Result<WriteRun> run_write(Context& ctx, std::string_view object, const std::vector<WriteOp>& ops, ErrorFn error) {
  using internal::FaultKind;
  WriteRun run;
  run.fault = ctx.faults.draw_write(ops.size());
  ctx.faults.count_request(run.fault.kind != FaultKind::kNone);
  const int retry_ms = ctx.faults.plan().retry_after_ms;
  const std::string retry_s = std::to_string((retry_ms + 999) / 1000);
  switch (run.fault.kind) {
    case FaultKind::k429:
      run.refusal = error(429, "RATE_LIMITS", "You have reached your secondly limit. (injected)");
      run.refusal->set_header("Retry-After", retry_s);
      return run;
    case FaultKind::k500:
      run.refusal = error(500, "INTERNAL_ERROR", "Internal Server Error (injected)");
      return run;
    case FaultKind::k503:
      run.refusal = error(503, "SERVICE_UNAVAILABLE", "Service Unavailable (injected)");
      run.refusal->set_header("Retry-After", retry_s);
      return run;
    case FaultKind::kReset:
      run.refusal = net::HttpResponse{};
      run.refusal->drop_connection = true;
      return run;
    default: break;
  }
  if (!run.fault.apply) return run;
  std::vector<WriteOp> kept;
  kept.reserve(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i)
    if (run.fault.reject.empty() || !run.fault.reject[i]) kept.push_back(ops[i]);
  std::vector<WriteResult> applied;
  if (!kept.empty()) {
    CMG_ASSIGN_OR_RETURN(applied, ctx.crm->write(object, kept));
  }
  std::size_t next = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (!run.fault.reject.empty() && run.fault.reject[i]) {
      WriteResult r;
      r.outcome = WriteResult::Outcome::kFailed;
      r.status = 400;
      std::string field = "properties";
      std::string value;
      for (const auto& [k, v] : ops[i].fields) {
        field = std::string(k);
        value = value_to_text(v);
        break;
      }
      r.message = "Property values were not valid: \"" + field + "\" was rejected (injected partial batch failure)";
      r.errors.push_back(FieldError{field, value, "INVALID_VALUE", r.message});
      run.results.push_back(std::move(r));
    } else {
      run.results.push_back(next < applied.size() ? std::move(applied[next++]) : WriteResult{});
    }
  }
  return run;
}

net::HttpResponse unapplied_reply(const internal::WriteFault& fault, const Context& ctx) {
  net::HttpResponse res;
  if (fault.kind == internal::FaultKind::kTimeout) {
    res.delay = ctx.options.timeout_delay;
    res.status = 504;
    res.set_header("Content-Type", "text/html");
    res.body = "<html><head><title>504 Gateway Time-out</title></head></html>";
    return res;
  }
  // A proxy's error page cut short: neither JSON nor complete.
  res.status = 502;
  res.set_header("Content-Type", "application/json;charset=utf-8");
  res.body = "{\"status\":\"error\",\"mess";
  return res;
}

Result<std::vector<Record>> all_records(SandboxCrm& crm, std::string_view object) {
  ReadOptions opts;
  opts.batch_size = 1000;
  CMG_ASSIGN_OR_RETURN(auto reader, static_cast<Source&>(crm).read(object, opts));
  std::vector<Record> out;
  CMG_RETURN_IF_ERROR(for_each_batch(*reader, [&](RecordBatch& b) {
    for (auto& r : b) out.push_back(std::move(r));
    return Status::ok();
  }));
  return out;
}

namespace {

// The token a request presents, per dialect; empty when none.
std::string presented_token(Dialect d, const net::HttpRequest& req) {
  if (d == Dialect::kHubSpot) {
    std::string_view auth = req.header("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer)
      return std::string(auth.substr(kBearer.size()));
    return {};
  }
  std::string_view h = req.header("x-api-token");
  if (!h.empty()) return std::string(h);
  std::string_view auth = req.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer)
    return std::string(auth.substr(kBearer.size()));
  return req.query("api_token");
}

std::string seconds_ceil(std::int64_t ms) { return std::to_string((std::max<std::int64_t>(ms, 0) + 999) / 1000); }

void add_rate_headers(Dialect d, net::HttpResponse& res, const RateLimiter::Decision& dec) {
  if (d == Dialect::kHubSpot) {
    res.set_header("X-HubSpot-RateLimit-Max", std::to_string(dec.burst_max));
    res.set_header("X-HubSpot-RateLimit-Remaining", std::to_string(dec.burst_remaining));
    res.set_header("X-HubSpot-RateLimit-Interval-Milliseconds", std::to_string(dec.window_ms));
    if (dec.daily_max > 0) {
      res.set_header("X-HubSpot-RateLimit-Daily", std::to_string(dec.daily_max));
      res.set_header("X-HubSpot-RateLimit-Daily-Remaining", std::to_string(dec.daily_remaining));
    }
  } else {
    res.set_header("x-ratelimit-limit", std::to_string(dec.burst_max));
    res.set_header("x-ratelimit-remaining", std::to_string(dec.burst_remaining));
    res.set_header("x-ratelimit-reset", seconds_ceil(dec.reset_ms));
    if (dec.daily_max > 0) res.set_header("x-daily-requests-left", std::to_string(dec.daily_remaining));
  }
}

net::HttpResponse handle(Context& ctx, Dialect d, const net::HttpRequest& req) {
  const bool hubspot = d == Dialect::kHubSpot;
  if (!ctx.options.token.empty() && !token_equals(presented_token(d, req), ctx.options.token)) {
    if (hubspot) {
      return hubspot_error(401, "INVALID_AUTHENTICATION",
                           "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                           "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview");
    }
    net::HttpResponse res = pipedrive_error(401, "unauthorized access");
    return res;
  }
  auto dec = ctx.limiter->take(ctx.now_ms(), ctx.options.enforce_limits);
  net::HttpResponse res;
  if (!dec.allowed) {
    if (hubspot) {
      res = hubspot_error(429, "RATE_LIMITS",
                          fmt::format("You have reached your secondly limit. ({} requests per {} ms)", dec.burst_max,
                                      dec.window_ms));
      // HubSpot names the exceeded policy in the body.
      boost::system::error_code ec;
      json::value body = json::parse(res.body, ec);
      if (!ec && body.is_object()) {
        body.as_object()["policyName"] = dec.daily_remaining == 0 && dec.daily_max > 0 ? "DAILY" : "TEN_SECONDLY_ROLLING";
        res.body = json::serialize(body);
      }
    } else {
      res = pipedrive_error(429, "Request over limit");
    }
    res.set_header("Retry-After", seconds_ceil(dec.retry_after_ms));
  } else {
    res = hubspot ? hubspot_handle(ctx, req) : pipedrive_handle(ctx, req);
  }
  add_rate_headers(d, res, dec);
  return res;
}

}  // namespace
}  // namespace serve_internal

Result<std::unique_ptr<net::HttpServer>> serve_sandbox(std::shared_ptr<SandboxCrm> crm, Dialect dialect,
                                                       const SandboxServeOptions& options) {
  if (!crm) return invalid_argument("sandbox serve: no sandbox given");
  if (crm->preset() != dialect_name(dialect)) {
    return invalid_argument(fmt::format("sandbox serve: the sandbox in {} has preset '{}'; the {} dialect serves "
                                        "only a '{}' sandbox",
                                        crm->dir(), crm->preset(), dialect_name(dialect), dialect_name(dialect)));
  }
  auto ctx = std::make_shared<serve_internal::Context>();
  ctx->crm = crm;
  ctx->options = options;
  ctx->quota = options.limits ? *options.limits : crm->quota();
  ctx->limiter = std::make_unique<serve_internal::RateLimiter>(ctx->quota, dialect == Dialect::kHubSpot);
  ctx->faults.set(options.faults ? *options.faults : crm->faults());
  // The faults are drawn per HTTP request from here on; the sandbox itself must not fault twice.
  crm->set_faults(FaultPlan{});
  return net::HttpServer::start(options.server, [ctx, dialect](const net::HttpRequest& req) {
    return serve_internal::handle(*ctx, dialect, req);
  });
}

}  // namespace cmg::sandbox
