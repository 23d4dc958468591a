// `crmmigrate sandbox serve`: a sandbox CRM over loopback HTTP in a platform's dialect (serve.hpp).
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

namespace cmg::cli {

struct SandboxServeArgs {
  CLI::App* command = nullptr;
  std::string dialect;
  std::string path;
  std::uint16_t port = 0;
  std::string token_env;
  std::string faults;
  std::string limits = "declared";
  std::int64_t timeout_delay_ms = 65000;
};

/// Adds `serve` under the `sandbox` subcommand; `args` must outlive parsing.
void add_sandbox_serve_command(CLI::App& sandbox, SandboxServeArgs& args);
/// Serves until SIGINT/SIGTERM; returns the process exit code (DESIGN §5).
int run_sandbox_serve_command(const SandboxServeArgs& args);

}  // namespace cmg::cli
