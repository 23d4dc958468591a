// HttpClient against the loopback HttpServer (plain HTTP) and a small TLS acceptor with a
// certificate generated at test time: keep-alive reuse, bounded concurrency, timeouts, size cap,
// redirects not followed, secrets absent from errors, certificate and host-name verification.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crmmigrate/net/http_client.hpp"
#include "crmmigrate/net/http_server.hpp"
#include "test_util.hpp"

namespace {

using cmg::net::ClientOptions;
using cmg::net::HttpClient;
using cmg::net::HttpRequest;
using cmg::net::HttpResponse;
using cmg::net::HttpServer;

constexpr const char* kSecret = "s3cr3t-token-value";

std::unique_ptr<HttpServer> serve(cmg::net::Handler h, unsigned threads = 4) {
  cmg::net::ServerOptions so;
  so.threads = threads;
  auto s = HttpServer::start(so, std::move(h));
  REQUIRE(s.is_ok());
  return std::move(*s);
}

ClientOptions options_for(std::uint16_t port) {
  ClientOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.secret_headers = {{"Authorization", std::string("Bearer ") + kSecret}};
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.read_timeout = std::chrono::milliseconds(5000);
  return o;
}

std::unique_ptr<HttpClient> client(const ClientOptions& o) {
  auto c = HttpClient::create(o);
  REQUIRE(c.is_ok());
  return std::move(*c);
}

HttpRequest get(std::string target) {
  HttpRequest r;
  r.target = std::move(target);
  return r;
}

}  // namespace

TEST_CASE("http client: keep-alive connections are reused and the secret header is sent") {
  std::atomic<int> authorised{0};
  auto server = serve([&](const HttpRequest& req) {
    HttpResponse r;
    if (req.header("authorization") == std::string("Bearer ") + kSecret) ++authorised;
    r.body = "echo " + std::string(req.path()) + " " + req.query("q") + " " + req.body;
    r.set_header("Content-Type", "text/plain");
    return r;
  });
  auto c = client(options_for(server->port()));
  for (int i = 0; i < 20; ++i) {
    HttpRequest req = get("/things?q=" + std::to_string(i));
    req.method = i % 2 ? "POST" : "GET";
    req.body = i % 2 ? "payload" : "";
    bool maybe_sent = false;
    auto r = c->send(req, &maybe_sent);
    REQUIRE(r.is_ok());
    CHECK(r->status == 200);
    CHECK(r->body == "echo /things " + std::to_string(i) + (i % 2 ? " payload" : " "));
    CHECK(maybe_sent);
    CHECK(r->header("Authorization").empty());
  }
  CHECK(c->connections_opened() == 1);
  CHECK(authorised == 20);
}

TEST_CASE("http client: at most max_connections requests in flight") {
  std::atomic<int> in_flight{0}, worst{0};
  auto server = serve([&](const HttpRequest&) {
    int now = ++in_flight;
    int w = worst.load();
    while (now > w && !worst.compare_exchange_weak(w, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    --in_flight;
    return HttpResponse{};
  }, 6);
  auto o = options_for(server->port());
  o.max_connections = 2;
  auto c = client(o);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 5; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 6; ++i)
        if (c->send(get("/x")).is_ok()) ++ok;
    });
  for (auto& t : threads) t.join();
  CHECK(ok == 30);
  CHECK(worst <= 2);
  CHECK(worst >= 1);
  CHECK(c->connections_opened() <= 2);
}

TEST_CASE("http client: read timeout, size cap, refused connection; no secret in any error") {
  auto server = serve([&](const HttpRequest& req) {
    HttpResponse r;
    if (req.path() == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(600));
    if (req.path() == "/big") r.body.assign(300000, 'x');
    return r;
  });
  auto o = options_for(server->port());
  o.read_timeout = std::chrono::milliseconds(150);
  o.max_response_bytes = 100000;
  auto c = client(o);

  bool maybe_sent = false;
  auto slow = c->send(get("/slow?token=abc"), &maybe_sent);
  REQUIRE_FALSE(slow.is_ok());
  CHECK(slow.status().code() == cmg::Code::kUnavailable);
  CHECK(slow.status().message().find("read") != std::string::npos);
  CHECK(slow.status().message().find("timed out") != std::string::npos);
  CHECK(slow.status().message().find("GET /slow") != std::string::npos);
  CHECK(slow.status().message().find("abc") == std::string::npos);  // the query is not echoed
  CHECK(maybe_sent);

  auto big = c->send(get("/big"));
  REQUIRE_FALSE(big.is_ok());
  CHECK(big.status().code() == cmg::Code::kUnavailable);
  CHECK(big.status().message().find("size limit") != std::string::npos);

  // The connection after a failure is fresh and works.
  auto fine = c->send(get("/fine"));
  REQUIRE(fine.is_ok());
  CHECK(fine->status == 200);

  std::uint16_t dead_port = 0;
  {
    auto s2 = serve([](const HttpRequest&) { return HttpResponse{}; });
    dead_port = s2->port();
    s2->stop();
  }
  auto dead = client(options_for(dead_port));
  maybe_sent = true;
  auto refused = dead->send(get("/x"), &maybe_sent);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().code() == cmg::Code::kUnavailable);
  CHECK(refused.status().message().find("connect") != std::string::npos);
  CHECK_FALSE(maybe_sent);

  for (const auto* s : {&slow.status(), &big.status(), &refused.status()}) {
    CHECK(s->message().find(kSecret) == std::string::npos);
    CHECK(s->message().find("Bearer") == std::string::npos);
  }
}

TEST_CASE("http client: 3xx is returned, never followed; bad options refused") {
  std::atomic<int> hits{0};
  auto server = serve([&](const HttpRequest& req) {
    ++hits;
    HttpResponse r;
    if (req.path() == "/moved") {
      r.status = 302;
      r.set_header("Location", "http://127.0.0.1:1/elsewhere");
    }
    return r;
  });
  auto c = client(options_for(server->port()));
  auto r = c->send(get("/moved"));
  REQUIRE(r.is_ok());
  CHECK(r->status == 302);
  CHECK(r->header("location") == "http://127.0.0.1:1/elsewhere");
  CHECK(hits == 1);

  ClientOptions bad;
  bad.base_url = "ftp://example.com";
  CHECK(HttpClient::create(bad).status().code() == cmg::Code::kConfig);
  bad.base_url = "http://user:pw@127.0.0.1:1";
  CHECK(HttpClient::create(bad).status().message().find("pw") == std::string::npos);
  bad.base_url = "http://127.0.0.1:99999";
  CHECK(HttpClient::create(bad).status().code() == cmg::Code::kConfig);
  bad.base_url = "https://127.0.0.1:1";
  bad.ca_file = "/nonexistent/ca.pem";
  CHECK(HttpClient::create(bad).status().code() == cmg::Code::kConfig);
  bad.ca_file.clear();
  bad.follow_redirects = true;
  CHECK(HttpClient::create(bad).status().code() == cmg::Code::kConfig);
  // Header injection is refused without echoing the value.
  HttpRequest inj = get("/x");
  inj.headers.emplace_back("X-Evil", "a\r\nInjected: 1");
  auto ri = c->send(inj);
  CHECK(ri.status().code() == cmg::Code::kInvalidArgument);
  CHECK(ri.status().message().find("Injected") == std::string::npos);
}

// ---- TLS ----

namespace {

struct KeyAndCert {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~KeyAndCert() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

// A self-signed certificate whose subjectAltName is `san` ("IP:127.0.0.1", "DNS:wrong.example").
void make_cert(KeyAndCert& kc, const std::string& san) {
  kc.key = EVP_EC_gen("P-256");
  REQUIRE(kc.key != nullptr);
  kc.cert = X509_new();
  X509_set_version(kc.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(kc.cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(kc.cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(kc.cert), 3600);
  X509_set_pubkey(kc.cert, kc.key);
  X509_NAME* name = X509_get_subject_name(kc.cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("cmg test"), -1, -1, 0);
  X509_set_issuer_name(kc.cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, kc.cert, kc.cert, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair<int, std::string>{NID_subject_alt_name, san},
                            std::pair<int, std::string>{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    REQUIRE(ext != nullptr);
    X509_add_ext(kc.cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  REQUIRE(X509_sign(kc.cert, kc.key, EVP_sha256()) > 0);
}

void write_pem(const KeyAndCert& kc, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  PEM_write_X509(f, kc.cert);
  std::fclose(f);
}

// Accepts `connections` TLS connections on 127.0.0.1 and answers each request with 200 "tls ok".
class TlsServer {
 public:
  TlsServer(const KeyAndCert& kc, int connections)
      : ctx_(boost::asio::ssl::context::tls_server), acceptor_(ioc_) {
    SSL_CTX_use_certificate(ctx_.native_handle(), kc.cert);
    SSL_CTX_use_PrivateKey(ctx_.native_handle(), kc.key);
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, connections] {
      namespace http = boost::beast::http;
      for (int i = 0; i < connections; ++i) {
        boost::system::error_code ec;
        boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream(ioc_, ctx_);
        acceptor_.accept(stream.next_layer(), ec);
        if (ec || stop_) return;
        stream.handshake(boost::asio::ssl::stream_base::server, ec);
        if (ec) {
          ++refused_;
          continue;
        }
        boost::beast::flat_buffer buf;
        http::request<http::string_body> req;
        http::read(stream, buf, req, ec);
        if (ec) continue;
        http::response<http::string_body> res{http::status::ok, 11};
        res.body() = "tls ok";
        res.keep_alive(false);
        res.prepare_payload();
        http::write(stream, res, ec);
        stream.shutdown(ec);
      }
    });
  }
  // A failed test may leave the thread waiting in accept(): wake it with a plain connection.
  ~TlsServer() {
    stop_ = true;
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  int refused() const { return refused_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ssl::context ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<int> refused_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("http client: TLS refused without ca_file, accepted with it, refused on a name mismatch") {
  TempDir dir;
  KeyAndCert good, wrong_name;
  make_cert(good, "IP:127.0.0.1");
  make_cert(wrong_name, "DNS:wrong.example");
  write_pem(good, dir.sub("good.pem"));
  write_pem(wrong_name, dir.sub("wrong.pem"));

  {
    TlsServer server(good, 2);
    ClientOptions o = options_for(server.port());
    o.base_url = "https://127.0.0.1:" + std::to_string(server.port());
    auto untrusted = client(o)->send(get("/"));
    REQUIRE_FALSE(untrusted.is_ok());
    CHECK(untrusted.status().code() == cmg::Code::kUnavailable);
    CHECK(untrusted.status().message().find("tls") != std::string::npos);
    CHECK(untrusted.status().message().find(kSecret) == std::string::npos);

    o.ca_file = dir.sub("good.pem");
    auto trusted = client(o)->send(get("/"));
    REQUIRE(trusted.is_ok());
    CHECK(trusted->status == 200);
    CHECK(trusted->body == "tls ok");
  }
  {
    TlsServer server(wrong_name, 1);
    ClientOptions o = options_for(server.port());
    o.base_url = "https://127.0.0.1:" + std::to_string(server.port());
    o.ca_file = dir.sub("wrong.pem");  // trusted, but issued for another name
    auto mismatch = client(o)->send(get("/"));
    REQUIRE_FALSE(mismatch.is_ok());
    CHECK(mismatch.status().code() == cmg::Code::kUnavailable);
    CHECK(mismatch.status().message().find("tls") != std::string::npos);
  }
}
