// The loopback HTTP server: round trip, keep-alive, limits, idle timeout, fault hooks, stop/wait.
#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "crmmigrate/net/http_server.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using cmg::net::HttpRequest;
using cmg::net::HttpResponse;
using cmg::net::HttpServer;
using cmg::net::ServerOptions;

// A blocking test client on one connection to 127.0.0.1:port.
class Conn {
 public:
  explicit Conn(std::uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  void send_raw(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  http::response<http::string_body> request(http::verb verb, const std::string& target, std::string body = {},
                                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (auto& h : headers) req.set(h.first, h.second);
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(socket_, req);
    return read();
  }
  http::response<http::string_body> read() {
    http::response<http::string_body> res;
    http::read(socket_, buffer_, res);
    return res;
  }
  beast::error_code read_error() {
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(socket_, buffer_, res, ec);
    return ec;
  }
  /// Reads raw bytes until the peer closes (or fails); returns what arrived.
  std::string read_to_close(beast::error_code& ec) {
    std::string out;
    std::array<char, 4096> buf{};
    for (;;) {
      std::size_t n = socket_.read_some(asio::buffer(buf), ec);
      out.append(buf.data(), n);
      if (ec) return out;
    }
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

std::unique_ptr<HttpServer> start(ServerOptions opts, cmg::net::Handler h) {
  auto r = HttpServer::start(opts, std::move(h));
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return std::move(r).value();
}

HttpResponse echo(const HttpRequest& req) {
  HttpResponse res;
  res.status = req.path() == "/missing" ? 404 : 200;
  res.set_header("Content-Type", "text/plain");
  res.set_header("X-Method", req.method);
  res.set_header("X-Target", req.target);
  res.set_header("X-Remote", req.remote_address);
  res.set_header("X-Token", std::string(req.header("x-api-token")));
  res.body = req.body;
  return res;
}

}  // namespace

TEST_CASE("http server answers a request with the handler's status, headers and body") {
  auto server = start(ServerOptions{}, echo);
  REQUIRE(server->port() != 0);
  Conn c(server->port());
  auto res = c.request(http::verb::post, "/crm/v3/objects/contacts?limit=5&after=x%20y", R"({"a":1})",
                       {{"X-Api-Token", "t"}});
  CHECK(res.result_int() == 200);
  CHECK(res["X-Method"] == "POST");
  CHECK(res["X-Target"] == "/crm/v3/objects/contacts?limit=5&after=x%20y");
  CHECK(res["X-Remote"] == "127.0.0.1");
  CHECK(res["X-Token"] == "t");
  CHECK(res["Content-Type"] == "text/plain");
  CHECK(res.body() == R"({"a":1})");
  auto missing = c.request(http::verb::get, "/missing");
  CHECK(missing.result_int() == 404);
  CHECK(missing.body().empty());
}

TEST_CASE("http server keeps a connection alive across requests and parses queries for the handler") {
  std::atomic<int> calls{0};
  auto server = start(ServerOptions{}, [&](const HttpRequest& req) {
    ++calls;
    HttpResponse res;
    bool found = false;
    std::string value = req.query("after", &found);
    res.body = value + (found ? "|found" : "|absent");
    return res;
  });
  Conn c(server->port());
  for (int i = 0; i < 5; ++i) {
    auto res = c.request(http::verb::get, "/p?after=a%2Bb+c&x=" + std::to_string(i));
    CHECK(res.result_int() == 200);
    CHECK(res.body() == "a+b c|found");
    CHECK(res.keep_alive());
  }
  CHECK(c.request(http::verb::get, "/p").body() == "|absent");
  CHECK(calls.load() == 6);
}

TEST_CASE("http server answers 413 for a body over max_body_bytes and closes the connection") {
  ServerOptions opts;
  opts.max_body_bytes = 1000;
  std::atomic<int> calls{0};
  auto server = start(opts, [&](const HttpRequest&) {
    ++calls;
    return HttpResponse{};
  });
  {
    Conn c(server->port());
    auto res = c.request(http::verb::post, "/x", std::string(1001, 'a'));
    CHECK(res.result_int() == 413);
    CHECK(!res.keep_alive());
    CHECK(res.body().find("1000") != std::string::npos);
  }
  {
    // Chunked: the limit applies to the decoded total as well.
    Conn c(server->port());
    std::string chunk(600, 'b');
    c.send_raw("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" + chunk + "\r\n258\r\n" +
               chunk + "\r\n0\r\n\r\n");
    CHECK(c.read().result_int() == 413);
  }
  {
    Conn c(server->port());
    CHECK(c.request(http::verb::post, "/x", std::string(1000, 'a')).result_int() == 200);
  }
  CHECK(calls.load() == 1);
}

TEST_CASE("http server answers 431 for oversized headers and 400 for a malformed request") {
  ServerOptions opts;
  opts.max_header_bytes = 2048;
  auto server = start(opts, echo);
  {
    Conn c(server->port());
    auto res = c.request(http::verb::get, "/x", {}, {{"X-Big", std::string(4000, 'h')}});
    CHECK(res.result_int() == 431);
    CHECK(!res.keep_alive());
  }
  {
    Conn c(server->port());
    c.send_raw("GARBAGE\r\n\r\n");
    CHECK(c.read().result_int() == 400);
  }
  {
    Conn c(server->port());
    c.send_raw("GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: nope\r\n\r\n");
    CHECK(c.read().result_int() == 400);
  }
}

TEST_CASE("http server answers Expect: 100-continue before the body arrives") {
  auto server = start(ServerOptions{}, echo);
  Conn c(server->port());
  c.send_raw("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  // The interim 100 must come before we send the body.
  auto cont = c.read();
  CHECK(cont.result_int() == 100);
  c.send_raw("hello");
  auto res = c.read();
  CHECK(res.result_int() == 200);
  CHECK(res.body() == "hello");
}

TEST_CASE("http server closes a keep-alive connection after the idle timeout") {
  ServerOptions opts;
  opts.idle_timeout = std::chrono::milliseconds(200);
  auto server = start(opts, echo);
  Conn c(server->port());
  CHECK(c.request(http::verb::get, "/x").result_int() == 200);
  auto t0 = std::chrono::steady_clock::now();
  beast::error_code ec;
  std::string rest = c.read_to_close(ec);
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(rest.empty());
  CHECK(ec);  // eof or reset
  CHECK(waited >= std::chrono::milliseconds(150));
  CHECK(waited < std::chrono::seconds(10));
}

TEST_CASE("http server honours delay and drop_connection from the handler") {
  ServerOptions one_thread;
  one_thread.threads = 1;  // a delay that blocked the worker would hold up every other connection
  auto server = start(one_thread, [](const HttpRequest& req) {
    HttpResponse res;
    if (req.path() == "/slow") {
      res.delay = std::chrono::milliseconds(1000);
      res.body = "late";
    } else if (req.path() == "/drop") {
      res.drop_connection = true;
    } else if (req.path() == "/close") {
      res.set_header("Connection", "close");
      res.body = "bye";
    } else if (req.path() == "/throw") {
      throw std::runtime_error("secret detail");
    }
    return res;
  });
  {
    Conn c(server->port());
    auto t0 = std::chrono::steady_clock::now();
    auto res = c.request(http::verb::get, "/slow");
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(990));
    CHECK(res.body() == "late");
    // While one connection waits, another is served at once (no worker thread is blocked).
  }
  {
    Conn slow(server->port());
    slow.send_raw("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
    Conn fast(server->port());
    auto t0 = std::chrono::steady_clock::now();
    CHECK(fast.request(http::verb::get, "/x").result_int() == 200);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(700));
    CHECK(slow.read().body() == "late");
  }
  {
    Conn c(server->port());
    c.send_raw("GET /drop HTTP/1.1\r\nHost: h\r\n\r\n");
    beast::error_code ec;
    std::string got = c.read_to_close(ec);
    CHECK(got.empty());
    CHECK(ec == asio::error::connection_reset);
  }
  {
    Conn c(server->port());
    auto res = c.request(http::verb::get, "/close");
    CHECK(res.body() == "bye");
    CHECK(!res.keep_alive());
    beast::error_code ec;
    CHECK(c.read_to_close(ec).empty());
    CHECK(ec == asio::error::eof);
  }
  {
    Conn c(server->port());
    auto res = c.request(http::verb::get, "/throw");
    CHECK(res.result_int() == 500);
    CHECK(res.body().find("secret") == std::string::npos);
  }
}

TEST_CASE("http server calls the handler concurrently from its worker threads") {
  ServerOptions opts;
  opts.threads = 4;
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<int> calls{0};
  auto server = start(opts, [&](const HttpRequest&) {
    int now = ++inside;
    int prev = max_inside.load();
    while (now > prev && !max_inside.compare_exchange_weak(prev, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    --inside;
    ++calls;
    HttpResponse res;
    res.body = "ok";
    return res;
  });
  std::vector<std::future<int>> fs;
  for (int i = 0; i < 8; ++i) {
    fs.push_back(std::async(std::launch::async, [&] {
      Conn c(server->port());
      int ok = 0;
      for (int j = 0; j < 5; ++j) ok += c.request(http::verb::get, "/x").body() == "ok";
      return ok;
    }));
  }
  int ok = 0;
  for (auto& f : fs) ok += f.get();
  CHECK(ok == 40);
  CHECK(calls.load() == 40);
  CHECK(max_inside.load() >= 2);
  CHECK(max_inside.load() <= 4);
}

TEST_CASE("http server stop closes open connections, releases wait() and is idempotent") {
  auto server = start(ServerOptions{}, echo);
  Conn c(server->port());
  CHECK(c.request(http::verb::get, "/x").result_int() == 200);
  auto waiter = std::async(std::launch::async, [&] { server->wait(); });
  CHECK(waiter.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  server->stop();
  CHECK(waiter.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  beast::error_code ec;
  CHECK(c.read_to_close(ec).empty());
  CHECK(ec);
  server->stop();
  server->wait();
}

TEST_CASE("http server start reports a taken port and a bad address") {
  auto first = start(ServerOptions{}, echo);
  ServerOptions same;
  same.port = first->port();
  // reuse_address does not allow two listeners on one port on Linux.
  auto second = HttpServer::start(same, echo);
  REQUIRE(!second.is_ok());
  CHECK(second.status().code() == cmg::Code::kUnavailable);
  CHECK(second.status().message().find(std::to_string(first->port())) != std::string::npos);
  ServerOptions bad;
  bad.bind_address = "not-an-address";
  auto third = HttpServer::start(bad, echo);
  REQUIRE(!third.is_ok());
  CHECK(third.status().code() == cmg::Code::kInvalidArgument);
  CHECK(third.status().message().find("not-an-address") != std::string::npos);
}
