// HTTP/1.1 client for the platform connectors (Boost.Beast + Asio + OpenSSL; implementation in
// lib/net/http_client.cpp).
//
// - One client talks to one origin (`base_url`); request targets are relative to it, so credentials
//   are only ever sent to the configured host. Redirects are refused by default (a 3xx is returned as
//   a response, never followed) and there is no proxy support (no *_proxy variables are read).
// - TLS: SNI set, peer verified against the system CA store plus `ca_file` when given; a self-signed
//   server is refused unless `ca_file` names its CA.
// - Keep-alive connections are pooled and reused; at most `max_connections` requests are in flight.
// - Secrets: `secret_headers` (e.g. Authorization) are added to every request and are never part of
//   any error message, log line or HttpResponse. Error messages name method, path and phase only.
//
// Thread-safety: send() may be called concurrently from several threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "crmmigrate/core/status.hpp"
#include "crmmigrate/net/http.hpp"

namespace cmg::net {

struct ClientOptions {
  std::string base_url;                 // "https://api.hubapi.com" or "http://127.0.0.1:8080"
  std::string ca_file;                  // extra trusted CA (PEM); empty = system store only
  Headers secret_headers;               // auth headers; values never logged or returned
  Headers default_headers;              // e.g. User-Agent, Accept
  std::chrono::milliseconds resolve_timeout{10000};
  std::chrono::milliseconds connect_timeout{10000};  // TCP connect + TLS handshake
  std::chrono::milliseconds write_timeout{30000};
  std::chrono::milliseconds read_timeout{60000};     // until the whole response is read
  unsigned max_connections = 4;
  std::size_t max_response_bytes = 64 * 1024 * 1024; // larger bodies fail with kUnavailable
  bool follow_redirects = false;
};

class HttpClient {
 public:
  /// Validates the options (URL scheme http/https, host, port; ca_file readable). Errors: kConfig.
  static Result<std::unique_ptr<HttpClient>> create(const ClientOptions& options);
  virtual ~HttpClient() = default;
  /// Sends `request` (target relative to base_url) and returns the response, whatever its status.
  /// Errors (no usable response): kUnavailable for resolve/connect/TLS/timeout/reset/oversize/
  /// malformed reply, with `phase` in the message ("connect", "tls", "write", "read").
  /// `*maybe_sent` (when given) tells whether any byte of the request may have reached the server —
  /// the caller must then treat a write as outcome-unknown.
  virtual Result<HttpResponse> send(const HttpRequest& request, bool* maybe_sent = nullptr) = 0;
  /// Number of TCP connections opened so far (tests check keep-alive reuse).
  virtual std::size_t connections_opened() const noexcept = 0;
};

}  // namespace cmg::net
