// The sandbox CRM served over loopback HTTP in a platform's dialect (`crmmigrate sandbox serve`), so
// the HubSpot and Pipedrive connectors can be tested end to end against real HTTP without the real
// platforms. Paths, JSON shapes, status codes, error bodies and rate-limit headers follow the
// platforms; docs/http-dialects.md lists every endpoint and how sandbox objects and fields map.
//
// Faults: the sandbox's fault plan (SandboxCrm::faults(), i.e. its stored plan or
// CMG_SANDBOX_FAULTS) — or `options.faults` when set — moves to the HTTP layer: serve_sandbox()
// turns the instance's own injection off and draws one fault per data request instead, answering
// with real HTTP behaviour (429/500/503 with the platform's error body, a reply held past the
// client's timeout, a TCP reset, an applied write whose reply is lost, a truncated JSON body, a
// partial batch failure).
//
// Thread-safety: the returned server calls the sandbox from its worker threads; SandboxCrm is
// thread-safe. Ownership: the server shares ownership of the sandbox until it is destroyed.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/status.hpp"
#include "crmmigrate/net/http_server.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"

namespace cmg::sandbox {

enum class Dialect { kHubSpot, kPipedrive };

/// "hubspot" / "pipedrive".
const char* dialect_name(Dialect d) noexcept;
/// Parses "hubspot" / "pipedrive"; nullopt otherwise.
std::optional<Dialect> dialect_from_name(std::string_view name) noexcept;

struct SandboxServeOptions {
  net::ServerOptions server;
  /// The token clients must send (HubSpot: `Authorization: Bearer <token>`; Pipedrive:
  /// `x-api-token: <token>` or `?api_token=<token>`). Compared in constant time, never logged or
  /// echoed. Empty = any request is accepted.
  std::string token;
  /// Answer 429 (with Retry-After) once a client exceeds the declared burst or daily limit. The
  /// rate-limit headers are sent either way.
  bool enforce_limits = true;
  /// Overrides the sandbox preset's declared quota (burst_requests per burst_window_ms, daily).
  std::optional<Quota> limits;
  /// Overrides the sandbox's fault plan (see above); nullopt = the sandbox's own plan.
  std::optional<FaultPlan> faults;
  /// How long a "timeout" fault holds its reply (past the client's read timeout).
  std::chrono::milliseconds timeout_delay{65000};
};

/// Starts an HTTP server answering in `dialect` from `crm`. The dialect must match the sandbox's
/// preset (hubspot ↔ "hubspot", pipedrive ↔ "pipedrive"). Errors: kInvalidArgument (null sandbox,
/// preset/dialect mismatch), and those of net::HttpServer::start (kUnavailable when the port
/// cannot be bound).
Result<std::unique_ptr<net::HttpServer>> serve_sandbox(std::shared_ptr<SandboxCrm> crm, Dialect dialect,
                                                       const SandboxServeOptions& options);

}  // namespace cmg::sandbox
