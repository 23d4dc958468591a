#include "crmmigrate/core/time.hpp"

#include <cstdio>

namespace cmg {
namespace {

constexpr std::int64_t kMsPerDay = 86'400'000;

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, exact for all years).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at `pos`.
bool read_digits(std::string_view s, std::size_t& pos, std::size_t n, unsigned& out) noexcept {
  if (pos + n > s.size()) return false;
  unsigned v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  pos += n;
  out = v;
  return true;
}

unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// Reads up to three fraction digits as milliseconds and skips the rest.
std::int64_t read_fraction_ms(std::string_view s, std::size_t& pos) noexcept {
  std::int64_t ms = 0;
  int n = 0;
  for (; pos < s.size() && is_digit(s[pos]); ++pos, ++n) {
    if (n < 3) ms = ms * 10 + (s[pos] - '0');
  }
  for (; n < 3; ++n) ms *= 10;
  return ms;
}

std::optional<std::int64_t> parse_unix(std::string_view s) noexcept {
  std::size_t pos = 0;
  const bool negative = s[0] == '-' || s[0] == '+' ? s[pos++] == '-' : false;
  const std::size_t int_begin = pos;
  std::int64_t v = 0;
  for (; pos < s.size() && is_digit(s[pos]); ++pos) {
    if (pos - int_begin == 18) return std::nullopt;  // a 19th digit could overflow v
    v = v * 10 + (s[pos] - '0');
  }
  const std::size_t int_digits = pos - int_begin;
  if (int_digits == 0) return std::nullopt;
  std::int64_t ms = 0;
  if (int_digits <= 11) {
    ms = v * 1000;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      const std::size_t frac_begin = pos;
      ms += read_fraction_ms(s, pos);
      if (pos == frac_begin) return std::nullopt;
    }
  } else {
    ms = v;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      const std::size_t frac_begin = pos;
      while (pos < s.size() && is_digit(s[pos])) ++pos;
      if (pos == frac_begin) return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  return negative ? -ms : ms;
}

}  // namespace

std::optional<std::int64_t> parse_timestamp_ms(std::string_view s) noexcept {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  if (s.size() < 5 || s[4] != '-') return parse_unix(s);

  std::size_t pos = 0;
  unsigned year = 0, month = 0, day = 0;
  if (!read_digits(s, pos, 4, year) || s[pos++] != '-' || !read_digits(s, pos, 2, month) ||
      pos >= s.size() || s[pos++] != '-' || !read_digits(s, pos, 2, day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) return std::nullopt;
  std::int64_t ms = days_from_civil(year, month, day) * kMsPerDay;
  if (pos == s.size()) return ms;

  if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') return std::nullopt;
  ++pos;
  unsigned hour = 0, minute = 0, second = 0;
  if (!read_digits(s, pos, 2, hour) || pos >= s.size() || s[pos++] != ':' ||
      !read_digits(s, pos, 2, minute)) {
    return std::nullopt;
  }
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    if (!read_digits(s, pos, 2, second)) return std::nullopt;
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      ++pos;
      const std::size_t frac_begin = pos;
      ms += read_fraction_ms(s, pos);
      if (pos == frac_begin) return std::nullopt;
    }
  }
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  ms += (static_cast<std::int64_t>(hour) * 3600 + minute * 60 + second) * 1000;
  if (pos == s.size()) return ms;

  if (s[pos] == ' ') ++pos;
  if (pos == s.size()) return std::nullopt;
  if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) return ms;
  if (s[pos] != '+' && s[pos] != '-') return std::nullopt;
  const bool east = s[pos++] == '+';
  unsigned zh = 0, zm = 0;
  if (!read_digits(s, pos, 2, zh)) return std::nullopt;
  if (pos < s.size()) {
    if (s[pos] == ':') ++pos;
    if (!read_digits(s, pos, 2, zm) || pos != s.size()) return std::nullopt;
  }
  if (zh > 23 || zm > 59) return std::nullopt;
  const std::int64_t offset_ms = (static_cast<std::int64_t>(zh) * 60 + zm) * 60'000;
  return east ? ms - offset_ms : ms + offset_ms;
}

std::string format_timestamp_ms(std::int64_t ms) {
  std::int64_t days = ms / kMsPerDay;
  std::int64_t rem = ms % kMsPerDay;
  if (rem < 0) {
    rem += kMsPerDay;
    --days;
  }
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  const auto secs = static_cast<unsigned>(rem / 1000);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", static_cast<long long>(y), m, d,
                secs / 3600, secs / 60 % 60, secs % 60, static_cast<unsigned>(rem % 1000));
  return buf;
}

}  // namespace cmg
