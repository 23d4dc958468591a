// HTTP/1.1 client on Boost.Beast + Asio + OpenSSL (see crmmigrate/net/http_client.hpp).
//
// Design: each pooled connection owns its own io_context, so a send() drives the asynchronous
// operations of exactly one connection on the calling thread (no shared event-loop thread, no
// cross-thread handlers). Phase timeouts come from beast::tcp_stream's per-operation expiry (connect,
// handshake, write, read) and from a timer for the resolver. At most max_connections sends run at
// once (a counting gate); idle keep-alive connections wait in a LIFO pool.
#include "crmmigrate/net/http_client.hpp"

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>

namespace cmg::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct Origin {
  bool tls = false;
  std::string host;       // without brackets
  std::string port;       // numeric text
  std::string host_header;
  std::string base_path;  // "" or "/prefix" (no trailing slash)
};

bool has_ctl(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

Result<Origin> parse_base_url(const std::string& url) {
  Origin o;
  std::string_view rest = url;
  if (rest.rfind("https://", 0) == 0) {
    o.tls = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return config_error("base_url '" + url + "': the scheme must be http:// or https://");
  }
  if (has_ctl(url)) return config_error("base_url: contains control characters");
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos)
    return config_error("base_url: user information (user:password@) is not allowed; use a *_env secret");
  if (path.find_first_of("?#") != std::string_view::npos)
    return config_error("base_url '" + url + "': must not contain a query or fragment");
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return config_error("base_url '" + url + "': unbalanced '[' in the host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return config_error("base_url '" + url + "': junk after the IPv6 host");
      port = after.substr(1);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return config_error("base_url '" + url + "': no host");
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)
      return config_error("base_url '" + url + "': invalid port '" + std::string(port) + "'");
  }
  o.host = std::string(host);
  o.port = port.empty() ? (o.tls ? "443" : "80") : std::string(port);
  bool v6 = o.host.find(':') != std::string::npos;
  o.host_header = v6 ? "[" + o.host + "]" : o.host;
  if (!port.empty() && o.port != (o.tls ? "443" : "80")) o.host_header += ":" + o.port;
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  o.base_path = std::string(path);
  return o;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// One keep-alive connection. The io_context is declared first so it outlives the streams.
struct Conn {
  asio::io_context ioc;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  bool used = false;  // has carried a request before (a stale keep-alive connection may fail)

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  void close() {
    boost::system::error_code ec;
    if (tls || plain) lowest().socket().close(ec);
  }
};

// Runs the io_context until the operation started before has completed.
void run(asio::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

std::string phase_error_text(const boost::system::error_code& ec, std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout) return "timed out after " + std::to_string(timeout.count()) + " ms";
  if (ec == bhttp::error::body_limit) return "response body over the size limit";
  if (ec == bhttp::error::header_limit) return "response header over the size limit";
  if (ec == asio::error::eof || ec == bhttp::error::end_of_stream) return "connection closed by the server";
  if (ec == asio::error::connection_reset) return "connection reset by the server";
  return ec.message();
}

bool stale_connection_error(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
}

class BeastClient final : public HttpClient {
 public:
  BeastClient(ClientOptions options, Origin origin, std::unique_ptr<ssl::context> tls_ctx)
      : opts_(std::move(options)), origin_(std::move(origin)), tls_ctx_(std::move(tls_ctx)) {
    if (opts_.max_connections == 0) opts_.max_connections = 1;
  }

  ~BeastClient() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : idle_) c->close();
  }

  Result<HttpResponse> send(const HttpRequest& request, bool* maybe_sent) override {
    if (maybe_sent) *maybe_sent = false;
    std::string what = request.method + " " + std::string(request.path());
    auto verb = bhttp::string_to_verb(request.method);
    if (verb == bhttp::verb::unknown) return invalid_argument(what + ": unknown HTTP method");
    if (request.target.empty() || request.target.front() != '/' || has_ctl(request.target))
      return invalid_argument(what + ": the target must be an origin-form path starting with '/'");
    for (const auto& [k, v] : request.headers)
      if (k.empty() || has_ctl(k) || has_ctl(v))
        return invalid_argument(what + ": header '" + (has_ctl(k) ? std::string("?") : k) +
                                "' contains control characters");

    bhttp::request<bhttp::string_body> req{verb, origin_.base_path + request.target, 11};
    req.set(bhttp::field::host, origin_.host_header);
    for (const auto& [k, v] : opts_.default_headers) req.set(k, v);
    for (const auto& [k, v] : request.headers) req.set(k, v);
    for (const auto& [k, v] : opts_.secret_headers) req.set(k, v);  // last: a request cannot override them
    req.keep_alive(true);
    req.body() = request.body;
    req.prepare_payload();

    Slot slot(*this);
    bool any_maybe_sent = false;
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Conn> conn = take_idle();
      bool reused = conn != nullptr;
      if (!conn) {
        conn = std::make_unique<Conn>();
        Status s = open(*conn, what);
        if (!s.is_ok()) {
          if (maybe_sent) *maybe_sent = any_maybe_sent;
          return s;
        }
      }
      bool sent = false, stale = false, keep = false;
      auto r = conn->tls ? exchange_on(*conn->tls, *conn, req, what, sent, stale, keep)
                         : exchange_on(*conn->plain, *conn, req, what, sent, stale, keep);
      any_maybe_sent = any_maybe_sent || sent;
      if (r.is_ok()) {
        if (maybe_sent) *maybe_sent = true;
        if (keep) give_back(std::move(conn));
        else conn->close();
        return r;
      }
      conn->close();
      // A reused keep-alive connection the server had already closed: nothing of the reply arrived,
      // so send once more on a fresh connection (what browsers and curl do too).
      if (reused && stale && attempt == 0) continue;
      if (maybe_sent) *maybe_sent = any_maybe_sent;
      return r.status();
    }
  }

  std::size_t connections_opened() const noexcept override { return opened_.load(); }

 private:
  // Counting gate for max_connections.
  struct Slot {
    explicit Slot(BeastClient& c) : client(c) {
      std::unique_lock<std::mutex> lock(c.mu_);
      c.cv_.wait(lock, [&] { return c.in_flight_ < c.opts_.max_connections; });
      ++c.in_flight_;
    }
    ~Slot() {
      {
        std::lock_guard<std::mutex> lock(client.mu_);
        --client.in_flight_;
      }
      client.cv_.notify_one();
    }
    BeastClient& client;
  };

  std::unique_ptr<Conn> take_idle() {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.empty()) return nullptr;
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }

  void give_back(std::unique_ptr<Conn> c) {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < opts_.max_connections) idle_.push_back(std::move(c));
    else c->close();
  }

  Status unavailable(const std::string& what, const char* phase, const std::string& why) const {
    return Status(Code::kUnavailable, what + ": " + phase + " (" + origin_.host_header + "): " + why);
  }

  Status open(Conn& c, const std::string& what) {
    // Resolve, bounded by a timer (getaddrinfo itself cannot be interrupted, the wait can).
    tcp::resolver resolver(c.ioc);
    asio::steady_timer timer(c.ioc);
    boost::system::error_code rec;
    tcp::resolver::results_type endpoints;
    bool timed_out = false;
    resolver.async_resolve(origin_.host, origin_.port,
                           [&](const boost::system::error_code& ec, tcp::resolver::results_type res) {
                             rec = ec;
                             endpoints = std::move(res);
                             timer.cancel();
                           });
    timer.expires_after(opts_.resolve_timeout);
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) {
        timed_out = true;
        resolver.cancel();
      }
    });
    run(c.ioc);
    if (timed_out) return unavailable(what, "resolve", "timed out after " + std::to_string(opts_.resolve_timeout.count()) + " ms");
    if (rec) return unavailable(what, "resolve", rec.message());

    if (origin_.tls) c.tls.emplace(c.ioc, *tls_ctx_);
    else c.plain.emplace(c.ioc);
    beast::tcp_stream& stream = c.lowest();
    boost::system::error_code cec;
    stream.expires_after(opts_.connect_timeout);
    stream.async_connect(endpoints, [&](const boost::system::error_code& ec, const tcp::endpoint&) { cec = ec; });
    run(c.ioc);
    if (cec) return unavailable(what, "connect", phase_error_text(cec, opts_.connect_timeout));
    opened_.fetch_add(1);
    boost::system::error_code nd;
    stream.socket().set_option(tcp::no_delay(true), nd);

    if (origin_.tls) {
      SSL* ssl_handle = c.tls->native_handle();
      if (!is_ip_literal(origin_.host) && !SSL_set_tlsext_host_name(ssl_handle, origin_.host.c_str()))
        return unavailable(what, "tls", "cannot set the server name (SNI)");
      c.tls->set_verify_mode(ssl::verify_peer);
      c.tls->set_verify_callback(ssl::host_name_verification(origin_.host));
      boost::system::error_code hec;
      stream.expires_after(opts_.connect_timeout);
      c.tls->async_handshake(ssl::stream_base::client, [&](const boost::system::error_code& ec) { hec = ec; });
      run(c.ioc);
      if (hec) {
        std::string why = phase_error_text(hec, opts_.connect_timeout);
        long vr = SSL_get_verify_result(ssl_handle);
        if (vr != X509_V_OK) why = std::string("certificate refused: ") + X509_verify_cert_error_string(vr);
        else if (hec.category() == asio::error::get_ssl_category())
          why = "handshake failed (certificate or protocol refused): " + hec.message();
        return unavailable(what, "tls", why);
      }
    }
    return Status::ok();
  }

  template <typename Stream>
  Result<HttpResponse> exchange_on(Stream& stream, Conn& c, bhttp::request<bhttp::string_body>& req,
                                   const std::string& what, bool& sent, bool& stale, bool& keep) {
    beast::tcp_stream& low = c.lowest();
    boost::system::error_code wec;
    std::size_t written = 0;
    low.expires_after(opts_.write_timeout);
    bhttp::async_write(stream, req, [&](const boost::system::error_code& ec, std::size_t n) {
      wec = ec;
      written = n;
    });
    run(c.ioc);
    if (wec) {
      sent = written > 0;
      stale = c.used && stale_connection_error(wec);
      return unavailable(what, "write", phase_error_text(wec, opts_.write_timeout));
    }
    sent = true;

    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(opts_.max_response_bytes);
    parser.header_limit(64 * 1024);
    boost::system::error_code rec;
    low.expires_after(opts_.read_timeout);
    bhttp::async_read(stream, c.buffer, parser, [&](const boost::system::error_code& ec, std::size_t) { rec = ec; });
    run(c.ioc);
    if (rec) {
      stale = c.used && !parser.got_some() && stale_connection_error(rec);
      return unavailable(what, "read", phase_error_text(rec, opts_.read_timeout));
    }
    low.expires_never();
    auto msg = parser.release();
    HttpResponse out;
    out.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    out.body = std::move(msg.body());
    keep = msg.keep_alive();
    c.used = true;
    return out;
  }

  ClientOptions opts_;
  Origin origin_;
  std::unique_ptr<ssl::context> tls_ctx_;
  std::mutex mu_;
  std::condition_variable cv_;
  unsigned in_flight_ = 0;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::atomic<std::size_t> opened_{0};
};

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::create(const ClientOptions& options) {
  CMG_ASSIGN_OR_RETURN(Origin origin, parse_base_url(options.base_url));
  if (options.follow_redirects)
    return config_error("follow_redirects: not supported (credentials are only ever sent to base_url)");
  for (const auto& [k, v] : options.secret_headers)
    if (k.empty() || has_ctl(k) || has_ctl(v))
      return config_error("secret header '" + (has_ctl(k) ? std::string("?") : k) + "': empty name or control characters");
  for (const auto& [k, v] : options.default_headers)
    if (k.empty() || has_ctl(k) || has_ctl(v))
      return config_error("default header '" + (has_ctl(k) ? std::string("?") : k) + "': empty name or control characters");
  std::unique_ptr<ssl::context> ctx;
  if (origin.tls || !options.ca_file.empty()) {
    ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    ctx->set_default_verify_paths(ec);  // a machine without a CA store can still use ca_file
    ctx->set_verify_mode(ssl::verify_peer);
    if (!options.ca_file.empty()) {
      std::ifstream probe(options.ca_file);
      if (!probe) return config_error("ca_file '" + options.ca_file + "': cannot be read");
      ctx->load_verify_file(options.ca_file, ec);
      if (ec) return config_error("ca_file '" + options.ca_file + "': not a PEM certificate file (" + ec.message() + ")");
    }
  }
  return std::unique_ptr<HttpClient>(new BeastClient(options, std::move(origin), std::move(ctx)));
}

}  // namespace cmg::net
