// Pieces shared by the CSV and JSONL readers and writers (UTF-8 checks, block input, batching,
// messages) and by the options parsers of the files source and destination.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/connectors/files.hpp"
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

/// Whether `d` can separate CSV fields: any ASCII byte but '"', CR, LF and NUL.
inline bool delimiter_is_valid(char d) noexcept {
  const auto c = static_cast<unsigned char>(d);
  return c != '"' && c != '\r' && c != '\n' && c != '\0' && c < 0x80;
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
  /// True once refill() has been called.
  bool started() const noexcept { return started_; }

  /// Length of the UTF-8 byte-order mark the buffer starts with (3), or 0. Right after the first
  /// refill() the buffer starts at the beginning of the input: that is where a reader skips it.
  std::size_t bom_bytes() const noexcept {
    return size_ >= 3 && std::memcmp(buf_.data(), "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  }

  /// Drops the bytes before `keep` (they move to offset 0, so callers subtract `keep` from their
  /// offsets) and appends at least one block, or sets eof(). kIO when the stream fails.
  Status refill(std::size_t keep) {
    started_ = true;
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
  bool started_ = false;
};

/// Opens `path` for binary reading: kNotFound when it does not exist, kIO for other failures.
Result<std::unique_ptr<std::istream>> open_input(const std::string& path);

/// `Reader::open_stream` over the file at `path`, which names it in messages (CsvReader::open,
/// JsonlReader::open).
template <typename Reader, typename Options>
Result<Reader> open_file(const std::string& path, const Options& options) {
  CMG_ASSIGN_OR_RETURN(auto in, open_input(path));
  return Reader::open_stream(std::move(in), path, options);
}

/// Keeps every record (the default filter of fill_batch).
struct KeepAll {
  bool operator()(const Record&) const noexcept { return true; }
};

/// Fills `out` with up to `batch_size` records from `reader.next_record(Record&)`, reusing the
/// elements `out` already has; records `keep` rejects are read over. Returns false, with `out`
/// empty, at the end of the input.
template <typename Reader, typename Keep = KeepAll>
Result<bool> fill_batch(Reader& reader, RecordBatch& out, std::size_t batch_size, Keep keep = {}) {
  std::size_t n = 0;
  while (n < batch_size) {
    if (out.size() <= n) out.emplace_back();
    CMG_ASSIGN_OR_RETURN(bool got, reader.next_record(out[n]));
    if (!got) break;
    if (keep(out[n])) ++n;
  }
  out.resize(n);
  return n > 0;
}

/// kIO `<writer>: the output stream failed` when `out` has failed, else OK.
inline Status stream_status(const std::ostream& out, const char* writer) {
  if (!out) return io_error(std::string(writer) + ": the output stream failed");
  return Status::ok();
}

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

// --- options from JSON -----------------------------------------------------------------------

/// JSON path of member `key` of the value at `parent`: `parent.key` for a plain key, else
/// `parent["key"]` with the key as a JSON string.
std::string member_path(std::string_view parent, std::string_view key);

/// Levenshtein distance between `a` and `b` (bytes).
std::size_t edit_distance(std::string_view a, std::string_view b);

/// kConfig naming the first key of `obj` (at JSON path `path`) that is not in `allowed`, with a
/// "did you mean" hint for a near miss or else the list of allowed keys.
Status check_keys(const boost::json::object& obj, std::string_view path,
                  std::initializer_list<std::string_view> allowed);

/// Walks the `options` of a files source or destination: `v` (at `json_path`, "$" when empty)
/// must be an object whose only key, "objects", holds a non-empty object. Calls
/// `each(name, value, value_path)` for its members in order and stops at the first error.
Status for_each_object(
    const boost::json::value& v, std::string_view json_path,
    const std::function<Status(std::string_view name, const boost::json::value& value, const std::string& path)>& each);

/// Where an object's file is and how it is read.
struct FileSpec {
  std::string path;                     ///< `file` resolved against the base directory, normalised
  FileFormat format = FileFormat::kCsv; ///< from "format", or else from the file name's extension
  char delimiter = ',';                 ///< a tab for a ".tsv" CSV file
};

/// The FileSpec of `file` (the "path" member of the object at `json_path`), given its "format"
/// member when present. kConfig for an unknown format or an extension that does not tell.
Result<FileSpec> file_spec(const std::string& file, std::optional<std::string_view> format,
                           const std::string& json_path, const std::string& base_dir);

}  // namespace cmg::files::internal
