// For the `sandbox serve` tests: a blocking HTTP/1.1 client (one keep-alive connection to
// 127.0.0.1) and a sandbox CRM served in a dialect.
#pragma once

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "crmmigrate/sandbox/serve.hpp"

namespace serve_test {

struct Reply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool failed = false;        // no reply: reset / closed
  std::string error;

  std::string header(const std::string& name) const {
    for (const auto& h : headers)
      if (boost::beast::iequals(h.first, name)) return h.second;
    return {};
  }
  /// The body parsed once (null when it is not JSON); the reference lives as long as this Reply, so
  /// `for (auto& x : r.json().at("results").as_array())` is safe.
  const boost::json::value& json() const {
    if (!parsed_) {
      boost::system::error_code ec;
      auto v = boost::json::parse(body, ec);
      parsed_ = std::make_shared<boost::json::value>(ec ? boost::json::value() : std::move(v));
    }
    return *parsed_;
  }

 private:
  mutable std::shared_ptr<boost::json::value> parsed_;

 public:
};

/// A sandbox CRM of `preset` created in `dir` with `users`, served in `dialect` on 127.0.0.1. `opts`
/// gets `token` and `limits` unless it names its own.
struct ServedSandbox {
  std::shared_ptr<cmg::sandbox::SandboxCrm> crm;
  std::unique_ptr<cmg::net::HttpServer> server;

  ServedSandbox(const std::string& dir, const char* preset, cmg::sandbox::Dialect dialect,
                const std::vector<cmg::User>& users, cmg::sandbox::SandboxServeOptions opts, const char* token,
                cmg::Quota limits) {
    auto c = cmg::sandbox::SandboxCrm::create(dir, preset);
    REQUIRE_MESSAGE(c.is_ok(), c.status().to_string());
    crm = *c;
    for (const auto& u : users) REQUIRE(crm->set_user(u).is_ok());
    if (opts.token.empty()) opts.token = token;
    if (!opts.limits) opts.limits = limits;
    auto s = cmg::sandbox::serve_sandbox(crm, dialect, opts);
    REQUIRE_MESSAGE(s.is_ok(), s.status().to_string());
    server = std::move(s).value();
  }
};

class Client {
 public:
  explicit Client(std::uint16_t port, std::vector<std::pair<std::string, std::string>> headers = {})
      : port_(port), headers_(std::move(headers)) {}

  Reply send(const std::string& method, const std::string& target, const std::string& body = {}) {
    namespace http = boost::beast::http;
    Reply out;
    try {
      if (!socket_) connect();
      http::request<http::string_body> req{http::string_to_verb(method), target, 11};
      req.set(http::field::host, "127.0.0.1");
      for (const auto& h : headers_) req.set(h.first, h.second);
      if (!body.empty()) req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
      http::write(*socket_, req);
      http::response<http::string_body> res;
      http::read(*socket_, buffer_, res);
      out.status = static_cast<int>(res.result_int());
      for (const auto& f : res) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      out.body = res.body();
      if (!res.keep_alive()) socket_.reset();
    } catch (const std::exception& e) {
      out.failed = true;
      out.error = e.what();
      socket_.reset();
    }
    return out;
  }
  Reply get(const std::string& target) { return send("GET", target); }
  Reply post(const std::string& target, const boost::json::value& body) {
    return send("POST", target, boost::json::serialize(body));
  }
  Reply patch(const std::string& target, const boost::json::value& body) {
    return send("PATCH", target, boost::json::serialize(body));
  }

 private:
  void connect() {
    socket_ = std::make_unique<boost::asio::ip::tcp::socket>(ioc_);
    socket_->connect({boost::asio::ip::make_address("127.0.0.1"), port_});
    buffer_.clear();
  }
  boost::asio::io_context ioc_;
  std::uint16_t port_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::unique_ptr<boost::asio::ip::tcp::socket> socket_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace serve_test
