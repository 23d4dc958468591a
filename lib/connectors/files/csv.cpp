#include <array>
#include <cstring>
#include <unordered_map>

#include "connectors/files/files_internal.hpp"
#include "crmmigrate/connectors/files.hpp"
#include "crmmigrate/core/time.hpp"

namespace cmg::files {

using internal::BlockInput;
using internal::delimiter_is_valid;
using internal::located_error;

namespace {

enum class State : unsigned char { kRowStart, kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted };
enum class Step : unsigned char { kRow, kEnd, kNeedData, kError };

// Bounds the memory a hostile header (or an over-long ragged row) can make us hold for offsets.
constexpr std::size_t kMaxColumns = 65536;

std::string printable_byte(unsigned char c) {
  if (c >= 0x20 && c < 0x7F) return std::string{'\'', static_cast<char>(c), '\''};
  return "byte " + internal::byte_hex(c);
}

}  // namespace

struct CsvReader::Impl {
  Impl(std::unique_ptr<std::istream> in, std::string name, const CsvOptions& options)
      : input(std::move(in), std::move(name), options.block_bytes), opts(options) {
    const auto d = static_cast<unsigned char>(options.delimiter);
    for (unsigned c = 0; c < 256; ++c) {
      const bool common = c == '"' || c == '\r' || c == '\n' || c == 0 || c >= 0x80;
      unquoted_special[c] = common || c == d;
      quoted_special[c] = common;
    }
  }

  const std::string& name() const { return input.name(); }

  // "at column C" on the record's first line, "at line L, column C" on a later one.
  std::string where(std::uint64_t at_line, std::size_t column) const {
    std::string s = "at ";
    if (at_line != row_line) s += "line " + std::to_string(at_line) + ", ";
    return s + "column " + std::to_string(column);
  }
  std::size_t column_of(std::size_t offset) const { return offset - line_start + 1; }

  Step fail(std::string reason) {
    error = located_error(name(), row_line, reason);
    return Step::kError;
  }

  Step fail_field_too_long(std::size_t begin_column, std::uint64_t begin_line) {
    std::string reason = "field " + std::to_string(nfields + 1);
    if (nfields < header.size()) reason += " (\"" + header[nfields] + "\")";
    reason += " is longer than the maximum of " + std::to_string(opts.max_field_bytes) + " bytes (starts " +
              where(begin_line, begin_column) + ")";
    return fail(std::move(reason));
  }

  Step fail_utf8(const unsigned char* b, std::size_t p) {
    return fail("invalid UTF-8 byte " + internal::byte_hex(b[p]) + " " + where(line, column_of(p)));
  }

  Step fail_nul(std::size_t p) { return fail("NUL byte " + where(line, column_of(p))); }

  Step fail_record_too_long() {
    return fail("record is longer than the maximum of " + std::to_string(opts.max_record_bytes) + " bytes");
  }

  void push_field(std::size_t begin, std::size_t end) {
    if (nfields < max_stored) {
      bounds.push_back(begin);
      bounds.push_back(end);
    }
    ++nfields;
  }

  // Consumes the record terminator at `p` (a lone CR may be followed by the LF of a CRLF).
  void end_line(const unsigned char* b, std::size_t& p) {
    skip_lf = b[p] == '\r';
    ++p;
    ++line;
    line_start = p;
  }

  // The buffer ends at `p`: scanning resumes there after a refill.
  Step need_data(std::size_t p) {
    pos = p;
    return Step::kNeedData;
  }

  // At the delimiter or record terminator `b[p]` that closes the field [field_begin, end): stores
  // the field (none for a blank line, which holds no record) and moves past it. True when that
  // completes a record; scanning then resumes at `pos`.
  bool end_field(const unsigned char* b, std::size_t& p, std::size_t end) {
    if (b[p] == static_cast<unsigned char>(opts.delimiter)) {
      push_field(field_begin, end);
      ++p;
      state = State::kFieldStart;
      return false;
    }
    const bool blank = p == row_start;
    if (!blank) push_field(field_begin, end);
    end_line(b, p);
    state = State::kRowStart;
    if (blank) return false;
    pos = p;
    return true;
  }

  // Length of the UTF-8 sequence at the non-ASCII or NUL byte `b[p]`, or 0 when scanning stops
  // there: `stop` is then kNeedData (a sequence cut by the end of the buffer, more may come) or
  // kError.
  std::size_t sequence_at(const unsigned char* b, std::size_t p, std::size_t e, Step& stop) {
    if (b[p] == 0) {
      stop = fail_nul(p);
      return 0;
    }
    const int n = internal::utf8_sequence(b + p, e - p);
    if (n == 0 && !input.eof()) {
      stop = need_data(p);
      return 0;
    }
    if (n <= 0) {
      stop = fail_utf8(b, p);
      return 0;
    }
    return static_cast<std::size_t>(n);
  }

  // Parses from `pos` until a record is complete, the buffer is exhausted, or an error. Resumable:
  // every piece of state lives in members so a record can straddle any number of refills.
  Step scan() {
    auto* b = reinterpret_cast<unsigned char*>(input.data());
    const std::size_t e = input.size();
    const auto delim = static_cast<unsigned char>(opts.delimiter);
    std::size_t p = pos;
    for (;;) {
      switch (state) {
        case State::kRowStart:
          if (skip_lf) {
            if (p == e) return need_data(p);
            if (b[p] == '\n') line_start = ++p;
            skip_lf = false;
          }
          row_start = p;
          row_line = line;
          nfields = 0;
          bounds.clear();
          state = State::kFieldStart;
          [[fallthrough]];
        case State::kFieldStart:
          if (p == e) return need_data(p);
          if (b[p] == '"') {
            quote_line = line;
            quote_column = column_of(p);
            field_begin = write = ++p;
            state = State::kQuoted;
            continue;
          }
          field_begin = p;
          state = State::kUnquoted;
          [[fallthrough]];
        case State::kUnquoted: {
          while (p < e && !unquoted_special[b[p]]) ++p;
          if (p - field_begin > opts.max_field_bytes) return fail_field_too_long(column_of(field_begin), line);
          if (p == e) return need_data(p);
          const unsigned char c = b[p];
          if (c == delim || c == '\n' || c == '\r') {
            if (end_field(b, p, p)) return Step::kRow;
            continue;
          }
          if (c == '"') return fail("quote inside an unquoted field " + where(line, column_of(p)));
          Step stop = Step::kError;
          const std::size_t n = sequence_at(b, p, e, stop);
          if (n == 0) return stop;
          p += n;
          continue;
        }
        case State::kQuoted: {
          const std::size_t run = p;
          while (p < e && !quoted_special[b[p]]) ++p;
          // Unescaping happens in place: `write` never passes `p`, so unread bytes stay intact.
          if (write != run) std::memmove(b + write, b + run, p - run);
          write += p - run;
          if (write - field_begin > opts.max_field_bytes) return fail_field_too_long(quote_column, quote_line);
          if (p == e) return need_data(p);
          const unsigned char c = b[p];
          if (c == '"') {
            ++p;
            state = State::kQuoteInQuoted;
            continue;
          }
          if (c == '\n' || c == '\r') {
            // A CRLF counts as one line. b[p - 1] is the raw previous byte: in-place writes land
            // below p and at p - 1 only copy that byte onto itself; refills keep this field.
            if (c == '\r' || b[p - 1] != '\r') ++line;
            b[write++] = c;
            line_start = ++p;
            continue;
          }
          Step stop = Step::kError;
          const std::size_t n = sequence_at(b, p, e, stop);
          if (n == 0) return stop;
          if (write != p) std::memmove(b + write, b + p, n);
          write += n;
          p += n;
          continue;
        }
        case State::kQuoteInQuoted: {
          if (p == e) return need_data(p);
          const unsigned char c = b[p];
          if (c == '"') {
            b[write++] = '"';
            ++p;
            state = State::kQuoted;
            continue;
          }
          if (c == delim || c == '\n' || c == '\r') {
            if (end_field(b, p, write)) return Step::kRow;
            continue;
          }
          if (c == 0) return fail_nul(p);
          return fail("unexpected " + printable_byte(c) + " after a closing quote " + where(line, column_of(p)));
        }
      }
    }
  }

  // The input ended while scanning: completes the last record, if any.
  Step finish() {
    const std::size_t p = pos;
    switch (state) {
      case State::kRowStart:
        return Step::kEnd;
      case State::kFieldStart:
        if (p == row_start) return Step::kEnd;
        push_field(p, p);
        break;
      case State::kUnquoted:
        push_field(field_begin, p);
        break;
      case State::kQuoted:
        return fail("unterminated quoted field: end of file inside the quotes opened " +
                    where(quote_line, quote_column));
      case State::kQuoteInQuoted:
        push_field(field_begin, write);
        break;
    }
    state = State::kRowStart;
    return Step::kRow;
  }

  Step refill() {
    const bool first = !input.started();
    const bool at_row_start = state == State::kRowStart;
    const std::size_t keep = at_row_start ? pos : row_start;
    if (!at_row_start && input.size() - keep > opts.max_record_bytes) return fail_record_too_long();
    Status st = input.refill(keep);
    if (!st.is_ok()) {
      error = std::move(st);
      return Step::kError;
    }
    pos -= keep;
    line_start -= keep;
    if (!at_row_start) {
      row_start -= keep;
      field_begin -= keep;
      write -= keep;
      for (auto& offset : bounds) offset -= keep;
    }
    if (first) pos = line_start = input.bom_bytes();
    return Step::kNeedData;
  }

  Step read_record() {
    if (!error.is_ok()) return Step::kError;
    for (;;) {
      if (input.started()) {
        Step s = scan();
        if (s == Step::kNeedData && input.eof()) s = finish();
        if (s == Step::kRow && pos - row_start > opts.max_record_bytes) return fail_record_too_long();
        if (s != Step::kNeedData) return s;
      }
      if (refill() == Step::kError) return Step::kError;
    }
  }

  Status read_header() {
    const Step s = read_record();
    if (s == Step::kError) return error;
    if (s == Step::kEnd) return error = located_error(name(), 1, "no header row (the file is empty)");
    if (nfields > kMaxColumns) {
      return error = located_error(name(), row_line, "header has more than " + std::to_string(kMaxColumns) + " columns");
    }
    const char* d = input.data();
    std::unordered_map<std::string_view, std::size_t> seen;
    header.reserve(nfields);
    for (std::size_t i = 0; i < nfields; ++i) {
      header.emplace_back(d + bounds[2 * i], bounds[2 * i + 1] - bounds[2 * i]);
    }
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (header[i].empty()) {
        return error = located_error(name(), row_line, "empty column name in header (column " + std::to_string(i + 1) + ")");
      }
      auto [it, inserted] = seen.emplace(header[i], i);
      if (!inserted) {
        return error = located_error(name(), row_line,
                                     "duplicate column name \"" + header[i] + "\" in header (columns " +
                                         std::to_string(it->second + 1) + " and " + std::to_string(i + 1) + ")");
      }
    }
    max_stored = header.size();
    return Status::ok();
  }

  BlockInput input;
  CsvOptions opts;
  bool unquoted_special[256];
  bool quoted_special[256];
  std::vector<std::string> header;
  Status error;  // sticky: once set, every call returns it

  std::size_t pos = 0;
  State state = State::kRowStart;
  bool skip_lf = false;
  std::size_t row_start = 0;
  std::uint64_t row_line = 1;
  std::uint64_t line = 1;
  std::size_t line_start = 0;
  std::size_t field_begin = 0;
  std::size_t write = 0;
  std::uint64_t quote_line = 0;
  std::size_t quote_column = 0;
  std::vector<std::size_t> bounds;  // begin, end offset of each stored field of the record
  std::size_t nfields = 0;
  std::size_t max_stored = kMaxColumns;
  std::uint64_t returned_line = 1;
};

CsvReader::CsvReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CsvReader::CsvReader(CsvReader&&) noexcept = default;
CsvReader& CsvReader::operator=(CsvReader&&) noexcept = default;
CsvReader::~CsvReader() = default;

Result<CsvReader> CsvReader::open(const std::string& path, const CsvOptions& options) {
  return internal::open_file<CsvReader>(path, options);
}

Result<CsvReader> CsvReader::open_stream(std::unique_ptr<std::istream> in, std::string name,
                                         const CsvOptions& options) {
  if (!delimiter_is_valid(options.delimiter)) {
    return invalid_argument(name + ": the CSV delimiter cannot be " +
                            internal::byte_hex(static_cast<unsigned char>(options.delimiter)) +
                            " (a quote, CR, LF, NUL or non-ASCII byte)");
  }
  if (options.max_field_bytes == 0 || options.max_record_bytes == 0 || options.block_bytes == 0) {
    return invalid_argument(name + ": CSV limits and block size must be positive");
  }
  if (!in) return invalid_argument(name + ": no input stream");
  auto impl = std::make_unique<Impl>(std::move(in), std::move(name), options);
  CMG_RETURN_IF_ERROR(impl->read_header());
  return CsvReader(std::move(impl));
}

const std::vector<std::string>& CsvReader::header() const noexcept { return impl_->header; }
const std::string& CsvReader::name() const noexcept { return impl_->name(); }
std::uint64_t CsvReader::row_line() const noexcept { return impl_->returned_line; }

Result<bool> CsvReader::next_row(std::vector<std::string_view>& fields) {
  Impl& m = *impl_;
  const Step s = m.read_record();
  if (s == Step::kError) return m.error;
  if (s == Step::kEnd) return false;
  const std::size_t n = m.header.size();
  if (m.nfields != n) {
    return m.error = located_error(m.name(), m.row_line,
                                   "ragged row: " + std::to_string(m.nfields) + " fields, header has " + std::to_string(n));
  }
  const char* d = m.input.data();
  fields.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    fields[i] = std::string_view(d + m.bounds[2 * i], m.bounds[2 * i + 1] - m.bounds[2 * i]);
  }
  m.returned_line = m.row_line;
  return true;
}

Result<std::uint64_t> CsvReader::count_rows() {
  Impl& m = *impl_;
  if (!m.error.is_ok()) return m.error;
  // Only a quote, CR and LF change where a record ends; a CRLF is a CR ending the record and an
  // LF ending a blank one, which counts for nothing. `any`: the current record has a byte.
  static const auto boundary = [] {
    std::array<bool, 256> t{};
    t['"'] = t['\r'] = t['\n'] = true;
    return t;
  }();
  std::uint64_t rows = 0;
  bool quoted = m.state == State::kQuoted, any = m.state != State::kRowStart;
  std::size_t p = m.pos;
  for (;;) {
    const auto* b = reinterpret_cast<const unsigned char*>(m.input.data());
    const std::size_t e = m.input.size();
    while (p < e) {
      if (quoted) {
        const void* q = std::memchr(b + p, '"', e - p);
        if (!q) {
          p = e;
          break;
        }
        // A doubled quote closes and reopens: the next byte is the quote that reopens.
        p = static_cast<std::size_t>(static_cast<const unsigned char*>(q) - b) + 1;
        quoted = false;
        continue;
      }
      const std::size_t start = p;
      while (p < e && !boundary[b[p]]) ++p;
      if (p > start) any = true;
      if (p == e) break;
      if (b[p] == '"') {
        quoted = any = true;
      } else {
        if (any) ++rows;
        any = false;
      }
      ++p;
    }
    if (m.input.eof()) break;
    Status st = m.input.refill(e);
    if (!st.is_ok()) return m.error = std::move(st);
    p = 0;
  }
  if (any) ++rows;
  m.pos = m.input.size();
  m.state = State::kRowStart;
  return rows;
}

// --- CsvRecordReader -------------------------------------------------------------------------

Result<std::unique_ptr<CsvRecordReader>> CsvRecordReader::make(CsvReader reader, CsvRecordOptions options,
                                                               std::size_t batch_size) {
  if (batch_size == 0) return invalid_argument(reader.name() + ": batch size must be positive");
  std::unique_ptr<CsvRecordReader> r(new CsvRecordReader(std::move(reader)));
  const CsvReader& csv = r->reader_;
  const auto& header = csv.header();
  auto find = [&](const std::string& column, const char* role) -> Result<std::size_t> {
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (header[i] == column) return i;
    }
    return invalid_argument(csv.name() + ":1: " + role + " column \"" + column + "\" is not in the header");
  };
  CMG_ASSIGN_OR_RETURN(r->id_index_, find(options.id_column, "id"));
  if (!options.updated_at_column.empty()) {
    CMG_ASSIGN_OR_RETURN(r->updated_at_index_, find(options.updated_at_column, "updated_at"));
  }
  if (options.fields.empty()) {
    for (std::size_t i = 0; i < header.size(); ++i) r->columns_.push_back(i);
  } else {
    for (const auto& f : options.fields) {
      CMG_ASSIGN_OR_RETURN(std::size_t i, find(f, "field"));
      r->columns_.push_back(i);
    }
  }
  for (std::size_t i : r->columns_) r->names_.emplace_back(header[i]);
  r->options_ = std::move(options);
  r->batch_size_ = batch_size;
  return r;
}

Result<std::unique_ptr<CsvRecordReader>> CsvRecordReader::open(const std::string& path, const CsvOptions& csv,
                                                               CsvRecordOptions options, std::size_t batch_size) {
  CMG_ASSIGN_OR_RETURN(auto reader, CsvReader::open(path, csv));
  return make(std::move(reader), std::move(options), batch_size);
}

Result<bool> CsvRecordReader::next_record(Record& out) {
  CMG_ASSIGN_OR_RETURN(bool got, reader_.next_row(row_));
  if (!got) return false;
  const std::string_view id = row_[id_index_];
  if (id.empty()) {
    return located_error(reader_.name(), reader_.row_line(), "empty id in column \"" + options_.id_column + "\"");
  }
  out.object.assign(options_.object);
  out.id.assign(id.data(), id.size());
  out.updated_at = 0;
  if (updated_at_index_ != SIZE_MAX && !row_[updated_at_index_].empty()) {
    const auto ts = parse_timestamp_ms(row_[updated_at_index_]);
    if (!ts) {
      return located_error(reader_.name(), reader_.row_line(),
                           "cannot parse updated_at " + internal::quoted_excerpt(row_[updated_at_index_]) +
                               " in column \"" + options_.updated_at_column + "\" as a timestamp");
    }
    out.updated_at = *ts;
  }

  auto& fields = out.fields;
  bool same_keys = fields.size() == columns_.size();
  if (same_keys) {
    std::size_t i = 0;
    for (const auto& kv : fields) {
      if (kv.key() != names_[i++]) {
        same_keys = false;
        break;
      }
    }
  }
  if (same_keys) {
    std::size_t i = 0;
    for (auto& kv : fields) {
      const std::string_view cell = row_[columns_[i++]];
      boost::json::value& v = kv.value();
      if (cell.empty()) {
        v.emplace_null();
      } else if (auto* s = v.if_string()) {
        s->assign(cell.data(), cell.size());
      } else {
        v.emplace_string().assign(cell.data(), cell.size());
      }
    }
  } else {
    fields.clear();
    fields.reserve(columns_.size());
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      const std::string_view cell = row_[columns_[i]];
      if (cell.empty()) {
        fields.emplace(names_[i], nullptr);
      } else {
        fields.emplace(names_[i], boost::json::string_view(cell.data(), cell.size()));
      }
    }
  }
  return true;
}

Result<bool> CsvRecordReader::next(RecordBatch& out) { return internal::fill_batch(*this, out, batch_size_); }

// --- CsvWriter -------------------------------------------------------------------------------

CsvWriter::CsvWriter(std::ostream& out, CsvWriteOptions options) : out_(&out), options_(options) {}

Status CsvWriter::write_row(const std::vector<std::string_view>& fields) {
  return write_fields(fields.data(), fields.size());
}

Status CsvWriter::write_row(std::initializer_list<std::string_view> fields) {
  return write_fields(fields.begin(), fields.size());
}

Status CsvWriter::write_row(const std::vector<std::string>& fields) {
  std::vector<std::string_view> views(fields.begin(), fields.end());
  return write_fields(views.data(), views.size());
}

Status CsvWriter::write_fields(const std::string_view* fields, std::size_t n) {
  if (!delimiter_is_valid(options_.delimiter)) {
    return invalid_argument("CSV writer: the delimiter cannot be " +
                            internal::byte_hex(static_cast<unsigned char>(options_.delimiter)));
  }
  const char delim = options_.delimiter;
  line_.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const std::string_view f = fields[i];
    auto field_error = [&](const char* what) {
      return invalid_argument("CSV writer: row " + std::to_string(rows_ + 1) + ", field " + std::to_string(i + 1) +
                              " " + what);
    };
    if (!f.empty() && std::memchr(f.data(), 0, f.size()) != nullptr) return field_error("contains a NUL byte");
    if (internal::utf8_invalid_offset(f.data(), f.size()) != f.size()) return field_error("is not valid UTF-8");
    bool quote = (n == 1 && f.empty()) ||
                 (!f.empty() && (f.front() == ' ' || f.front() == '\t' || f.back() == ' ' || f.back() == '\t'));
    for (std::size_t k = 0; !quote && k < f.size(); ++k) {
      const char c = f[k];
      quote = c == delim || c == '"' || c == '\r' || c == '\n';
    }
    if (i > 0) line_ += delim;
    if (!quote) {
      line_.append(f.data(), f.size());
      continue;
    }
    line_ += '"';
    std::size_t from = 0;
    for (std::size_t q = f.find('"'); q != std::string_view::npos; q = f.find('"', q + 1)) {
      line_.append(f.data() + from, q + 1 - from);
      line_ += '"';
      from = q + 1;
    }
    line_.append(f.data() + from, f.size() - from);
    line_ += '"';
  }
  line_ += options_.crlf ? "\r\n" : "\n";
  out_->write(line_.data(), static_cast<std::streamsize>(line_.size()));
  CMG_RETURN_IF_ERROR(internal::stream_status(*out_, "CSV writer"));
  ++rows_;
  return Status::ok();
}

Status CsvWriter::flush() {
  out_->flush();
  return internal::stream_status(*out_, "CSV writer");
}

}  // namespace cmg::files
