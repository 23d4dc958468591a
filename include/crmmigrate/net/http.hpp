// HTTP message types shared by the client (lib/net/http_client), the loopback server
// (lib/net/http_server), the sandbox's platform dialects and the review console.
//
// Plain value types: no Boost.Beast in the public headers, so embedders and connector authors do not
// compile Beast. Header names compare case-insensitively (RFC 9110 §5.1).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cmg::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

/// Value of the first header named `name` (case-insensitive), or "" when absent.
std::string_view header_value(const Headers& headers, std::string_view name) noexcept;

struct HttpRequest {
  std::string method = "GET";  // "GET", "POST", "PATCH", "PUT", "DELETE"
  std::string target = "/";    // origin-form: path plus optional "?query"
  Headers headers;
  std::string body;
  /// Server side only: the peer address ("127.0.0.1"), set by the server for the handler.
  std::string remote_address;

  std::string_view header(std::string_view name) const noexcept { return header_value(headers, name); }
  /// The path part of `target` (before '?').
  std::string_view path() const noexcept;
  /// The decoded value of query parameter `name` ("" when absent); `found` tells absent from empty.
  std::string query(std::string_view name, bool* found = nullptr) const;
  /// Every decoded value of query parameter `name`, in order (`?id=1&id=2` → {"1", "2"}).
  std::vector<std::string> query_all(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  Headers headers;
  std::string body;
  // Server side only, for fault injection by the sandbox's platform dialects (docs/http-dialects.md):
  /// The server waits this long (on a timer; no worker thread is blocked) before answering.
  std::chrono::milliseconds delay{0};
  /// The server resets the connection (TCP RST) after `delay` instead of writing this response.
  bool drop_connection = false;

  std::string_view header(std::string_view name) const noexcept { return header_value(headers, name); }
  /// Replaces (or adds) header `name`.
  void set_header(std::string name, std::string value);
};

/// Percent-decodes a URL component ('+' becomes a space). Invalid escapes are kept verbatim.
std::string url_decode(std::string_view s);
/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
std::string url_encode(std::string_view s);

}  // namespace cmg::net
