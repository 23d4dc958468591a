// libFuzzer target: CsvReader and CsvRecordReader over arbitrary bytes.
//
// Each input is read three ways: in one block (the default limits, a block larger than any input
// the fuzzer makes, so the 1 MiB default buffer is not zeroed on every run); with 64-byte blocks
// and small limits,
// which must give the same rows and errors unless a limit is hit (a record straddling any number
// of refills parses as in one block); and with another delimiter. count_rows must count the rows
// of an input read without an error. Every error must be kParse
// naming the input. CsvRecordReader must then turn the same rows into the same Records.
#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "crmmigrate/connectors/files.hpp"
#include "fuzz/fuzz_util.hpp"

namespace {

using cmg::Code;
using cmg::Status;
using cmg::files::CsvOptions;
using cmg::files::CsvReader;
using cmg::files::CsvRecordOptions;
using cmg::files::CsvRecordReader;

constexpr std::string_view kName = "fuzz.csv";
constexpr std::string_view kPrefix = "fuzz.csv:";

struct Outcome {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::uint64_t> lines;
  Status error;
};

std::unique_ptr<std::istream> stream_of(std::string_view bytes) {
  return std::make_unique<std::istringstream>(std::string(bytes));
}

Outcome read_rows(std::string_view bytes, const CsvOptions& options) {
  Outcome out;
  auto reader = CsvReader::open_stream(stream_of(bytes), std::string(kName), options);
  if (!reader.is_ok()) {
    out.error = reader.status();
    return out;
  }
  out.header = reader->header();
  CMG_FUZZ_CHECK(!out.header.empty(), "a header without columns");
  std::vector<std::string_view> row;
  for (;;) {
    auto got = reader->next_row(row);
    if (!got.is_ok()) {
      out.error = got.status();
      // Errors are sticky.
      auto again = reader->next_row(row);
      CMG_FUZZ_CHECK(!again.is_ok() && again.status().message() == out.error.message(), out.error.message());
      return out;
    }
    if (!*got) return out;
    CMG_FUZZ_CHECK(row.size() == out.header.size(), "row width differs from the header");
    out.rows.emplace_back(row.begin(), row.end());
    out.lines.push_back(reader->row_line());
  }
}

bool hit_limit(const Outcome& o) {
  return !o.error.is_ok() && o.error.message().find("longer than the maximum") != std::string::npos;
}

void check_same(const Outcome& a, const Outcome& b) {
  if (hit_limit(b)) {
    // Rows before the limit was hit must still agree.
    CMG_FUZZ_CHECK(b.rows.size() <= a.rows.size(), b.error.message());
    for (std::size_t i = 0; i < b.rows.size(); ++i) {
      CMG_FUZZ_CHECK(a.rows[i] == b.rows[i] && a.lines[i] == b.lines[i], "rows differ before a limit error");
    }
    return;
  }
  CMG_FUZZ_CHECK(a.error.message() == b.error.message(), a.error.message() + " <> " + b.error.message());
  CMG_FUZZ_CHECK(a.header == b.header, "headers differ with small blocks");
  CMG_FUZZ_CHECK(a.rows == b.rows, "rows differ with small blocks");
  CMG_FUZZ_CHECK(a.lines == b.lines, "row lines differ with small blocks");
}

void check_records(std::string_view bytes, const CsvOptions& options, const Outcome& plain) {
  if (plain.header.empty()) return;
  auto reader = CsvReader::open_stream(stream_of(bytes), std::string(kName), options);
  CMG_FUZZ_CHECK(reader.is_ok(), reader.status().message());
  CsvRecordOptions record_options;
  record_options.object = "rows";
  record_options.id_column = plain.header.front();
  for (const auto& column : plain.header) {
    if (column == "updated_at") record_options.updated_at_column = column;
  }
  auto records = CsvRecordReader::make(std::move(*reader), record_options, 3);
  CMG_FUZZ_CHECK(records.is_ok(), records.status().message());
  cmg::RecordBatch batch;
  std::size_t n = 0;
  for (;;) {
    auto got = (*records)->next(batch);
    if (!got.is_ok()) {
      cmg::fuzz::check_error(got.status(), Code::kParse, kPrefix);
      return;
    }
    if (!*got) break;
    CMG_FUZZ_CHECK(!batch.empty() && batch.size() <= 3, "batch size out of bounds");
    for (const auto& r : batch) {
      CMG_FUZZ_CHECK(n < plain.rows.size(), "more records than rows");
      const auto& row = plain.rows[n++];
      CMG_FUZZ_CHECK(r.id == row.front() && !r.id.empty(), r.id);
      CMG_FUZZ_CHECK(r.fields.size() == row.size(), "record width differs from the row");
      std::size_t i = 0;
      for (const auto& kv : r.fields) {
        const std::string& cell = row[i++];
        if (cell.empty()) {
          CMG_FUZZ_CHECK(kv.value().is_null(), "an empty cell must read as null");
        } else {
          CMG_FUZZ_CHECK(kv.value().is_string() && kv.value().get_string() == cell, "a cell changed on its way");
        }
      }
    }
  }
  // The records end only where the rows ended without an error.
  CMG_FUZZ_CHECK(n == plain.rows.size() && plain.error.is_ok(), "records and rows disagree");
}

// CsvReader::count_rows must count the rows next_row returned, for any block size, wherever
// next_row read to the end without an error.
void check_count(std::string_view bytes, const Outcome& plain) {
  if (!plain.error.is_ok()) return;
  for (std::size_t block : {std::max<std::size_t>(bytes.size() + 1, 4096), std::size_t{64}}) {
    CsvOptions options;
    options.block_bytes = block;
    auto reader = CsvReader::open_stream(stream_of(bytes), std::string(kName), options);
    CMG_FUZZ_CHECK(reader.is_ok(), reader.status().message());
    auto n = reader->count_rows();
    CMG_FUZZ_CHECK(n.is_ok(), n.status().message());
    CMG_FUZZ_CHECK(*n == plain.rows.size(), "count_rows differs from the rows read");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  CsvOptions one_block;
  one_block.block_bytes = std::max<std::size_t>(size + 1, 4096);
  const Outcome plain = read_rows(bytes, one_block);
  if (!plain.error.is_ok()) cmg::fuzz::check_error(plain.error, Code::kParse, kPrefix);

  CsvOptions small;
  small.block_bytes = 64;
  small.max_field_bytes = 200;
  small.max_record_bytes = 600;
  const Outcome blocks = read_rows(bytes, small);
  if (!blocks.error.is_ok()) cmg::fuzz::check_error(blocks.error, Code::kParse, kPrefix);
  check_same(plain, blocks);

  check_records(bytes, one_block, plain);
  check_count(bytes, plain);

  // Another delimiter, chosen by the input's last byte so mutations can reach every one.
  CsvOptions other;
  other.delimiter = ';';
  if (size > 0) {
    const auto d = static_cast<unsigned char>(data[size - 1]);
    if (d != '"' && d != '\r' && d != '\n' && d != 0 && d < 0x80) other.delimiter = static_cast<char>(d);
  }
  other.block_bytes = 64;
  const Outcome delimited = read_rows(bytes, other);
  if (!delimited.error.is_ok()) cmg::fuzz::check_error(delimited.error, Code::kParse, kPrefix);
  return 0;
}
