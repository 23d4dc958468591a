// The reference scenario over loopback HTTP under declared rate limits (issue 5): the Pipedrive
// source sandbox served in the Pipedrive dialect (its preset's 80 requests / 2 s), the HubSpot
// destination sandbox in the HubSpot dialect (190 requests / 10 s), the pipedrive and hubspot
// connectors in between, examples/reference-http/migration.json as the config; the whole review
// flow (plan → sign-off → run → fixes → reprocess → reconcile) is timed.
//
// A counting proxy in front of each server records every request (time, status, whether a 429
// came from the server's limiter or from fault injection). Reported per run:
//   - utilization: requests sent to HubSpot per full 10 s window / requests allowed per window after
//     the reserve (mean over the full windows of the run; the target is ≥ 0.95), plus the busiest
//     window (must not exceed the allowance);
//   - self_caused_429: 429s from the servers' limiters (target 0; injected 429s are counted apart);
//   - wall_over_min: wall time / the theoretical minimum to send the same HubSpot requests under the
//     declared limit (floor((N-1)/B) windows of W) — the baseline measured in the same run;
//   - the outcome (complete, counts) so a fast but wrong run cannot look good.
// Runs twice: without faults and with 10 % injected faults (429, 5xx, timeouts, resets, lost
// replies, truncated bodies at the HTTP layer; partial batch failures excluded because they are
// permanent rejections that change the outcome by design).
//
// Usage: http_bench [--burst N] [--no-faults | --faults-only] [--fault-rate R] [--config PATH]
// Prints ONE JSON object to stdout; progress to stderr. A program, not a test.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/core/config.hpp"
#include "crmmigrate/net/http_client.hpp"
#include "crmmigrate/net/http_server.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "crmmigrate/sandbox/reference.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"
#include "crmmigrate/sandbox/serve.hpp"

namespace {

namespace json = boost::json;
namespace net = cmg::net;
using SteadyClock = std::chrono::steady_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now().time_since_epoch()).count();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) s.replace(pos, from.size(), to);
  return s;
}

[[noreturn]] void die(const std::string& m) {
  std::cerr << "http_bench: " << m << "\n";
  std::exit(2);
}

// Forwards to one upstream server and logs every exchange.
class CountingProxy {
 public:
  struct Entry {
    std::int64_t at_ms;
    int status;  // 0 = no usable reply (reset, lost reply, timeout)
    bool limit_429;
    bool injected_429;
  };

  CountingProxy(std::uint16_t upstream_port, std::chrono::milliseconds read_timeout) {
    net::ClientOptions co;
    co.base_url = "http://127.0.0.1:" + std::to_string(upstream_port);
    co.max_connections = 8;
    co.read_timeout = read_timeout;
    auto c = net::HttpClient::create(co);
    if (!c.is_ok()) die(c.status().to_string());
    client_ = std::move(*c);
    net::ServerOptions so;
    so.threads = 4;
    auto s = net::HttpServer::start(so, [this](const net::HttpRequest& r) { return forward(r); });
    if (!s.is_ok()) die(s.status().to_string());
    server_ = std::move(*s);
  }
  ~CountingProxy() { server_->stop(); }

  std::uint16_t port() const { return server_->port(); }
  std::vector<Entry> entries() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    log_.clear();
  }

 private:
  net::HttpResponse forward(const net::HttpRequest& in) {
    net::HttpRequest out;
    out.method = in.method;
    out.target = in.target;
    out.body = in.body;
    for (const auto& [k, v] : in.headers) {
      std::string lk = k;
      for (auto& ch : lk) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lk == "host" || lk == "connection" || lk == "content-length" || lk == "keep-alive") continue;
      out.headers.emplace_back(k, v);
    }
    std::int64_t at = now_ms();
    auto r = client_->send(out);
    net::HttpResponse res;
    Entry e{at, 0, false, false};
    if (!r.is_ok()) {
      res.drop_connection = true;  // the client sees what the server did: no usable reply
    } else {
      res = std::move(*r);
      e.status = res.status;
      if (res.status == 429) {
        bool injected = res.body.find("(injected)") != std::string::npos;
        e.injected_429 = injected;
        e.limit_429 = !injected;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back(e);
    return res;
  }

  std::unique_ptr<net::HttpClient> client_;
  std::unique_ptr<net::HttpServer> server_;
  mutable std::mutex mu_;
  std::vector<Entry> log_;
};

json::object traffic(const std::vector<CountingProxy::Entry>& log, int burst, std::int64_t window_ms, double reserve) {
  json::object o;
  std::int64_t limit429 = 0, injected429 = 0, no_reply = 0;
  for (const auto& e : log) {
    limit429 += e.limit_429;
    injected429 += e.injected_429;
    no_reply += e.status == 0;
  }
  const double allowed = burst * (reserve < 1 ? 1.0 - reserve : 1.0);
  o["requests"] = static_cast<std::int64_t>(log.size());
  o["self_caused_429"] = limit429;
  o["injected_429"] = injected429;
  o["no_reply"] = no_reply;
  o["allowed_per_window"] = allowed;
  if (log.empty()) return o;
  std::int64_t first = log.front().at_ms, last = log.front().at_ms;
  for (const auto& e : log) {
    first = std::min(first, e.at_ms);
    last = std::max(last, e.at_ms);
  }
  // Full fixed windows from the first request; the last, partial window is left out.
  std::int64_t full = (last - first) / window_ms;
  std::vector<std::int64_t> per(static_cast<std::size_t>(full + 1), 0);
  for (const auto& e : log) ++per[static_cast<std::size_t>((e.at_ms - first) / window_ms)];
  double sum = 0;
  std::int64_t at_target = 0;
  for (std::int64_t w = 0; w < full; ++w) {
    double u = static_cast<double>(per[static_cast<std::size_t>(w)]) / allowed;
    sum += u;
    at_target += u >= 0.95;
  }
  // Busiest sliding window (two pointers over the sorted send times).
  std::vector<std::int64_t> t;
  for (const auto& e : log) t.push_back(e.at_ms);
  std::sort(t.begin(), t.end());
  std::size_t lo = 0, busiest = 0;
  std::int64_t busiest_at = 0;
  for (std::size_t hi = 0; hi < t.size(); ++hi) {
    while (t[hi] - t[lo] >= window_ms) ++lo;
    if (hi - lo + 1 > busiest) {
      busiest = hi - lo + 1;
      busiest_at = t[lo] - first;
    }
  }
  json::array windows;
  for (auto n : per) windows.push_back(n);
  o["per_window"] = std::move(windows);
  o["busiest_window_start_ms"] = busiest_at;
  o["full_windows"] = full;
  o["utilization"] = full > 0 ? sum / static_cast<double>(full) : 0.0;
  o["windows_at_95pct"] = at_target;
  o["busiest_sliding_window"] = static_cast<std::int64_t>(busiest);
  o["span_ms"] = last - first;
  o["first_request_steady_ms"] = first;
  return o;
}

struct RunSpec {
  double fault_rate = 0;
  int burst = 190;
};

json::object run_once(const RunSpec& spec, const std::string& config_path, std::uint64_t seed) {
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "cmg-http-bench-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) die("mkdtemp failed");
  const std::string dir = tmpl;
  std::cerr << "http_bench: faults " << spec.fault_rate << ", seeding in " << dir << "\n";
  auto man = cmg::sandbox::seed_reference(dir + "/sandbox/source", dir + "/sandbox/destination", 42);
  if (!man.is_ok()) die(man.status().to_string());
  auto src = cmg::sandbox::SandboxCrm::open(dir + "/sandbox/source");
  auto dst = cmg::sandbox::SandboxCrm::open(dir + "/sandbox/destination");
  if (!src.is_ok() || !dst.is_ok()) die("cannot open the sandboxes");

  // An injected timeout holds its reply past the connector's read timeout (timeout_ms below); both
  // well above the slowest normal reply on a loaded machine, so only injected timeouts time out.
  const std::chrono::milliseconds timeout_hold(16000);
  cmg::sandbox::SandboxServeOptions pso;
  pso.token = "bench-pd";
  pso.timeout_delay = timeout_hold;
  cmg::sandbox::SandboxServeOptions hso;
  hso.token = "bench-hs";
  hso.timeout_delay = timeout_hold;
  cmg::Quota hq = (*dst)->quota();
  hq.burst_requests = spec.burst;
  hq.burst_window_ms = 10000;
  hso.limits = hq;
  cmg::Quota pq = (*src)->quota();
  if (spec.fault_rate > 0) {
    cmg::sandbox::FaultPlan fp;
    fp.seed = seed;
    double r = spec.fault_rate;
    fp.rate_429 = r * 0.25;
    fp.rate_5xx = r * 0.3;
    fp.rate_timeout = r * 0.05;
    fp.rate_reset = r * 0.1;
    fp.rate_lost_reply = r * 0.2;
    fp.rate_malformed = r * 0.1;
    fp.retry_after_ms = 1000;
    fp.read_rate = r;
    hso.faults = fp;
    fp.seed = seed + 1;
    pso.faults = fp;
  } else {
    hso.faults = cmg::sandbox::FaultPlan{};
    pso.faults = cmg::sandbox::FaultPlan{};
  }
  auto pd_server = cmg::sandbox::serve_sandbox(*src, cmg::sandbox::Dialect::kPipedrive, pso);
  auto hs_server = cmg::sandbox::serve_sandbox(*dst, cmg::sandbox::Dialect::kHubSpot, hso);
  if (!pd_server.is_ok()) die(pd_server.status().to_string());
  if (!hs_server.is_ok()) die(hs_server.status().to_string());
  CountingProxy pd_proxy((*pd_server)->port(), std::chrono::milliseconds(30000));
  CountingProxy hs_proxy((*hs_server)->port(), std::chrono::milliseconds(30000));

  ::setenv("PIPEDRIVE_TOKEN", "bench-pd", 1);
  ::setenv("HUBSPOT_TOKEN", "bench-hs", 1);
  auto config_text = [&](bool on_hold) {
    std::string text = read_text(config_path);
    if (text.empty()) die("cannot read " + config_path);
    text = replace_all(text, "@PIPEDRIVE_URL@", "http://127.0.0.1:" + std::to_string(pd_proxy.port()));
    text = replace_all(text, "@HUBSPOT_URL@", "http://127.0.0.1:" + std::to_string(hs_proxy.port()));
    text = replace_all(text, "\"burst_requests\": 190", "\"burst_requests\": " + std::to_string(spec.burst));
    // A reply held past this is a timeout for the connector (the server holds "timeout" faults 16 s).
    text = replace_all(text, "\"token_env\": \"HUBSPOT_TOKEN\",", "\"token_env\": \"HUBSPOT_TOKEN\", \"timeout_ms\": 15000,");
    if (on_hold) {
      auto pos = text.find("\"2/8\": [");
      if (pos == std::string::npos) die("no 2/8 translation in " + config_path);
      text.insert(text.find(']', pos) + 1, R"(, "2/9": ["partnerships", "partner_paused"])");
    }
    return text;
  };
  auto open = [&](bool on_hold) {
    auto cfg = cmg::parse_config(config_text(on_hold), config_path, dir);
    if (!cfg.is_ok()) die(cfg.status().to_string());
    auto m = cmg::Migration::open(std::move(*cfg));
    if (!m.is_ok()) die(m.status().to_string());
    return std::move(*m);
  };

  json::object out;
  auto t0 = SteadyClock::now();
  auto check = [&](const cmg::Status& s, const char* step) {
    if (!s.is_ok()) die(std::string(step) + ": " + s.to_string());
  };
  json::object phases;  // steady ms at the start of each step (offsets from the first HubSpot request below)
  {
    phases["plan"] = now_ms();
    auto m = open(false);
    check(m->plan(true, "bench").status(), "plan");
    std::cerr << "http_bench: run\n";
    phases["run"] = now_ms();
    auto r = m->run(cmg::RunOptions{});
    check(r.status(), "run");
    out["run_state"] = r->state;  // "incomplete" expected (queue items open); "halted" = error-rate halt
    // Why the run left write failures behind (retries_exhausted items: the first few problems).
    cmg::QueueFilter exhausted;
    exhausted.reason = "retries_exhausted";
    if (auto items = m->queue_list(exhausted, 0, 100000); items.is_ok()) {
      json::array sample;
      for (const auto& it : *items)
        if (sample.size() < 3) sample.push_back(it.contains("problems") ? it.at("problems") : json::value());
      out["run_retries_exhausted"] = static_cast<std::int64_t>(items->size());
      out["run_retries_exhausted_samples"] = std::move(sample);
    }
  }
  phases["fixes"] = now_ms();
  auto m2 = open(true);
  check(m2->plan(true, "bench").status(), "plan (fixed)");
  cmg::QueueFilter owners;
  owners.reason = "owner_unprovisioned";
  owners.object = "contacts";
  check(m2->queue_fix(owners, json::object{{"hubspot_owner_id", man->reassign_owner_id}}, "bench", "reassigned").status(),
        "queue fix");
  cmg::QueueFilter orphans;
  orphans.reason = "orphan_reference";
  check(m2->queue_skip(orphans, "bench", "deleted in the source").status(), "queue skip");
  std::cerr << "http_bench: reprocess\n";
  phases["reprocess"] = now_ms();
  check(m2->reprocess(cmg::RunOptions{}).status(), "reprocess");
  std::cerr << "http_bench: reconcile\n";
  phases["reconcile"] = now_ms();
  auto rec = m2->reconcile();
  check(rec.status(), "reconcile");
  double wall_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
  // What is left open, by reason (diagnostics for an incomplete run).
  json::object open_by_reason;
  json::object samples;  // the first problems of each reason (why an item is open)
  if (auto items = m2->queue_list(cmg::QueueFilter{}, 0, 100000); items.is_ok())
    for (const auto& it : *items)
      if (const auto* reason = it.if_contains("reason"); reason && reason->is_string()) {
        auto& n = open_by_reason[reason->get_string()];
        n = n.is_int64() ? n.as_int64() + 1 : 1;
        auto& sample = samples[reason->get_string()];
        if (!sample.is_array()) sample = json::array{};
        if (sample.as_array().size() < 3)
          sample.as_array().push_back(json::object{{"id", it.contains("id") ? it.at("id") : json::value()},
                                                   {"problems", it.contains("problems") ? it.at("problems") : json::value()}});
      }
  out["queue_open_by_reason"] = std::move(open_by_reason);
  out["queue_open_samples"] = std::move(samples);
  m2.reset();

  auto hs_log = hs_proxy.entries();
  auto pd_log = pd_proxy.entries();
  json::object hs = traffic(hs_log, spec.burst, 10000, 0.0);
  json::object pd = traffic(pd_log, pq.burst_requests, pq.burst_window_ms, 0.0);
  auto min_ms = [](std::size_t n, int b, std::int64_t w) -> double {
    return n <= 1 || b <= 0 ? 0.0 : static_cast<double>((static_cast<std::int64_t>(n) - 1) / b) * static_cast<double>(w);
  };
  double hs_min = min_ms(hs_log.size(), spec.burst, 10000);
  double pd_min = min_ms(pd_log.size(), pq.burst_requests, pq.burst_window_ms);
  double theoretical = std::max(hs_min, pd_min);
  json::object counts;
  for (const auto& [name, c] : rec->objects)
    counts[name] = json::object{{"source", c.source}, {"written", c.written}, {"merged", c.merged},
                                {"queued", c.queued}, {"skipped", c.skipped}, {"pending", c.pending}};
  out["fault_rate"] = spec.fault_rate;
  out["complete"] = rec->complete;
  out["readback_mismatches"] = rec->readback_mismatches;
  out["counts"] = std::move(counts);
  out["wall_ms"] = wall_ms;
  out["theoretical_min_ms"] = theoretical;
  out["wall_over_min"] = theoretical > 0 ? wall_ms / theoretical : 0.0;
  if (const auto* f = hs.if_contains("first_request_steady_ms"))
    for (auto& kv : phases) kv.value() = kv.value().as_int64() - f->as_int64();
  out["phase_start_ms"] = std::move(phases);
  out["hubspot"] = std::move(hs);
  out["pipedrive"] = std::move(pd);
  out["self_caused_429"] = out["hubspot"].as_object()["self_caused_429"].as_int64() +
                           out["pipedrive"].as_object()["self_caused_429"].as_int64();
  (*hs_server)->stop();
  (*pd_server)->stop();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  RunSpec base;
  bool faults = true;
  bool only_faults = false;
  double fault_rate = 0.10;
  std::string config = (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "examples" /
                        "reference-http" / "migration.json")
                           .string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--burst" && i + 1 < argc) base.burst = std::atoi(argv[++i]);
    else if (a == "--no-faults") faults = false;
    else if (a == "--faults-only") only_faults = true;
    else if (a == "--fault-rate" && i + 1 < argc) fault_rate = std::atof(argv[++i]);
    else if (a == "--config" && i + 1 < argc) config = argv[++i];
    else die("usage: http_bench [--burst N] [--no-faults | --faults-only] [--fault-rate R] [--config PATH]");
  }
  json::array runs;
  if (!only_faults) runs.push_back(run_once(base, config, 7));
  if (faults || only_faults) {
    RunSpec f = base;
    f.fault_rate = fault_rate;
    runs.push_back(run_once(f, config, 7));
  }
  json::object report{{"bench", "http_reference"},
                      {"declared", json::object{{"hubspot", json::object{{"burst_requests", base.burst},
                                                                         {"burst_window_ms", 10000},
                                                                         {"reserve", 0}}},
                                                {"pipedrive", json::object{{"burst_requests", 80},
                                                                           {"burst_window_ms", 2000}}}}},
                      {"targets", json::object{{"utilization", ">= 0.95"}, {"self_caused_429", 0}}},
                      {"runs", std::move(runs)}};
  std::cout << json::serialize(report) << std::endl;
  return 0;
}
