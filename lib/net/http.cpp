// Shared HTTP value types (see crmmigrate/net/http.hpp).
#include "crmmigrate/net/http.hpp"

#include <cctype>

namespace cmg::net {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view header_value(const Headers& headers, std::string_view name) noexcept {
  for (const auto& h : headers) {
    if (iequals(h.first, name)) return h.second;
  }
  return {};
}

std::string_view HttpRequest::path() const noexcept {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

// Calls fn(value) for each parameter `name` of the query of `target` until fn returns false.
template <typename Fn>
void for_each_query_value(std::string_view target, std::string_view name, Fn&& fn) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    auto eq = pair.find('=');
    if (url_decode(pair.substr(0, eq)) != name) continue;
    if (!fn(eq == std::string_view::npos ? std::string{} : url_decode(pair.substr(eq + 1)))) return;
  }
}

std::string HttpRequest::query(std::string_view name, bool* found) const {
  if (found) *found = false;
  std::string out;
  for_each_query_value(target, name, [&](std::string value) {
    if (found) *found = true;
    out = std::move(value);
    return false;
  });
  return out;
}

std::vector<std::string> HttpRequest::query_all(std::string_view name) const {
  std::vector<std::string> out;
  for_each_query_value(target, name, [&](std::string value) {
    out.push_back(std::move(value));
    return true;
  });
  return out;
}

void HttpResponse::set_header(std::string name, std::string value) {
  for (auto& h : headers) {
    if (iequals(h.first, name)) {
      h.second = std::move(value);
      return;
    }
  }
  headers.emplace_back(std::move(name), std::move(value));
}

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string url_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace cmg::net
