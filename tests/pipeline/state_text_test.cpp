// The state's hand-written JSON text must be the bytes json::serialize gives: stored values are
// compared and derived from one another as text (state_internal.hpp).
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
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
