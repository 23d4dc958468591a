// Pieces shared by the CSV and JSONL readers and writers: UTF-8 checks, block input, messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crmmigrate/core/status.hpp"

namespace cmg::files::internal {

/// Length (1–4) of the valid UTF-8 sequence starting at `p`, 0 when the `avail` bytes present are
/// a valid but incomplete prefix, -1 when invalid (overlong, surrogate, above U+10FFFF, stray
/// continuation byte). `avail` must be ≥ 1.
inline int utf8_sequence(const unsigned char* p, std::size_t avail) noexcept {
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  int len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int i = 1; i < len; ++i) {
    if (static_cast<std::size_t>(i) >= avail) return 0;
    const unsigned char b = p[i];
    if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -1;
  }
  return len;
}

/// Offset of the first byte of the first invalid (or truncated) UTF-8 sequence in [p, p+n), or
/// n when all of it is valid. ASCII is checked eight bytes at a time.
inline std::size_t utf8_invalid_offset(const char* data, std::size_t n) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  std::size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const int len = utf8_sequence(p + i, n - i);
    if (len <= 0) return i;
    i += static_cast<std::size_t>(len);
  }
  return n;
}

/// "0x41" style rendering of one byte for messages.
inline std::string byte_hex(unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string{'0', 'x', kHex[c >> 4], kHex[c & 15]};
}

/// A buffer over an input stream that keeps the unconsumed tail when refilled, so a record can
/// span any number of reads while memory stays bounded by the longest record plus one block.
class BlockInput {
 public:
  BlockInput(std::unique_ptr<std::istream> in, std::string name, std::size_t block_bytes)
      : in_(std::move(in)), name_(std::move(name)), block_bytes_(block_bytes < 64 ? 64 : block_bytes) {}

  char* data() noexcept { return buf_.data(); }
  std::size_t size() const noexcept { return size_; }
  bool eof() const noexcept { return eof_; }
  const std::string& name() const noexcept { return name_; }

  /// Drops the bytes before `keep` (they move to offset 0, so callers subtract `keep` from their
  /// offsets) and appends at least one block, or sets eof(). kIO when the stream fails.
  Status refill(std::size_t keep) {
    const std::size_t tail = size_ - keep;
    if (keep > 0 && tail > 0) std::memmove(buf_.data(), buf_.data() + keep, tail);
    size_ = tail;
    if (buf_.size() - size_ < block_bytes_) buf_.resize(size_ + block_bytes_);
    const std::size_t want = buf_.size() - size_;
    in_->read(buf_.data() + size_, static_cast<std::streamsize>(want));
    const auto got = static_cast<std::size_t>(in_->gcount());
    size_ += got;
    if (got < want) {
      if (in_->bad() || !in_->eof()) return io_error(name_ + ": read failed");
      eof_ = true;
    }
    return Status::ok();
  }

 private:
  std::unique_ptr<std::istream> in_;
  std::string name_;
  std::size_t block_bytes_;
  std::vector<char> buf_;
  std::size_t size_ = 0;
  bool eof_ = false;
};

/// Opens `path` for binary reading: kNotFound when it does not exist, kIO for other failures.
Result<std::unique_ptr<std::istream>> open_input(const std::string& path);

/// `path:line: reason` — the shape of every parse error of the files connector.
inline Status located_error(const std::string& name, std::uint64_t line, std::string_view reason) {
  std::string m;
  m.reserve(name.size() + reason.size() + 24);
  m += name;
  m += ':';
  m += std::to_string(line);
  m += ": ";
  m += reason;
  return parse_error(std::move(m));
}

/// `"text"` with quotes, backslashes and control bytes escaped, cut after `max` bytes, for
/// quoting input values in messages.
std::string quoted_excerpt(std::string_view text, std::size_t max = 60);

}  // namespace cmg::files::internal
