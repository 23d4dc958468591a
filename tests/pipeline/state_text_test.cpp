// The state's hand-written JSON text must be the bytes json::serialize gives: stored values are
// compared and derived from one another as text (state_internal.hpp).
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include <boost/json.hpp>

#include "pipeline/state_internal.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

std::string written(const json::value& v) {
  std::string out = "prefix:";  // appended, not assigned
  state::append_json_value(out, v);
  REQUIRE(out.rfind("prefix:", 0) == 0);
  return out.substr(7);
}

}  // namespace

TEST_CASE("append_json_value writes what json::serialize writes, for every kind of value") {
  json::value cases[] = {
      nullptr,
      true,
      false,
      0,
      -1,
      std::numeric_limits<std::int64_t>::min(),
      std::numeric_limits<std::int64_t>::max(),
      std::numeric_limits<std::uint64_t>::max(),
      0.5,
      -1234.25,
      1e300,
      "",
      "plain text",
      "quote \" backslash \\ slash / tab \t newline \n nul-free control \x01 \x1f",
      "short escapes \b \f \r, DEL \x7f, then a long plain run after them: abcdefghijklmnop",
      "\"starts and ends with escapes\\",
      "exactly8",
      "seven7\"",
      "lifecyclestage = \"lead\"",
      json::string("a\0b", 3),  // an embedded NUL
      "UTF-8: Zoë Ångström — 東京",
      json::array{},
      json::object{},
      json::array{1, "two", nullptr, json::array{json::object{{"a", 1}}}},
      json::parse(R"({"firstname":"Linda","email":"l@x.com","n":12,"ok":false,"tags":["a","b"],)"
                  R"("nested":{"k":"v \"q\""},"odd key \"1\"":null,"d":3.75})"),
  };
  for (const auto& v : cases) {
    CAPTURE(json::serialize(v));
    CHECK(written(v) == json::serialize(v));
  }
  // The object overload gives the same bytes (and does not copy into a value first).
  const json::object o = cases[sizeof cases / sizeof cases[0] - 1].as_object();
  std::string out;
  state::append_json_value(out, o);
  CHECK(out == json::serialize(o));
}

TEST_CASE("append_json_string escapes as json::serialize does at every position in a string") {
  // Escapable bytes at every offset, around the eight-byte steps of the plain-run check.
  const std::string alphabet = std::string("ab\"\\\x01\x1f\x20\x7f\x80\xc3\xa9\n\t") + std::string(1, '\0');
  std::mt19937 gen(2026);
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    const std::size_t n = gen() % 41;
    for (std::size_t j = 0; j < n; ++j) s.push_back(gen() % 3 ? 'x' : alphabet[gen() % alphabet.size()]);
    std::string out;
    state::append_json_string(out, s);
    REQUIRE(out == json::serialize(json::string_view(s.data(), s.size())));
  }
}
