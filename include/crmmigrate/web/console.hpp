// The review console (DESIGN §1 "people"): a JSON API and a small single-page UI over one
// migration's state, served by `crmmigrate serve` on the loopback HTTP server (net/http_server.hpp).
//
// The console is a pure request handler, `Console::handle(request) → response`, so that every rule
// can be tested without sockets. It reads the state with LMDB readers (a run in another process goes
// on meanwhile) and changes it only through Migration's short write transactions (queue fix/skip,
// plan sign-off). Reprocess and reconcile are *jobs*: in-process and synchronous by default, or a
// child process (`crmmigrate queue reprocess …`) when ConsoleOptions::job_command is set, so that
// the console keeps answering while the job holds the run lock.
//
// Security (every request): the Host header must name a loopback host (DNS-rebinding defence); the
// access token must come with the request (a cookie set by the first `/?token=…` load, HttpOnly and
// SameSite=Strict, or `Authorization: Bearer …`); state-changing requests are POSTs with a JSON body
// (`Content-Type: application/json`), the CSRF token of /api/session in `X-CSRF-Token`, and no
// cross-site Origin / Sec-Fetch-Site. No CORS headers are ever sent; every response carries a strict
// Content-Security-Policy. Refusals: 403 wrong Host or cross-site, 401 missing/wrong token, 403 missing
// or wrong CSRF token, 415 non-JSON body, 405 other methods, 409 locked by a run.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crmmigrate/core/status.hpp"
#include "crmmigrate/net/http.hpp"
#include "crmmigrate/pipeline/migration.hpp"

namespace cmg::web {

struct ConsoleOptions {
  /// The access token. Empty = a random 256-bit token (random_token()).
  std::string token;
  /// The config file the migration was opened from. When its modification time changes, the console
  /// reopens the migration (with `reopen`) so that plan and reprocess see the edited config. "" = never.
  std::string config_path;
  /// Opens the migration again after a config change; required with config_path.
  std::function<Result<std::unique_ptr<Migration>>()> reopen;
  /// Empty: jobs run in-process and the POST returns when they are done (tests, embedders).
  /// Otherwise the command prefix of a child process for jobs, e.g. {"/proc/self/exe"}; the console
  /// appends `queue reprocess -c CONFIG --json` or `reconcile -c CONFIG --json` (config_path).
  std::vector<std::string> job_command;
  /// Directory for the child jobs' output files; "" = a private temporary directory.
  std::string scratch_dir;
};

class Console {
 public:
  /// Takes ownership of `migration`. Errors: kInvalidArgument for inconsistent options (job_command
  /// or config_path without what they need); kIO when the scratch directory cannot be made.
  static Result<std::unique_ptr<Console>> create(std::unique_ptr<Migration> migration, ConsoleOptions options);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  /// Answers one request (API, static files or refusal). Thread-safe: requests touching the state are
  /// serialised inside; static files are served without waiting.
  net::HttpResponse handle(const net::HttpRequest& request);

  /// The access token (a secret: print it only in the URL the user opens).
  const std::string& token() const;
  /// The path a browser opens first: "/?token=…" (sets the cookie, then redirects to "/").
  std::string entry_path() const;

  struct Impl;

 private:
  explicit Console(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// `bytes` random bytes from the OS CSPRNG, hex-encoded. Throws nothing; on failure of the random
/// source returns "" (callers treat that as an error).
std::string random_token(std::size_t bytes = 32);

/// True when `host` (a Host header value, with or without ":port") names a loopback host:
/// localhost, 127.0.0.0/8 or [::1].
bool is_loopback_host(std::string_view host);

}  // namespace cmg::web
