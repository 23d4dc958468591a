#include "crmmigrate/core/normalize.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include "core/csv_fixture.hpp"

namespace {

using cmg_test::split_csv_line;

std::vector<std::string> atomic_phones() {
  std::ifstream in(CMG_SHARED_DATA_DIR "/atomic-crm-samples/contacts.csv");
  REQUIRE(in.good());
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header = split_csv_line(line);
  std::vector<std::size_t> cols;
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == "phone_work" || header[i] == "phone_home" || header[i] == "phone_other") cols.push_back(i);
  REQUIRE(cols.size() == 3);
  std::vector<std::string> phones;
  while (std::getline(in, line)) {
    std::vector<std::string> row = split_csv_line(line);
    REQUIRE(row.size() == header.size());
    for (std::size_t c : cols)
      if (!row[c].empty()) phones.push_back(row[c]);
  }
  return phones;
}

// What plain libphonenumber says, independent of PhoneNormalizer's code.
std::optional<std::string> libphonenumber_e164(const std::string& raw) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util.Parse(raw, "US", &number) != PhoneNumberUtil::NO_PARSING_ERROR) return std::nullopt;
  if (util.IsPossibleNumberWithReason(number) != PhoneNumberUtil::IS_POSSIBLE) return std::nullopt;
  std::string out;
  util.Format(number, PhoneNumberUtil::E164, &out);
  return out;
}

}  // namespace

TEST_CASE("normalize_text folds case, applies NFKC and collapses whitespace") {
  CHECK(cmg::normalize_text("  Hello   World\t\n") == std::optional<std::string>("hello world"));
  CHECK(cmg::normalize_text("") == std::optional<std::string>(""));
  CHECK(cmg::normalize_text(" \t ") == std::optional<std::string>(""));
  CHECK(cmg::normalize_text("\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3") == std::optional<std::string>("abc"));  // fullwidth ＡＢＣ
  CHECK(cmg::normalize_text("Stra\xC3\x9F" "e") == std::optional<std::string>("strasse"));
  CHECK(cmg::normalize_text("Cafe\xCC\x81") == cmg::normalize_text("Caf\xC3\xA9"));  // decomposed é
  CHECK(cmg::normalize_text("a\xC2\xA0\xE2\x80\x83 b\xE3\x80\x80") == std::optional<std::string>("a b"));  // NBSP, em space, ideographic space
  CHECK(cmg::normalize_text("so\xC2\xAD" "ft zero\xE2\x80\x8B" "width") == std::optional<std::string>("soft zerowidth"));
  CHECK(cmg::normalize_text("a\x01" "b") == std::optional<std::string>("ab"));
}

TEST_CASE("normalize_text rejects invalid UTF-8") {
  CHECK_FALSE(cmg::normalize_text("abc\xC3").has_value());
  CHECK_FALSE(cmg::normalize_text("\xFF\xFE").has_value());
  CHECK_FALSE(cmg::normalize_text("\xED\xA0\x80").has_value());  // surrogate
}

TEST_CASE("normalize_text ASCII fast path agrees with the utf8proc path") {
  std::mt19937 rng(7);
  const std::string alphabet = "aZ09 \t\n\r\x0b\x0c\x01\x7f.-@_";
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    std::size_t len = rng() % 12;
    for (std::size_t k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
    // Appending É forces the utf8proc path; its result must be the ASCII result of s + "E" with
    // the final 'e' replaced by é.
    std::optional<std::string> fast = cmg::normalize_text(s + "E");
    std::optional<std::string> slow = cmg::normalize_text(s + "\xC3\x89");
    REQUIRE(fast.has_value());
    REQUIRE(slow.has_value());
    fast->pop_back();
    CHECK(*slow == *fast + "\xC3\xA9");
  }
}

TEST_CASE("normalize_email keeps distinct mailboxes apart and canonicalises the rest") {
  CHECK(cmg::normalize_email("  John.Doe@Example.COM ") == std::optional<std::string>("john.doe@example.com"));
  CHECK(cmg::normalize_email("<a@b.co>") == std::optional<std::string>("a@b.co"));
  CHECK(cmg::normalize_email("MAILTO:a@b.co") == std::optional<std::string>("a@b.co"));
  CHECK(cmg::normalize_email("\xC2\xA0" "a\xEF\xBC\xA0" "b.co\xE3\x80\x80") == std::optional<std::string>("a@b.co"));  // NBSP, fullwidth @
  CHECK(cmg::normalize_email("john+crm@gmail.com") == std::optional<std::string>("john+crm@gmail.com"));
  CHECK(cmg::normalize_email("j.o.h.n@gmail.com") == std::optional<std::string>("j.o.h.n@gmail.com"));
  CHECK(cmg::normalize_email("J\xC3\x9CRGEN@m\xC3\xBC" "ller.de") == std::optional<std::string>("j\xC3\xBCrgen@m\xC3\xBC" "ller.de"));
}

TEST_CASE("normalize_email returns nullopt for non-addresses") {
  for (const char* bad : {"", "   ", "n/a", "a@b", "@b.co", "a@@b.co", "a@b@c.co", "a b@c.co", "a@b .co",
                          "a@.b.co", "a@b.co.", "a@b..co", "a@b,c.co", "abc\xC3"}) {
    CAPTURE(bad);
    CHECK_FALSE(cmg::normalize_email(bad).has_value());
  }
}

TEST_CASE("is_valid_email is a pragmatic syntax check with a length limit") {
  CHECK(cmg::is_valid_email("a@b.co"));
  CHECK(cmg::is_valid_email("first.last+tag@sub.example.org"));
  CHECK_FALSE(cmg::is_valid_email(" a@b.co"));
  CHECK_FALSE(cmg::is_valid_email("a@b"));
  CHECK_FALSE(cmg::is_valid_email("a@b.co\n"));
  CHECK_FALSE(cmg::is_valid_email("<a@b.co>"));
  std::string longest = std::string(64, 'a') + "@" + std::string(185, 'b') + ".com";  // 254 bytes
  CHECK(cmg::is_valid_email(longest));
  CHECK_FALSE(cmg::is_valid_email("a" + longest));
}

TEST_CASE("to_e164 handles US formats, extensions and international numbers") {
  cmg::PhoneNormalizer phones("US");
  for (const char* raw : {"(415) 293-3313", "415.293.3313", "415-293-3313", "1-415-293-3313", "+1 415 293 3313",
                          "4152933313", "415-293-3313 x371", "415.293.3313 ext. 12", "(415) 293-3313 #99",
                          "+1 (415) 293-3313 extension 7"}) {
    CAPTURE(raw);
    CHECK(phones.to_e164(raw) == std::optional<std::string>("+14152933313"));
  }
  CHECK(phones.to_e164("+44 20 7946 0958") == std::optional<std::string>("+442079460958"));
  CHECK(phones.to_e164("011 44 20 7946 0958") == std::optional<std::string>("+442079460958"));
  CHECK(phones.to_e164("1-800-FLOWERS") == std::optional<std::string>("+18003569377"));
  for (const char* bad : {"", "n/a", "293-3313", "000-000-0000", "111-111-1111", "+1 415 293 331", "12345"}) {
    CAPTURE(bad);
    CHECK_FALSE(phones.to_e164(bad).has_value());
  }
  cmg::PhoneNormalizer uk("GB");
  CHECK(uk.to_e164("020 7946 0958") == std::optional<std::string>("+442079460958"));
  CHECK(uk.to_e164("+1 415 293 3313") == std::optional<std::string>("+14152933313"));
}

TEST_CASE("to_e164 fast path agrees with libphonenumber on every Atomic CRM phone") {
  std::vector<std::string> phones = atomic_phones();
  CHECK(phones.size() == 830);
  cmg::PhoneNormalizer fast("US");
  cmg::PhoneNormalizer slow("US", false);
  std::size_t accepted = 0;
  for (const std::string& raw : phones) {
    CAPTURE(raw);
    std::optional<std::string> a = fast.to_e164(raw);
    CHECK(a == slow.to_e164(raw));
    CHECK(a == libphonenumber_e164(raw));
    if (a) ++accepted;
  }
  CHECK(accepted == phones.size());
}

TEST_CASE("to_e164 fast path agrees with libphonenumber on generated numbers") {
  std::mt19937 rng(42);
  cmg::PhoneNormalizer fast("US");
  cmg::PhoneNormalizer slow("US", false);
  const char* shapes[] = {"AAA-EEE-NNNN", "(AAA) EEE-NNNN", "AAA.EEE.NNNN", "1-AAA-EEE-NNNN", "+1 AAA EEE NNNN",
                          "+1AAAEEENNNN", "AAAEEENNNN", "1 (AAA) EEE NNNN", "AAA/EEE-NNNN", "(AAA)EEE-NNNN",
                          " AAA EEE NNNN ", "+1-AAA-EEE-NNNN", "AAA-EEE-NNNN x", "AAA - EEE - NNNN", "1AAAEEENNNN"};
  const char* extensions[] = {"", " x1", " x371", " x12345", " ext 9", " ext. 44", " extension 5", " #7", "x22",
                              " x1234567", " x", " ext"};
  std::size_t fast_hits = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = shapes[rng() % std::size(shapes)];
    for (char& c : s) {
      // Any digit, so invalid NANP shapes (area code or exchange starting with 0/1) occur too.
      if (c == 'A' || c == 'E' || c == 'N') c = static_cast<char>('0' + rng() % 10);
    }
    s += extensions[rng() % std::size(extensions)];
    CAPTURE(s);
    std::optional<std::string> a = fast.to_e164(s);
    std::optional<std::string> b = slow.to_e164(s);
    CHECK(a == b);
    if (a) {
      CHECK(a == libphonenumber_e164(s));
      ++fast_hits;
    }
  }
  CHECK(fast_hits > 10000);
}

TEST_CASE("to_e164 rejects invalid UTF-8 and over-long input without crashing") {
  cmg::PhoneNormalizer phones("US");
  CHECK_FALSE(phones.to_e164("415\xFF" "2933313").has_value());
  CHECK_FALSE(phones.to_e164(std::string(300, '4')).has_value());
}
