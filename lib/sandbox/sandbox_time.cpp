// UTC calendar arithmetic and the timestamp texts the sandbox presets read and write.
#include <cstdio>

#include "sandbox/sandbox_internal.hpp"

namespace cmg::sandbox::internal {

namespace {

// Howard Hinnant's civil_from_days (days since 1970-01-01 → y/m/d), proleptic Gregorian.
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
}

struct Civil {
  std::int64_t y;
  unsigned mo, d, h, mi, s, ms;
};

Civil split(std::int64_t ms) noexcept {
  std::int64_t days = ms / 86400000;
  std::int64_t rem = ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    --days;
  }
  Civil c{};
  civil_from_days(days, c.y, c.mo, c.d);
  c.h = static_cast<unsigned>(rem / 3600000);
  c.mi = static_cast<unsigned>(rem / 60000 % 60);
  c.s = static_cast<unsigned>(rem / 1000 % 60);
  c.ms = static_cast<unsigned>(rem % 1000);
  return c;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  pos += n;
  out = v;
  return true;
}

unsigned days_in_month(int y, int m) {
  static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

bool parse_date_part(std::string_view s, std::size_t& pos, int& y, int& mo, int& d) {
  return digits(s, pos, 4, y) && pos < s.size() && s[pos++] == '-' && digits(s, pos, 2, mo) && pos < s.size() &&
         s[pos++] == '-' && digits(s, pos, 2, d) && mo >= 1 && mo <= 12 && d >= 1 &&
         static_cast<unsigned>(d) <= days_in_month(y, mo);
}

}  // namespace

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::int64_t civil_to_ms(int y, int mo, int d, int h, int mi, int s) noexcept {
  return (days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 + mi * 60 + s) *
         1000;
}

std::string format_pipedrive_time(std::int64_t ms) {
  Civil c = split(ms);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02u:%02u:%02u", static_cast<long long>(c.y), c.mo, c.d, c.h,
                c.mi, c.s);
  return buf;
}

std::string format_date(std::int64_t ms) {
  Civil c = split(ms);
  char buf[24];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(c.y), c.mo, c.d);
  return buf;
}

bool is_valid_date(std::string_view s) noexcept {
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0;
  return s.size() == 10 && parse_date_part(s, pos, y, mo, d);
}

}  // namespace cmg::sandbox::internal
