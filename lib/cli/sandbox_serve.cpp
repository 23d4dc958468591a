// `crmmigrate sandbox serve --dialect hubspot|pipedrive --path DIR [--port N] [--token-env VAR]
// [--faults SPEC] [--limits SPEC]`: prints the base URL and serves until SIGINT/SIGTERM, on
// 127.0.0.1 only. The token is read from the named environment variable and never printed.
#include "sandbox_serve.hpp"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "crmmigrate/sandbox/serve.hpp"

namespace cmg::cli {

void add_sandbox_serve_command(CLI::App& sandbox, SandboxServeArgs& args) {
  args.command = sandbox.add_subcommand("serve", "serve a sandbox CRM over HTTP in a platform's dialect (127.0.0.1)");
  args.command->add_option("--dialect", args.dialect, "hubspot or pipedrive (must match the sandbox preset)")
      ->required()
      ->check(CLI::IsMember({"hubspot", "pipedrive"}));
  args.command->add_option("--path", args.path, "the sandbox directory")->required();
  args.command->add_option("--port", args.port, "TCP port (default: a free one)");
  args.command->add_option("--token-env", args.token_env,
                           "environment variable holding the token clients must send (default: no token check)");
  args.command->add_option("--faults", args.faults,
                           "fault plan: JSON such as {\"seed\":1,\"rate_429\":0.05} or @file (default: the "
                           "sandbox's stored plan or CMG_SANDBOX_FAULTS)");
  args.command->add_option("--limits", args.limits,
                           "declared (enforce the preset's quota), off (headers only, never 429) or "
                           "BURST/WINDOW_MS[/DAILY], e.g. 10/1000")
      ->capture_default_str();
  args.command->add_option("--timeout-delay-ms", args.timeout_delay_ms,
                           "how long an injected timeout holds its reply")
      ->capture_default_str();
}

namespace {

int fail(const Status& st) {
  std::cerr << "crmmigrate: " << st.message() << "\n";
  return st.code() == Code::kUnavailable ? 6 : 2;
}

Status parse_limits(const std::string& spec, sandbox::SandboxServeOptions& opts, const Quota& declared) {
  if (spec == "declared") return Status::ok();
  if (spec == "off") {
    opts.enforce_limits = false;
    return Status::ok();
  }
  Quota q = declared;
  long long burst = 0, window = 0, daily = 0;
  char extra = 0;
  int n = std::sscanf(spec.c_str(), "%lld/%lld/%lld%c", &burst, &window, &daily, &extra);
  if ((n != 2 && n != 3) || burst < 1 || window < 1 || daily < 0)
    return invalid_argument("--limits " + spec + ": expected declared, off or BURST/WINDOW_MS[/DAILY] such as 10/1000");
  q.burst_requests = static_cast<int>(burst);
  q.burst_window_ms = static_cast<int>(window);
  if (n == 3) q.daily_requests = daily;
  opts.limits = q;
  return Status::ok();
}

}  // namespace

int run_sandbox_serve_command(const SandboxServeArgs& args) {
  auto dialect = sandbox::dialect_from_name(args.dialect);
  if (!dialect) return fail(invalid_argument("--dialect must be hubspot or pipedrive"));
  auto crm = sandbox::SandboxCrm::open(args.path);
  if (!crm.is_ok()) return fail(crm.status());

  sandbox::SandboxServeOptions opts;
  opts.server.bind_address = "127.0.0.1";
  opts.server.port = args.port;
  opts.server.threads = 2;
  opts.timeout_delay = std::chrono::milliseconds(std::max<std::int64_t>(0, args.timeout_delay_ms));
  if (!args.token_env.empty()) {
    const char* token = std::getenv(args.token_env.c_str());
    if (!token || !*token) return fail(invalid_argument("--token-env " + args.token_env + ": the variable is not set"));
    opts.token = token;
  }
  if (!args.faults.empty()) {
    std::string text = args.faults;
    std::string origin = "--faults";
    if (text[0] == '@') {
      std::ifstream in(text.substr(1), std::ios::binary);
      if (!in) return fail(invalid_argument("--faults: cannot read " + text.substr(1)));
      std::ostringstream ss;
      ss << in.rdbuf();
      origin = text.substr(1);
      text = ss.str();
    }
    auto plan = sandbox::fault_plan_from_json(text, origin);
    if (!plan.is_ok()) return fail(plan.status());
    opts.faults = *plan;
  }
  Status st = parse_limits(args.limits, opts, (*crm)->quota());
  if (!st.is_ok()) return fail(st);

  // The server threads inherit this mask, so SIGINT/SIGTERM reach only the sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = sandbox::serve_sandbox(*crm, *dialect, opts);
  if (!server.is_ok()) return fail(server.status());
  std::printf("sandbox %s (%s dialect) at http://127.0.0.1:%u\n", args.path.c_str(), args.dialect.c_str(),
              static_cast<unsigned>((*server)->port()));
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  (*server)->stop();
  std::printf("sandbox server stopped\n");
  return 0;
}

}  // namespace cmg::cli
