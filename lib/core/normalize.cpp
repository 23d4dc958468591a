#include "crmmigrate/core/normalize.hpp"

#include <cstdint>
#include <cstdlib>
#include <memory>

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>
#include <utf8proc.h>

namespace cmg {
namespace {

bool is_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

// White_Space code points that survive NFKC (NFKC already maps NBSP, U+2000..U+200A, U+202F,
// U+205F and U+3000 to U+0020).
bool is_space_cp(utf8proc_int32_t cp) {
  return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool is_control_cp(utf8proc_int32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// Collapses whitespace runs to one space, trims, and drops other control characters. Both the
// ASCII path and the utf8proc path end here, so they agree byte for byte on ASCII input.
void append_cp_collapsed(std::string& out, utf8proc_int32_t cp, bool& pending_space,
                         const char* bytes, std::size_t len) {
  if (is_space_cp(cp)) {
    pending_space = !out.empty();
    return;
  }
  if (is_control_cp(cp)) return;
  if (pending_space) {
    out.push_back(' ');
    pending_space = false;
  }
  out.append(bytes, len);
}

std::string ascii_normalize(std::string_view s) {
  std::string out;
  // Common case (an email, a name without spaces): visible characters only, so this is a
  // lower-casing copy; anything else takes the collapsing loop below.
  bool visible = true;
  for (char c : s) visible = visible && c > ' ' && c < 0x7F;
  if (visible) {
    out.assign(s.data(), s.size());
    for (char& c : out)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
  }
  out.reserve(s.size());
  bool pending_space = false;
  for (char ch : s) {
    char c = ch;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    append_cp_collapsed(out, static_cast<unsigned char>(c), pending_space, &c, 1);
  }
  return out;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0 || cp < 0) return false;
    p += n;
    left -= n;
  }
  return true;
}

constexpr std::string_view kEmailForbidden = "<>(),;:\\\"[]";

// Bytes an email may not contain: controls, space, DEL and kEmailForbidden (a table: this runs
// for every email of every record).
struct EmailForbiddenTable {
  bool bad[256] = {};
  constexpr EmailForbiddenTable() {
    for (int c = 0; c <= 0x20; ++c) bad[c] = true;
    bad[0x7F] = true;
    for (char c : kEmailForbidden) bad[static_cast<unsigned char>(c)] = true;
  }
};
constexpr EmailForbiddenTable kEmailBad{};

bool email_shape_ok(std::string_view e) {
  if (e.empty() || e.size() > 254) return false;
  std::size_t at = e.find('@');
  if (at == std::string_view::npos || at == 0 || e.find('@', at + 1) != std::string_view::npos)
    return false;
  for (unsigned char c : e)
    if (kEmailBad.bad[c]) return false;
  std::string_view domain = e.substr(at + 1);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.') return false;
  if (domain.find('.') == std::string_view::npos) return false;
  if (domain.find("..") != std::string_view::npos) return false;
  return true;
}

std::string_view trim_ascii_spaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool nanp_shape_ok(const char* ten_digits) { return ten_digits[0] >= '2' && ten_digits[3] >= '2'; }

bool ieq_prefix(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

// Recognises an extension suffix: marker, optional separators, 1..6 digits, optional spaces.
// Longer extensions are left to libphonenumber, whose limits depend on the marker.
bool is_extension_suffix(std::string_view s) {
  static constexpr std::string_view kMarkers[] = {"extension", "ext.", "ext", "x", "#"};
  for (std::string_view m : kMarkers) {
    if (!ieq_prefix(s, m)) continue;
    std::string_view rest = s.substr(m.size());
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '.' || rest.front() == ':'))
      rest.remove_prefix(1);
    std::size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 0 || digits > 6) return false;
    return trim_ascii_spaces(rest.substr(digits)).empty();
  }
  return false;
}

// NANP fast path. Returns false when unsure: the input then goes to libphonenumber.
bool nanp_fast(std::string_view raw, bool nanp_region, std::string& out) {
  std::string_view s = trim_ascii_spaces(raw);
  bool plus = false;
  if (!s.empty() && s.front() == '+') {
    plus = true;
    s.remove_prefix(1);
  }
  if (!plus && !nanp_region) return false;
  char digits[11];
  std::size_t n = 0;
  bool seen_digit = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      if (n == 11) return false;
      digits[n++] = c;
      seen_digit = true;
      continue;
    }
    if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/') {
      if (plus && !seen_digit) return false;
      continue;
    }
    if (seen_digit && n >= 10 && is_extension_suffix(s.substr(i))) break;
    return false;
  }
  const char* national = nullptr;
  if (n == 11 && digits[0] == '1') {
    national = digits + 1;
  } else if (n == 10 && !plus) {
    national = digits;
  } else {
    return false;
  }
  if (!nanp_shape_ok(national)) return false;
  out.assign("+1");
  out.append(national, 10);
  return true;
}

std::string upper_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

}  // namespace

std::optional<std::string> normalize_text(std::string_view text) {
  if (is_ascii(text)) return ascii_normalize(text);
  utf8proc_uint8_t* mapped = nullptr;
  utf8proc_ssize_t len = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
      static_cast<utf8proc_ssize_t>(text.size()), &mapped,
      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
                                     UTF8PROC_CASEFOLD | UTF8PROC_IGNORE));
  if (len < 0) return std::nullopt;
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  std::string out;
  out.reserve(static_cast<std::size_t>(len));
  bool pending_space = false;
  const utf8proc_uint8_t* p = mapped;
  utf8proc_ssize_t left = len;
  while (left > 0) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) return std::nullopt;
    append_cp_collapsed(out, cp, pending_space, reinterpret_cast<const char*>(p),
                        static_cast<std::size_t>(n));
    p += n;
    left -= n;
  }
  return out;
}

std::optional<std::string> normalize_email(std::string_view raw) {
  std::optional<std::string> text = normalize_text(raw);
  if (!text) return std::nullopt;
  std::string_view e = *text;
  if (e.size() >= 2 && e.front() == '<' && e.back() == '>') e = trim_ascii_spaces(e.substr(1, e.size() - 2));
  if (e.substr(0, 7) == "mailto:") e = trim_ascii_spaces(e.substr(7));
  if (!email_shape_ok(e)) return std::nullopt;
  if (e.size() == text->size()) return text;  // nothing was taken off (the usual case)
  return std::string(e);
}

bool is_valid_email(std::string_view email) { return email_shape_ok(email); }

PhoneNormalizer::PhoneNormalizer(std::string default_region, bool nanp_fast_path)
    : region_(upper_ascii(std::move(default_region))), fast_path_(nanp_fast_path) {
  nanp_region_ = region_ == "US" || region_ == "CA";
}

std::optional<std::string> PhoneNormalizer::to_e164(std::string_view raw) const {
  if (fast_path_ && is_ascii(raw)) {
    std::string out;
    if (nanp_fast(raw, nanp_region_, out)) return out;
  }
  return slow_path(raw);
}

std::optional<std::string> PhoneNormalizer::slow_path(std::string_view raw) const {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  // libphonenumber rejects longer input itself; checking first keeps garbage cheap.
  if (raw.empty() || raw.size() > 250 || !valid_utf8(raw)) return std::nullopt;
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util.Parse(std::string(raw), region_, &number) != PhoneNumberUtil::NO_PARSING_ERROR)
    return std::nullopt;
  if (util.IsPossibleNumberWithReason(number) != PhoneNumberUtil::IS_POSSIBLE) return std::nullopt;
  number.clear_extension();
  std::string out;
  util.Format(number, PhoneNumberUtil::E164, &out);
  if (number.country_code() == 1 && (out.size() != 12 || !nanp_shape_ok(out.c_str() + 2)))
    return std::nullopt;
  return out;
}

}  // namespace cmg
