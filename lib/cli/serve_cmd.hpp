// `crmmigrate serve`: the review console (lib/web) on the loopback HTTP server.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace cmg::cli {

struct ServeArgs {
  CLI::App* command = nullptr;
  std::string config;
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;
};

/// Adds the `serve` subcommand to `app`; `args` receives its options and must outlive parsing.
void add_serve_command(CLI::App& app, ServeArgs& args);
/// Runs the console until SIGINT/SIGTERM. Returns the process exit code (DESIGN §5).
int run_serve_command(const ServeArgs& args);

}  // namespace cmg::cli
