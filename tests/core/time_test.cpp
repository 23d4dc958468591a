#include <doctest/doctest.h>

#include "crmmigrate/core/time.hpp"

using cmg::format_timestamp_ms;
using cmg::parse_timestamp_ms;

TEST_CASE("ISO 8601 timestamps with zones and fractions parse to Unix milliseconds") {
  CHECK(parse_timestamp_ms("2024-08-13T18:04:34.666+00:00") == 1723572274666);
  CHECK(parse_timestamp_ms("2024-08-13T18:04:34.666Z") == 1723572274666);
  CHECK(parse_timestamp_ms("2024-08-13T20:04:34.666+02:00") == 1723572274666);
  CHECK(parse_timestamp_ms("2024-08-13T13:34:34.666-0430") == 1723572274666);
  CHECK(parse_timestamp_ms("2024-08-13T19:04:34.666+01") == 1723572274666);
  CHECK(parse_timestamp_ms("2024-08-14T11:37:45.65+00:00") == 1723635465650);
  CHECK(parse_timestamp_ms("2024-08-13T18:04:34.6669999Z") == 1723572274666);
  CHECK(parse_timestamp_ms("2024-08-13T18:04:34,5Z") == 1723572274500);
  CHECK(parse_timestamp_ms("2024-08-13 18:04:34 +00:00") == 1723572274000);
}

TEST_CASE("timestamps without a zone, seconds or time are UTC") {
  CHECK(parse_timestamp_ms("2024-08-13 18:04:34") == 1723572274000);
  CHECK(parse_timestamp_ms("2024-08-13T18:04") == 1723572240000);
  CHECK(parse_timestamp_ms("2024-08-13") == 1723507200000);
  CHECK(parse_timestamp_ms("  2024-08-13\n") == 1723507200000);
  CHECK(parse_timestamp_ms("1970-01-01") == 0);
  CHECK(parse_timestamp_ms("1969-12-31T23:59:59.999Z") == -1);
  CHECK(parse_timestamp_ms("2000-02-29") == 951782400000);
}

TEST_CASE("Unix seconds and milliseconds are told apart by size") {
  CHECK(parse_timestamp_ms("1723572274") == 1723572274000);
  CHECK(parse_timestamp_ms("1723572274.666") == 1723572274666);
  CHECK(parse_timestamp_ms("1723572274666") == 1723572274666);
  CHECK(parse_timestamp_ms("0") == 0);
  CHECK(parse_timestamp_ms("-86400") == -86400000);
  CHECK(parse_timestamp_ms("99999999999") == 99999999999000);
  CHECK(parse_timestamp_ms("100000000000") == 100000000000);
}

TEST_CASE("malformed or impossible timestamps are rejected") {
  for (const char* bad : {"", "   ", "yesterday", "2024-13-01", "2024-02-30", "2023-02-29", "2024-08-13T24:00",
                          "2024-08-13T18:60", "2024-08-13T18:04:60", "2024-08-13T18:04:34.", "2024-08-13T18",
                          "2024-08-13X18:04", "2024-8-13", "2024-08-13T18:04:34+24:00", "2024-08-13T18:04:34+0",
                          "2024-08-13T18:04:34Zjunk", "12.", "1e9", "--1",
                          "1234567890123456789", "0x10", "2024/08/13"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_timestamp_ms(bad).has_value());
  }
}

TEST_CASE("format_timestamp_ms writes ISO 8601 UTC with milliseconds that parse back") {
  CHECK(format_timestamp_ms(1723572274666) == "2024-08-13T18:04:34.666Z");
  CHECK(format_timestamp_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_timestamp_ms(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(format_timestamp_ms(951782400000) == "2000-02-29T00:00:00.000Z");
  for (std::int64_t ms : {std::int64_t{-62135596800000}, std::int64_t{-1}, std::int64_t{0}, std::int64_t{1723572274666},
                          std::int64_t{253402300799999}}) {
    CAPTURE(ms);
    CHECK(parse_timestamp_ms(format_timestamp_ms(ms)) == ms);
  }
}
