#include <cmath>
#include <cstring>

#include "connectors/files/files_internal.hpp"
#include "crmmigrate/connectors/files.hpp"
#include "crmmigrate/core/time.hpp"

namespace cmg::files {

using internal::BlockInput;
using internal::located_error;

namespace {

const char* json_kind(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_: return "a number";
    case boost::json::kind::string: return "a string";
    case boost::json::kind::array: return "an array";
    case boost::json::kind::object: return "an object";
  }
  return "a value";
}

bool is_blank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t') return false;
  }
  return true;
}

// Same rule as parse_timestamp_ms for numbers: below 1e11 is seconds, else milliseconds (< 1e18).
constexpr std::int64_t kUnixSecondsLimit = 100'000'000'000;
constexpr std::int64_t kUnixMsLimit = 1'000'000'000'000'000'000;

std::optional<std::int64_t> unix_number_ms(double v) {
  if (!std::isfinite(v) || std::fabs(v) >= 1e18) return std::nullopt;
  return static_cast<std::int64_t>(std::fabs(v) < 1e11 ? std::floor(v * 1000.0) : std::floor(v));
}

// Numbers we refuse rather than change: Boost.JSON reads a number beyond the range of a double as an
// infinity (1e999) or a NaN (0e999), which it then writes as `Infinity` or `NaN`, which no JSON reader
// takes back; and an integer beyond 64 bits (an ID such as 123456789012345678901) as a double that
// has already lost its last digits. Any whole double of magnitude >= 2^63 is treated as the latter
// (a float that large is not CRM data). Returns the JSON path of the first such number in `v`, or ""
// when there is none.
bool number_unrepresentable(double d) { return !std::isfinite(d) || (std::fabs(d) >= 9.2233720368547758e18 && std::floor(d) == d); }

std::string infinite_number_path(const boost::json::value& v, const std::string& path) {
  if (const auto* d = v.if_double()) return number_unrepresentable(*d) ? path : std::string();
  if (const auto* o = v.if_object()) {
    for (const auto& kv : *o) {
      const std::string_view key(kv.key().data(), kv.key().size());
      if (kv.value().is_double() || kv.value().is_structured()) {
        std::string found = infinite_number_path(kv.value(), internal::member_path(path, key));
        if (!found.empty()) return found;
      }
    }
  } else if (const auto* a = v.if_array()) {
    for (std::size_t i = 0; i < a->size(); ++i) {
      if (!(*a)[i].is_double() && !(*a)[i].is_structured()) continue;
      std::string found = infinite_number_path((*a)[i], path + "[" + std::to_string(i) + "]");
      if (!found.empty()) return found;
    }
  }
  return {};
}

}  // namespace

struct JsonlReader::Impl {
  Impl(std::unique_ptr<std::istream> in, std::string name, const JsonlOptions& options)
      : input(std::move(in), std::move(name), options.block_bytes),
        opts(options),
        parser(boost::json::storage_ptr(), make_parse_options(options)) {}

  static boost::json::parse_options make_parse_options(const JsonlOptions& o) {
    boost::json::parse_options p;
    p.max_depth = o.max_depth;
    return p;
  }

  const std::string& name() const { return input.name(); }

  Status fail(std::uint64_t at_line, std::string reason) {
    return error = located_error(name(), at_line, reason);
  }

  Status fail_line_too_long(std::uint64_t at_line) {
    return fail(at_line, "line is longer than the maximum of " + std::to_string(opts.max_line_bytes) + " bytes");
  }

  // Finds the next line: [begin, end) without its LF; false at the end of the input.
  Result<bool> next_line(std::size_t& begin, std::size_t& end) {
    for (;;) {
      if (!input.started()) {
        CMG_RETURN_IF_ERROR(refill());
        continue;
      }
      const char* d = input.data();
      const std::size_t size = input.size();
      const void* nl = scanned < size ? std::memchr(d + scanned, '\n', size - scanned) : nullptr;
      if (nl != nullptr) {
        begin = pos;
        end = static_cast<std::size_t>(static_cast<const char*>(nl) - d);
        pos = scanned = end + 1;
        return true;
      }
      if (size - pos > opts.max_line_bytes) return fail_line_too_long(line + 1);
      if (input.eof()) {
        if (pos == size) return false;
        begin = pos;
        end = pos = scanned = size;
        return true;
      }
      scanned = size;
      CMG_RETURN_IF_ERROR(refill());
    }
  }

  Status refill() {
    const bool first = !input.started();
    const std::size_t keep = pos;
    Status st = input.refill(keep);
    if (!st.is_ok()) return error = std::move(st);
    pos -= keep;
    scanned -= keep;
    if (first) pos = scanned = input.bom_bytes();
    return Status::ok();
  }

  Result<bool> next_object(boost::json::object& out) {
    if (!error.is_ok()) return error;
    for (;;) {
      std::size_t begin = 0, end = 0;
      CMG_ASSIGN_OR_RETURN(bool got, next_line(begin, end));
      if (!got) return false;
      ++line;
      std::string_view text(input.data() + begin, end - begin);
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      if (text.size() > opts.max_line_bytes) return fail_line_too_long(line);
      if (is_blank(text)) continue;
      const std::size_t bad = internal::utf8_invalid_offset(text.data(), text.size());
      if (bad != text.size()) {
        return fail(line, "invalid UTF-8 byte " + internal::byte_hex(static_cast<unsigned char>(text[bad])) +
                              " at column " + std::to_string(bad + 1));
      }
      boost::system::error_code ec;
      parser.reset();
      const std::size_t consumed = parser.write(text.data(), text.size(), ec);
      if (ec) {
        const std::string column = std::to_string(consumed + 1);
        if (ec == boost::json::error::too_deep) {
          return fail(line, "JSON nested deeper than " + std::to_string(opts.max_depth) + " levels at column " + column);
        }
        return fail(line, "invalid JSON at column " + column + ": " + ec.message());
      }
      boost::json::value v = parser.release();
      if (!v.is_object()) return fail(line, std::string("expected a JSON object, got ") + json_kind(v));
      if (std::string at = infinite_number_path(v, "$"); !at.empty()) {
        return fail(line, "number out of range at " + at +
                              ": beyond a double, or an integer beyond 64 bits that would lose digits (quote it as a string)");
      }
      out = std::move(v.get_object());
      returned_line = line;
      return true;
    }
  }

  BlockInput input;
  JsonlOptions opts;
  boost::json::parser parser;
  Status error;  // sticky: once set, every call returns it
  std::size_t pos = 0;      // start of the next line
  std::size_t scanned = 0;  // bytes from here on have not been searched for LF yet
  std::uint64_t line = 0;   // lines consumed so far
  std::uint64_t returned_line = 0;
};

JsonlReader::JsonlReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonlReader::JsonlReader(JsonlReader&&) noexcept = default;
JsonlReader& JsonlReader::operator=(JsonlReader&&) noexcept = default;
JsonlReader::~JsonlReader() = default;

Result<JsonlReader> JsonlReader::open(const std::string& path, const JsonlOptions& options) {
  return internal::open_file<JsonlReader>(path, options);
}

Result<JsonlReader> JsonlReader::open_stream(std::unique_ptr<std::istream> in, std::string name,
                                             const JsonlOptions& options) {
  if (options.max_line_bytes == 0 || options.max_depth == 0 || options.block_bytes == 0) {
    return invalid_argument(name + ": JSONL limits and block size must be positive");
  }
  if (!in) return invalid_argument(name + ": no input stream");
  return JsonlReader(std::make_unique<Impl>(std::move(in), std::move(name), options));
}

const std::string& JsonlReader::name() const noexcept { return impl_->name(); }
std::uint64_t JsonlReader::line() const noexcept { return impl_->returned_line; }
Result<bool> JsonlReader::next_object(boost::json::object& out) { return impl_->next_object(out); }

// --- JsonlRecordReader -----------------------------------------------------------------------

Result<std::unique_ptr<JsonlRecordReader>> JsonlRecordReader::make(JsonlReader reader, JsonlRecordOptions options,
                                                                   std::size_t batch_size) {
  if (batch_size == 0) return invalid_argument(reader.name() + ": batch size must be positive");
  std::unique_ptr<JsonlRecordReader> r(new JsonlRecordReader(std::move(reader)));
  r->options_ = std::move(options);
  r->batch_size_ = batch_size;
  return r;
}

Result<std::unique_ptr<JsonlRecordReader>> JsonlRecordReader::open(const std::string& path, const JsonlOptions& jsonl,
                                                                   JsonlRecordOptions options, std::size_t batch_size) {
  CMG_ASSIGN_OR_RETURN(auto reader, JsonlReader::open(path, jsonl));
  return make(std::move(reader), std::move(options), batch_size);
}

Result<bool> JsonlRecordReader::next_record(Record& out) {
  CMG_ASSIGN_OR_RETURN(bool got, reader_.next_object(out.fields));
  if (!got) return false;
  auto fail = [&](std::string reason) { return located_error(reader_.name(), reader_.line(), reason); };

  const boost::json::value* id = out.fields.if_contains(options_.id_key);
  if (id == nullptr) return fail("missing id key \"" + options_.id_key + "\"");
  if (const auto* s = id->if_string()) {
    if (s->empty()) return fail("empty id in key \"" + options_.id_key + "\"");
    out.id.assign(s->data(), s->size());
  } else if (id->is_int64()) {
    out.id = std::to_string(id->get_int64());
  } else if (id->is_uint64()) {
    out.id = std::to_string(id->get_uint64());
  } else {
    return fail("id key \"" + options_.id_key + "\" must be a string or an integer, got " + json_kind(*id));
  }

  out.object.assign(options_.object);
  out.updated_at = 0;
  if (!options_.updated_at_key.empty()) {
    if (const boost::json::value* u = out.fields.if_contains(options_.updated_at_key); u && !u->is_null()) {
      std::optional<std::int64_t> ts;
      if (const auto* s = u->if_string()) {
        ts = s->empty() ? std::optional<std::int64_t>(0) : parse_timestamp_ms(std::string_view(s->data(), s->size()));
      } else if (u->is_int64()) {
        const std::int64_t n = u->get_int64();
        if (n > -kUnixSecondsLimit && n < kUnixSecondsLimit) {
          ts = n * 1000;
        } else if (n > -kUnixMsLimit && n < kUnixMsLimit) {
          ts = n;
        }
      } else if (u->is_double()) {
        ts = unix_number_ms(u->get_double());
      }
      if (!ts) {
        return fail("cannot parse updated_at key \"" + options_.updated_at_key + "\" (" + json_kind(*u) +
                    " " + internal::quoted_excerpt(boost::json::serialize(*u)) + ") as a timestamp");
      }
      out.updated_at = *ts;
    }
  }

  if (!options_.fields.empty()) {
    boost::json::object kept;
    for (auto& kv : out.fields) {
      for (const auto& f : options_.fields) {
        if (kv.key() == f) {
          kept.emplace(kv.key(), std::move(kv.value()));
          break;
        }
      }
    }
    out.fields = std::move(kept);
  }
  return true;
}

Result<bool> JsonlRecordReader::next(RecordBatch& out) { return internal::fill_batch(*this, out, batch_size_); }

// --- JsonlWriter -----------------------------------------------------------------------------

Status JsonlWriter::write(const boost::json::value& v) {
  serializer_.reset(&v);
  char buf[4096];
  while (!serializer_.done()) {
    const auto chunk = serializer_.read(buf, sizeof buf);
    out_->write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  }
  out_->put('\n');
  CMG_RETURN_IF_ERROR(internal::stream_status(*out_, "JSONL writer"));
  ++lines_;
  return Status::ok();
}

Status JsonlWriter::flush() {
  out_->flush();
  return internal::stream_status(*out_, "JSONL writer");
}

}  // namespace cmg::files
