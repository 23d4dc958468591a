// A small HTTP/1.1 server on Boost.Beast for loopback use: `crmmigrate sandbox serve` (platform
// dialects) and `crmmigrate serve` (review console) are handlers on it.
//
// Threading: `threads` worker threads run the io_context; the handler is called concurrently from
// them and must be thread-safe. Keep-alive is supported; each request is read whole (bounded by
// max_body_bytes → 413) before the handler runs. Ownership: the server owns its threads; stop() (or
// the destructor) closes the listener and every connection and joins the threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "crmmigrate/core/status.hpp"
#include "crmmigrate/net/http.hpp"

namespace cmg::net {

using Handler = std::function<HttpResponse(const HttpRequest&)>;

struct ServerOptions {
  std::string bind_address = "127.0.0.1";  // loopback by default; tests never use anything else
  std::uint16_t port = 0;                  // 0 = pick a free port (see HttpServer::port())
  unsigned threads = 2;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 8 * 1024 * 1024;
  std::chrono::milliseconds idle_timeout{30000};  // keep-alive connection closed after this idle time
};

class HttpServer {
 public:
  /// Binds, listens and starts the worker threads. Errors: kUnavailable when the address/port cannot
  /// be bound (message names them), kInvalidArgument for a bad address.
  static Result<std::unique_ptr<HttpServer>> start(const ServerOptions& options, Handler handler);
  virtual ~HttpServer() = default;
  /// The bound port (useful with options.port == 0).
  virtual std::uint16_t port() const noexcept = 0;
  /// Stops accepting, closes connections, joins the threads. Idempotent.
  virtual void stop() = 0;
  /// Blocks until stop() is called from another thread (or a signal handler path calls stop()).
  virtual void wait() = 0;
};

}  // namespace cmg::net
