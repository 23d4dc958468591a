// `crmmigrate serve -c migration.json [--port N]`: prints the console's URL (with its access token,
// as notebook servers do) and serves until SIGINT/SIGTERM. Reprocess and reconcile started from the
// console run as child processes of this same binary, so the console keeps answering meanwhile and
// the run lock (exit 4) works exactly as on the command line.
#include "serve_cmd.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "crmmigrate/net/http_server.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "crmmigrate/web/console.hpp"

namespace cmg::cli {

void add_serve_command(CLI::App& app, ServeArgs& args) {
  args.command =
      app.add_subcommand("serve", "the review console: plan sign-off, queue, audit log (web UI on 127.0.0.1)");
  args.command->add_option("-c,--config", args.config, "migration config (migration.json)")
      ->required()
      ->check(CLI::ExistingFile);
  args.command->add_option("--port", args.port, "TCP port (default: a free one)");
  args.command->add_option("--bind", args.bind, "address to listen on (loopback only)")
      ->check(CLI::IsMember({"127.0.0.1", "::1"}))
      ->capture_default_str();
}

namespace {

Result<std::unique_ptr<Migration>> open_for_console(const std::string& config_path) {
  CMG_ASSIGN_OR_RETURN(auto cfg, load_config(config_path));
  CMG_ASSIGN_OR_RETURN(auto m, Migration::open(std::move(cfg)));
  // Alerts raised by calls the console makes (reconcile in-process, plan) go to its stderr.
  m->set_alert_callback([](const Alert& a) { std::cerr << "ALERT [" << a.kind << "] " << a.message << "\n"; });
  return m;
}

int fail(const Status& st) {
  std::cerr << "crmmigrate: " << st.message() << "\n";
  return st.code() == Code::kLocked ? 4 : st.code() == Code::kUnavailable ? 6 : 2;
}

}  // namespace

int run_serve_command(const ServeArgs& args) {
  std::error_code ec;
  std::string config = std::filesystem::absolute(args.config, ec).string();
  auto m = open_for_console(config);
  if (!m.is_ok()) return fail(m.status());

  web::ConsoleOptions opts;
  opts.config_path = config;
  opts.reopen = [config] { return open_for_console(config); };
  std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec || self.empty()) return fail(Status(Code::kInternal, "cannot find this program's path in /proc/self/exe"));
  opts.job_command = {self};
  auto console = web::Console::create(std::move(*m), std::move(opts));
  if (!console.is_ok()) return fail(console.status());
  web::Console& c = **console;

  // The server threads inherit this mask, so SIGINT/SIGTERM reach only the sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  net::ServerOptions so;
  so.bind_address = args.bind;
  so.port = args.port;
  so.threads = 2;
  so.max_body_bytes = 1024 * 1024;
  auto server = net::HttpServer::start(so, [&c](const net::HttpRequest& r) { return c.handle(r); });
  if (!server.is_ok()) return fail(server.status());
  std::string host = args.bind == "::1" ? "[::1]" : args.bind;
  std::printf("crmmigrate console for %s\n", args.config.c_str());
  std::printf("  open http://%s:%u%s\n", host.c_str(), static_cast<unsigned>((*server)->port()),
              c.entry_path().c_str());
  std::printf("  (the token in this URL is the console's password; Ctrl-C stops the console)\n");
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  (*server)->stop();
  std::printf("console stopped\n");
  return 0;
}

}  // namespace cmg::cli
