// Timestamps as CRMs and their exports write them, converted to and from Unix milliseconds (UTC).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cmg {

/// Parses `text` into Unix milliseconds (UTC). Surrounding ASCII whitespace is ignored.
///
/// Accepted forms:
/// - ISO 8601 date: "2024-08-13" (midnight UTC);
/// - ISO 8601 date-time with 'T' or one space between date and time, minutes required, seconds
///   and a fraction ('.' or ',', any number of digits, truncated to milliseconds) optional, and an
///   optional zone "Z", "+HH:MM", "+HHMM" or "+HH" (optionally after one space); no zone means UTC:
///   "2024-08-13T18:04:34.666+00:00", "2024-08-13 18:04:34", "2024-08-13T18:04Z";
/// - Unix time as an optionally signed decimal number: an integer part with at most 11 digits is
///   seconds (a fraction adds milliseconds), longer is milliseconds: "1723572274",
///   "1723572274.666", "1723572274666". A digit-only string is always Unix time, never a compact
///   ISO date ("20240813" is 20,240,813 seconds).
///
/// Returns nullopt for empty text, anything else, and invalid values (month 13, 31 April, hour
/// 24, leap seconds, zone offsets beyond ±23:59, numbers beyond 18 digits).
/// Thread-safe; allocates nothing.
std::optional<std::int64_t> parse_timestamp_ms(std::string_view text) noexcept;

/// Formats Unix milliseconds as ISO 8601 UTC with exactly three fraction digits:
/// 1723572274666 → "2024-08-13T18:04:34.666Z". Negative values are before 1970 and round towards
/// the past. Years outside 0000–9999 are written with as many digits as needed (and a '-' sign
/// before year 0), which parse_timestamp_ms does not read back. Thread-safe.
std::string format_timestamp_ms(std::int64_t ms);

}  // namespace cmg
