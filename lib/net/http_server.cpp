// Loopback HTTP/1.1 server on Boost.Beast (see crmmigrate/net/http_server.hpp).
//
// One Session per connection, each on its own strand: read header (bounded by max_header_bytes →
// 431), answer "Expect: 100-continue", read the body (bounded by max_body_bytes → 413), call the
// handler, optionally wait (fault injection), write, then loop for keep-alive. Every phase has a
// deadline (tcp_stream::expires_after) so an idle or stalled peer cannot pin a connection.
#include "crmmigrate/net/http_server.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <condition_variable>
#include <exception>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace cmg::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// A peer that stops reading our 413/431 answer still gets this long to take it before we close.
constexpr std::chrono::seconds kLingerDrain{2};

struct Shared {
  ServerOptions options;
  Handler handler;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<const Shared> shared)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), shared_(std::move(shared)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_address_ = ep.address().to_string();
  }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  /// Called by HttpServer::stop() after the worker threads are joined: nothing runs concurrently.
  void force_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

 private:
  void read_header() {
    head_ = false;
    version_ = 11;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(shared_->options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(shared_->options.max_body_bytes);
    stream_.expires_after(shared_->options.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_header(ec);
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    const auto& req = parser_->get();
    auto expect = req[http::field::expect];
    if (!expect.empty() && beast::iequals(expect, "100-continue")) {
      continue_ = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
      stream_.expires_after(shared_->options.idle_timeout);
      http::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code ec2, std::size_t) {
        if (ec2) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(shared_->options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(beast::error_code ec) {
    // A clean close between requests, an idle timeout or a reset: nothing to answer.
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == http::error::partial_message) {
      return close();
    }
    int status = 400;
    std::string message = "malformed HTTP request";
    if (ec == http::error::body_limit) {
      status = 413;
      message = fmt::format("request body exceeds {} bytes", shared_->options.max_body_bytes);
    } else if (ec == http::error::header_limit) {
      status = 431;
      message = fmt::format("request header exceeds {} bytes", shared_->options.max_header_bytes);
    }
    HttpResponse res;
    res.status = status;
    res.set_header("Content-Type", "application/json");
    res.body = fmt::format(R"({{"status":"error","message":"{}"}})", message);
    write(std::move(res), /*keep_alive=*/false);
  }

  void on_request() {
    auto& req = parser_->get();
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.headers.reserve(static_cast<std::size_t>(std::distance(req.begin(), req.end())));
    for (const auto& f : req) request.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    request.body = std::move(req.body());
    request.remote_address = remote_address_;
    bool keep_alive = req.keep_alive();
    head_ = req.method() == http::verb::head;
    version_ = req.version();

    HttpResponse res;
    try {
      res = shared_->handler(request);
    } catch (const std::exception& e) {
      res = HttpResponse{};
      res.status = 500;
      res.set_header("Content-Type", "application/json");
      res.body = R"({"status":"error","message":"internal server error"})";
      (void)e;  // the exception text may hold request data; it is not echoed to the peer
    } catch (...) {
      res = HttpResponse{};
      res.status = 500;
      res.body = R"({"status":"error","message":"internal server error"})";
    }
    if (beast::iequals(res.header("Connection"), "close")) keep_alive = false;

    if (res.delay.count() > 0) {
      auto pending = std::make_shared<HttpResponse>(std::move(res));
      timer_.expires_after(pending->delay);
      timer_.async_wait([self = shared_from_this(), pending, keep_alive](beast::error_code ec) {
        if (ec) return self->close();
        self->respond(std::move(*pending), keep_alive);
      });
      return;
    }
    respond(std::move(res), keep_alive);
  }

  void respond(HttpResponse res, bool keep_alive) {
    if (res.drop_connection) return reset();
    write(std::move(res), keep_alive);
  }

  void write(HttpResponse res, bool keep_alive) {
    auto msg = std::make_shared<http::response<http::string_body>>();
    msg->version(version_);
    msg->result(static_cast<unsigned>(res.status));
    for (auto& h : res.headers) {
      if (beast::iequals(h.first, "Content-Length") || beast::iequals(h.first, "Transfer-Encoding") ||
          beast::iequals(h.first, "Connection"))
        continue;
      msg->insert(h.first, h.second);
    }
    msg->body() = std::move(res.body);
    msg->keep_alive(keep_alive);
    msg->prepare_payload();
    if (head_) msg->body().clear();  // Content-Length stays that of the GET answer (RFC 9110 §9.3.2)
    stream_.expires_after(std::max(shared_->options.idle_timeout, std::chrono::milliseconds(1000)));
    http::async_write(stream_, *msg, [self = shared_from_this(), msg, keep_alive](beast::error_code ec, std::size_t) {
      self->on_write(ec, keep_alive);
    });
  }

  void on_write(beast::error_code ec, bool keep_alive) {
    if (ec) return close();
    if (!keep_alive) return linger_close();
    read_header();
  }

  // Half-close, then drain what the peer still sends so that closing does not turn into a reset that
  // discards our last answer (e.g. a 413 while the client is still uploading).
  void linger_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    stream_.expires_after(kLingerDrain);
    drain_ = std::make_shared<std::array<char, 8192>>();
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(*drain_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void reset() {
    beast::error_code ec;
    stream_.socket().set_option(asio::socket_base::linger(true, 0), ec);
    stream_.socket().close(ec);
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::empty_body>> continue_;
  std::shared_ptr<std::array<char, 8192>> drain_;
  std::shared_ptr<const Shared> shared_;
  std::string remote_address_;
  unsigned version_ = 11;
  bool head_ = false;
};

class BeastServer final : public HttpServer {
 public:
  BeastServer(std::shared_ptr<const Shared> shared)
      : shared_(std::move(shared)), acceptor_(asio::make_strand(ioc_)) {}

  ~BeastServer() override {
    stop();
    // A thread left running by stop() called from a handler has returned from run() by now or soon.
    for (auto& t : threads_) {
      if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
    }
  }

  Status listen() {
    beast::error_code ec;
    auto address = asio::ip::make_address(shared_->options.bind_address, ec);
    if (ec) {
      return invalid_argument(
          fmt::format("http server: bad bind address '{}': {}", shared_->options.bind_address, ec.message()));
    }
    tcp::endpoint endpoint(address, shared_->options.port);
    auto fail = [&](const char* what) {
      return Status(Code::kUnavailable, fmt::format("http server: cannot {} {}:{}: {}", what,
                                                    shared_->options.bind_address, shared_->options.port,
                                                    ec.message()));
    };
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) return fail("open");
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return fail("configure");
    acceptor_.bind(endpoint, ec);
    if (ec) return fail("bind");
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen on");
    port_ = acceptor_.local_endpoint(ec).port();
    if (ec) return fail("query");
    return Status::ok();
  }

  void run() {
    accept();
    unsigned n = std::max(1u, shared_->options.threads);
    threads_.reserve(n);
    for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  std::uint16_t port() const noexcept override { return port_; }

  void stop() override {
    std::unique_lock<std::mutex> stop_lock(stop_mutex_);
    if (stopped_) return;
    ioc_.stop();
    for (auto& t : threads_) {
      // stop() from a handler thread: that thread leaves run() once the handler returns; the
      // destructor joins it.
      if (t.get_id() != std::this_thread::get_id()) t.join();
    }
    // No thread runs the io_context any more, so sessions can be touched from here.
    beast::error_code ec;
    acceptor_.close(ec);
    {
      std::lock_guard<std::mutex> lock(sessions_mutex_);
      for (auto& w : sessions_) {
        if (auto s = w.lock()) s->force_close();
      }
      sessions_.clear();
    }
    stopped_ = true;
    stop_lock.unlock();
    stopped_cv_.notify_all();
  }

  void wait() override {
    std::unique_lock<std::mutex> lock(stop_mutex_);
    stopped_cv_.wait(lock, [this] { return stopped_; });
  }

 private:
  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        beast::error_code nodelay_ec;
        socket.set_option(tcp::no_delay(true), nodelay_ec);
        auto session = std::make_shared<Session>(std::move(socket), shared_);
        remember(session);
        session->start();
      }
      // Transient accept errors (EMFILE, ECONNABORTED) must not end the accept loop.
      accept();
    });
  }

  void remember(const std::shared_ptr<Session>& session) {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    // Prune expired entries now and then so a long-running server does not grow the list.
    if (++accepted_ % 64 == 0) sessions_.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
    sessions_.push_back(session);
  }

  std::shared_ptr<const Shared> shared_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  std::mutex sessions_mutex_;
  std::list<std::weak_ptr<Session>> sessions_;
  std::size_t accepted_ = 0;
  std::mutex stop_mutex_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(const ServerOptions& options, Handler handler) {
  if (!handler) return invalid_argument("http server: no handler given");
  auto shared = std::make_shared<Shared>();
  shared->options = options;
  shared->handler = std::move(handler);
  auto server = std::make_unique<BeastServer>(std::move(shared));
  CMG_RETURN_IF_ERROR(server->listen());
  server->run();
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace cmg::net
