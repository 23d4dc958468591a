// Normalisation of the values dedup keys are built from: free text, email addresses and phone
// numbers. Two values that identify the same thing normalise to the same bytes; values that may
// identify different things (plus-addressed or dotted Gmail mailboxes, phone extensions aside) are
// kept apart, because a false merge is worse than a missed one.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cmg {

/// Normalises free text for comparison: Unicode NFKC with case folding (utf8proc), default-ignorable
/// code points (soft hyphen, zero-width space) and control characters removed, every run of
/// whitespace (ASCII and Unicode, incl. NBSP and line/paragraph separators) collapsed to one ASCII
/// space, leading/trailing whitespace removed. Input that is all ASCII never calls utf8proc.
///
/// Returns the normalised UTF-8 text (possibly empty), or std::nullopt when `text` is not valid
/// UTF-8. The result is owned by the caller. Thread-safe (no shared state).
std::optional<std::string> normalize_text(std::string_view text);

/// Normalises an email address for use as a dedup key. Steps: trim (ASCII and Unicode spaces),
/// NFKC + case fold (normalize_text), remove one "mailto:" prefix (any case) and one pair of
/// surrounding angle brackets ("<a@b.com>"), then check the shape: exactly one '@', a non-empty
/// local part, a domain that contains a '.', does not start or end with '.', has no empty label
/// ("a..b"), and no whitespace or control characters anywhere.
///
/// Deliberately NOT done: removing "+tag" sub-addresses or dots in Gmail local parts — those may be
/// different mailboxes, and merging different people is worse than missing a duplicate.
///
/// Returns the normalised address, or std::nullopt when the input is not an email address (blank,
/// invalid UTF-8, wrong shape). The result is owned by the caller. Thread-safe.
std::optional<std::string> normalize_email(std::string_view raw);

/// Pragmatic syntax check used by validation: `email` as given (no trimming, no normalisation) has
/// the shape local@domain.tld — exactly one '@', non-empty local part, a dotted domain without
/// empty labels, no whitespace or control characters — and is at most 254 bytes long.
/// Returns true when the check passes. Thread-safe.
bool is_valid_email(std::string_view email);

/// Converts phone numbers to E.164 ("+14155550123") for use as a dedup key.
///
/// Acceptance rule (the same on both paths below): the number parses with the default region,
/// libphonenumber deems it *possible* (IsPossibleNumberWithReason() == IS_POSSIBLE: the length fits
/// the country; a local-only number without area code is rejected), and, for country code 1, the
/// NANP shape holds (area code and exchange both start with 2–9). IsValidNumber() is deliberately
/// not used: validity depends on the metadata version (area codes are assigned over time) and on
/// test data full of unassigned area codes, while identity only needs a stable canonical form.
/// The NANP shape check removes placeholders such as "000-000-0000" and "111-111-1111".
/// Extensions (" x371", " ext. 12", "#12") are dropped: they are not part of the identity.
///
/// Fast path: when the default region is a NANP region ("US" or "CA") — or whatever the region,
/// when the input starts with "+1" — plain ASCII inputs made of digits, the formatting characters
/// space ( ) - . / and an optional trailing extension ("x", "ext", "ext.", "extension", "#" followed
/// by digits) are converted without libphonenumber when they hold 10 digits, or 11 digits starting
/// with 1. Every other input goes through libphonenumber (Parse + IsPossibleNumberWithReason +
/// Format(E164)), which costs several microseconds.
///
/// Thread-safety: a PhoneNormalizer is immutable after construction; to_e164() may be called from
/// several threads at once (libphonenumber's PhoneNumberUtil singleton is thread-safe).
/// A pluggable normaliser for a dedup key (DESIGN §3): turns a field value into the form compared
/// for equality, or nullopt when the value cannot serve as a key. Implementations must be pure
/// (same input, same output) and thread-safe.
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::optional<std::string> normalize(std::string_view value) const = 0;
};

class PhoneNormalizer {
 public:
  /// `default_region`: ISO 3166-1 alpha-2 region used for numbers written without "+" and a
  /// country code. `nanp_fast_path`: false forces every input through libphonenumber (used to
  /// check that both paths agree, and by the benchmark).
  explicit PhoneNormalizer(std::string default_region = "US", bool nanp_fast_path = true);

  /// Returns the E.164 form of `raw`, or std::nullopt when `raw` is not an acceptable phone
  /// number (blank, not parseable, impossible length, non-NANP shape for +1). Result owned by the
  /// caller. Thread-safe.
  std::optional<std::string> to_e164(std::string_view raw) const;

  /// The default region, upper-cased (borrowed; valid for the object's lifetime).
  const std::string& default_region() const noexcept { return region_; }

 private:
  std::optional<std::string> slow_path(std::string_view raw) const;

  std::string region_;
  bool nanp_region_ = false;
  bool fast_path_ = true;
};

}  // namespace cmg
