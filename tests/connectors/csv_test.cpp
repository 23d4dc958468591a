#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "crmmigrate/connectors/files.hpp"
#include "test_util.hpp"

using cmg::Code;
using cmg::files::CsvOptions;
using cmg::files::CsvReader;
using cmg::files::CsvRecordOptions;
using cmg::files::CsvRecordReader;
using cmg::files::CsvWriteOptions;
using cmg::files::CsvWriter;

namespace {

cmg::Result<CsvReader> open_text(const std::string& text, CsvOptions options = {}) {
  return CsvReader::open_stream(std::make_unique<std::istringstream>(text), "t.csv", options);
}

// All data rows, or the Status of the first error.
cmg::Result<std::vector<std::vector<std::string>>> read_all(const std::string& text, CsvOptions options = {}) {
  CMG_ASSIGN_OR_RETURN(CsvReader reader, open_text(text, options));
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string_view> row;
  for (;;) {
    CMG_ASSIGN_OR_RETURN(bool got, reader.next_row(row));
    if (!got) break;
    rows.emplace_back(row.begin(), row.end());
  }
  return rows;
}

std::string error_of(const std::string& text, CsvOptions options = {}) {
  auto r = read_all(text, options);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kParse);
  return r.status().message();
}

using Rows = std::vector<std::vector<std::string>>;

}  // namespace

TEST_CASE("a quoted field keeps delimiters and doubled quotes as data") {
  auto rows = read_all("id,name,note\n1,\"Brekke, Dietrich and Klein\",\"say \"\"hi\"\"\"\n2,\"\",\"\"\"\"\n");
  REQUIRE(rows.is_ok());
  CHECK(*rows == Rows{{"1", "Brekke, Dietrich and Klein", "say \"hi\""}, {"2", "", "\""}});
}

TEST_CASE("newlines inside quotes are kept byte for byte whether LF, CRLF or CR") {
  auto rows = read_all("id,text\r\n1,\"a\nb\"\r\n2,\"c\r\nd\"\r\n3,\"e\rf\"\r\n4,\"\n\"\n");
  REQUIRE(rows.is_ok());
  CHECK(*rows == Rows{{"1", "a\nb"}, {"2", "c\r\nd"}, {"3", "e\rf"}, {"4", "\n"}});
}

TEST_CASE("a UTF-8 byte-order mark before the header is skipped") {
  auto reader = open_text("\xEF\xBB\xBFid,name\n1,Zoë\n");
  REQUIRE(reader.is_ok());
  CHECK(reader->header() == std::vector<std::string>{"id", "name"});
  std::vector<std::string_view> row;
  REQUIRE(reader->next_row(row).value());
  CHECK(row[1] == "Zoë");
}

TEST_CASE("CRLF, LF and lone CR end records and the last record needs no line end") {
  auto rows = read_all("a,b\r\n1,2\n3,4\r5,6");
  REQUIRE(rows.is_ok());
  CHECK(*rows == Rows{{"1", "2"}, {"3", "4"}, {"5", "6"}});
}

TEST_CASE("empty lines are skipped and a final line end adds no record") {
  auto rows = read_all("a,b\n\n1,2\r\n\r\n3,\n\n");
  REQUIRE(rows.is_ok());
  CHECK(*rows == Rows{{"1", "2"}, {"3", ""}});
}

TEST_CASE("a single-column file keeps a quoted empty value") {
  auto rows = read_all("a\n\"\"\nx\n");
  REQUIRE(rows.is_ok());
  CHECK(*rows == Rows{{""}, {"x"}});
}

TEST_CASE("a configured delimiter splits fields and commas become data") {
  CsvOptions options;
  options.delimiter = ';';
  auto rows = read_all("id;name\n1;a,b\n2;\"x;y\"\n", options);
  REQUIRE(rows.is_ok());
  CHECK(*rows == Rows{{"1", "a,b"}, {"2", "x;y"}});
}

TEST_CASE("an invalid delimiter is rejected") {
  CsvOptions options;
  options.delimiter = '"';
  auto r = open_text("a\n", options);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kInvalidArgument);
}

TEST_CASE("row_line gives the line where a multi-line record starts") {
  auto reader = open_text("id,text\n1,\"x\ny\r\nz\"\n2,w\n");
  REQUIRE(reader.is_ok());
  std::vector<std::string_view> row;
  REQUIRE(reader->next_row(row).value());
  CHECK(reader->row_line() == 2);
  REQUIRE(reader->next_row(row).value());
  CHECK(reader->row_line() == 5);
  CHECK(row[1] == "w");
  CHECK_FALSE(reader->next_row(row).value());
}

TEST_CASE("an unterminated quoted field names the line where the record starts") {
  CHECK(error_of("id,name\n1,a\n2,\"abc\nmore\n") ==
        "t.csv:3: unterminated quoted field: end of file inside the quotes opened at column 3");
  CHECK(error_of("id,name\n1,a\n2,x\n3,\"a\nb\",\"c\nd\n") ==
        "t.csv:4: unterminated quoted field: end of file inside the quotes opened at line 5, column 4");
}

TEST_CASE("a quote inside an unquoted field is an error") {
  CHECK(error_of("id,name\n1,ab\"c\n") == "t.csv:2: quote inside an unquoted field at column 5");
}

TEST_CASE("characters after a closing quote are an error") {
  CHECK(error_of("id,name\n1,\"ab\"c\n") == "t.csv:2: unexpected 'c' after a closing quote at column 7");
  CHECK(error_of("id,name\n1,\"a\nb\" \n") ==
        "t.csv:2: unexpected ' ' after a closing quote at line 3, column 3");
}

TEST_CASE("a ragged row names its line and both field counts") {
  CHECK(error_of("id,name\n1,a\n2,b,c\n") == "t.csv:3: ragged row: 3 fields, header has 2");
  CHECK(error_of("id,name,email,phone\n1,a,b,c\n2,\"x\ny\",b\n") == "t.csv:3: ragged row: 3 fields, header has 4");
}

TEST_CASE("invalid UTF-8 names the line and byte column") {
  CHECK(error_of("id,name\n1,ab\xFF\n") == "t.csv:2: invalid UTF-8 byte 0xFF at column 5");
  CHECK(error_of("id,name\n1,\"a\nb\xC3\x28\"\n") == "t.csv:2: invalid UTF-8 byte 0xC3 at line 3, column 2");
  // Overlong encoding of '/' and a UTF-16 surrogate are not UTF-8.
  CHECK(error_of("id\n\xC0\xAF\n") == "t.csv:2: invalid UTF-8 byte 0xC0 at column 1");
  CHECK(error_of("id\n\xED\xA0\x80\n") == "t.csv:2: invalid UTF-8 byte 0xED at column 1");
  // A sequence cut by the end of the file.
  CHECK(error_of("id\nab\xE2\x82") == "t.csv:2: invalid UTF-8 byte 0xE2 at column 3");
}

TEST_CASE("a NUL byte is an error") {
  CHECK(error_of(std::string("id,name\n1,a\0b\n", 14)) == "t.csv:2: NUL byte at column 4");
  CHECK(error_of(std::string("id,name\n1,\"a\0b\"\n", 16)) == "t.csv:2: NUL byte at column 5");
}

TEST_CASE("a field longer than the maximum is an error naming the column") {
  CsvOptions options;
  options.max_field_bytes = 8;
  CHECK(error_of("id,name\n1,12345678\n2,123456789\n", options) ==
        "t.csv:3: field 2 (\"name\") is longer than the maximum of 8 bytes (starts at column 3)");
  CHECK(error_of("id,name\n1,\"1234\n56789\"\n", options) ==
        "t.csv:2: field 2 (\"name\") is longer than the maximum of 8 bytes (starts at column 3)");
}

TEST_CASE("a record longer than the maximum is an error") {
  CsvOptions options;
  options.block_bytes = 64;
  options.max_record_bytes = 100;
  const std::string long_row = std::string(60, 'x') + "," + std::string(60, 'y');
  CHECK(error_of("a,b\n" + long_row + "\n", options) == "t.csv:2: record is longer than the maximum of 100 bytes");
}

TEST_CASE("empty and duplicate header names are errors") {
  CHECK(error_of("id,,name\n") == "t.csv:1: empty column name in header (column 2)");
  CHECK(error_of("id,name,id\n") == "t.csv:1: duplicate column name \"id\" in header (columns 1 and 3)");
}

TEST_CASE("an empty file has no header row") {
  CHECK(error_of("") == "t.csv:1: no header row (the file is empty)");
  CHECK(error_of("\xEF\xBB\xBF\n\n") == "t.csv:1: no header row (the file is empty)");
}

TEST_CASE("after an error every call returns the same error") {
  auto reader = open_text("id,name\n1,a,b\n2,c\n");
  REQUIRE(reader.is_ok());
  std::vector<std::string_view> row;
  auto first = reader->next_row(row);
  REQUIRE_FALSE(first.is_ok());
  auto second = reader->next_row(row);
  REQUIRE_FALSE(second.is_ok());
  CHECK(second.status().message() == first.status().message());
  auto counted = reader->count_rows();  // counting does not start over either
  REQUIRE_FALSE(counted.is_ok());
  CHECK(counted.status().message() == first.status().message());
}

TEST_CASE("a missing file is reported as not found") {
  auto r = CsvReader::open("/nonexistent/dir/contacts.csv");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kNotFound);
  CHECK(r.status().message().find("/nonexistent/dir/contacts.csv") != std::string::npos);
}

TEST_CASE("CsvWriter quotes only the fields that need it") {
  std::ostringstream out;
  CsvWriter writer(out);
  REQUIRE(writer.write_row({"id", "name", "note"}).is_ok());
  REQUIRE(writer.write_row({"1", "a,b", "say \"hi\""}).is_ok());
  REQUIRE(writer.write_row({"2", " lead", "x\ny"}).is_ok());
  REQUIRE(writer.write_row({"3", "", "trail\t"}).is_ok());
  CHECK(out.str() == "id,name,note\n1,\"a,b\",\"say \"\"hi\"\"\"\n2,\" lead\",\"x\ny\"\n3,,\"trail\t\"\n");
  CHECK(writer.rows() == 4);
}

TEST_CASE("CsvWriter writes CRLF, a custom delimiter and a lone empty field as quotes") {
  std::ostringstream out;
  CsvWriteOptions options;
  options.crlf = true;
  options.delimiter = '\t';
  CsvWriter writer(out, options);
  REQUIRE(writer.write_row({"a", "b\tc", "d,e"}).is_ok());
  REQUIRE(writer.write_row(std::vector<std::string>{""}).is_ok());
  CHECK(out.str() == "a\t\"b\tc\"\td,e\r\n\"\"\r\n");
}

TEST_CASE("CsvWriter rejects NUL bytes and invalid UTF-8 without writing") {
  std::ostringstream out;
  CsvWriter writer(out);
  auto st = writer.write_row({"ok", std::string_view("a\0b", 3)});
  CHECK(st.code() == Code::kInvalidArgument);
  CHECK(st.message() == "CSV writer: row 1, field 2 contains a NUL byte");
  st = writer.write_row({"\xFF"});
  CHECK(st.message() == "CSV writer: row 1, field 1 is not valid UTF-8");
  CHECK(out.str().empty());
}

namespace {

// Values that exercise every quoting rule; `i` picks one deterministically.
std::string tricky_value(std::mt19937& rng, std::size_t i) {
  static const std::vector<std::string> pieces = {
      "plain", "a,b", "quote\"in", "\"\"", "line\nbreak", "crlf\r\nbreak", "cr\ronly", " lead", "trail ",
      "", "Zoë 日本 🎉", ",", "\n", "x"};
  std::string v = pieces[i % pieces.size()];
  const std::size_t extra = rng() % 40;
  for (std::size_t k = 0; k < extra; ++k) v += static_cast<char>('a' + rng() % 26);
  if (rng() % 7 == 0) v += pieces[rng() % pieces.size()];
  return v;
}

// count_rows of `text` read with `block_bytes` blocks.
std::uint64_t count_of(const std::string& text, std::size_t block_bytes = 1u << 20) {
  CsvOptions options;
  options.block_bytes = block_bytes;
  auto reader = open_text(text, options);
  REQUIRE(reader.is_ok());
  auto n = reader->count_rows();
  REQUIRE_MESSAGE(n.is_ok(), n.status().message());
  return *n;
}

void round_trip(std::size_t rows, std::size_t block_bytes, char delimiter = ',') {
  TempDir dir;
  const std::string path = dir.sub("big.csv");
  std::mt19937 rng(42);
  std::vector<std::vector<std::string>> expected;
  {
    std::ofstream out(path, std::ios::binary);
    CsvWriter writer(out, CsvWriteOptions{delimiter, true});
    REQUIRE(writer.write_row({"id", "a", "b", "c"}).is_ok());
    for (std::size_t i = 0; i < rows; ++i) {
      std::vector<std::string> row{std::to_string(i), tricky_value(rng, i), tricky_value(rng, i + 3),
                                   tricky_value(rng, i * 7)};
      REQUIRE(writer.write_row(row).is_ok());
      expected.push_back(std::move(row));
    }
    REQUIRE(writer.flush().is_ok());
  }
  CsvOptions options;
  options.block_bytes = block_bytes;
  options.delimiter = delimiter;
  auto reader = CsvReader::open(path, options);
  REQUIRE(reader.is_ok());
  std::vector<std::string_view> row;
  std::size_t n = 0;
  for (;;) {
    auto got = reader->next_row(row);
    REQUIRE_MESSAGE(got.is_ok(), got.status().message());
    if (!*got) break;
    REQUIRE(n < expected.size());
    const auto& want = expected[n];
    bool same = row.size() == want.size();
    for (std::size_t k = 0; same && k < want.size(); ++k) same = row[k] == want[k];
    if (!same) FAIL("row " << n << " differs");
    ++n;
  }
  CHECK(n == rows);
  // The record-end scan counts the same rows.
  auto counter = CsvReader::open(path, options);
  REQUIRE(counter.is_ok());
  auto counted = counter->count_rows();
  REQUIRE(counted.is_ok());
  CHECK(*counted == rows);
}

}  // namespace

TEST_CASE("count_rows counts the rows next_row returns: quotes, line ends, blank lines, BOM") {
  const std::vector<std::string> texts = {
      "id,name,note\n1,\"Brekke, Dietrich and Klein\",\"say \"\"hi\"\"\"\n2,\"\",\"\"\"\"\n",
      "id,text\r\n1,\"a\nb\"\r\n2,\"c\r\nd\"\r\n3,\"e\rf\"\r\n4,\"\n\"\n",
      "\xEF\xBB\xBFid,name\n1,Zoë\n",
      "a,b\r\n1,2\n3,4\r5,6",
      "a,b\n\n1,2\r\n\r\n3,\n\n",
      "a\n\"\"\nx\n",
      "a\r\n",
      "a",
      "\n\na,b\n,\n\"\n\n\",\"\"\"\"\r",
  };
  for (const auto& text : texts) {
    CAPTURE(text);
    auto rows = read_all(text);
    REQUIRE(rows.is_ok());
    CHECK(count_of(text) == rows->size());
    CHECK(count_of(text, 64) == rows->size());  // records straddling refills
  }
  // After counting, the reader is at the end.
  auto reader = open_text("a\n1\n2\n");
  REQUIRE(reader.is_ok());
  CHECK(reader->count_rows().value() == 2);
  std::vector<std::string_view> row;
  CHECK_FALSE(reader->next_row(row).value());
}

TEST_CASE("50,000 rows spanning many 1 MiB blocks round-trip through CsvWriter and CsvReader") {
  round_trip(50'000, 1u << 20);
}

TEST_CASE("rows round-trip when every record straddles tiny blocks") {
  round_trip(3'000, 64);
}

TEST_CASE("rows round-trip with other delimiters") {
  for (char d : {';', '\t', '|'}) {
    CAPTURE(d);
    round_trip(3'000, 1u << 12, d);
  }
}

TEST_CASE("CSV rows become records with null for empty cells and a parsed updated_at") {
  auto reader = open_text("id,name,email,updated_at\n7,Ann,,2024-08-13T18:04:34.666+00:00\n8,\"B, C\",b@x.io,\n");
  REQUIRE(reader.is_ok());
  auto rr = CsvRecordReader::make(std::move(*reader), CsvRecordOptions{"contacts", "id", "updated_at", {}}, 10);
  REQUIRE(rr.is_ok());
  cmg::RecordBatch batch;
  REQUIRE((*rr)->next(batch).value());
  REQUIRE(batch.size() == 2);
  const cmg::Record& a = batch[0];
  CHECK(a.object == "contacts");
  CHECK(a.id == "7");
  CHECK(a.updated_at == 1723572274666);
  CHECK(a.fields.size() == 4);
  CHECK(a.fields.at("id") == "7");
  CHECK(a.fields.at("name") == "Ann");
  CHECK(a.fields.at("email").is_null());
  CHECK(batch[1].fields.at("name") == "B, C");
  CHECK(batch[1].updated_at == 0);
  CHECK(batch[1].fields.at("updated_at").is_null());
  CHECK_FALSE((*rr)->next(batch).value());
  CHECK(batch.empty());
}

TEST_CASE("record batches hold at most batch_size records and reused records get new values") {
  std::string text = "id,v\n";
  for (int i = 1; i <= 7; ++i) text += std::to_string(i) + "," + (i % 2 ? "odd" : "") + "\n";
  auto reader = open_text(text);
  REQUIRE(reader.is_ok());
  auto rr = CsvRecordReader::make(std::move(*reader), CsvRecordOptions{"o", "id", "", {}}, 3);
  REQUIRE(rr.is_ok());
  cmg::RecordBatch batch;
  std::vector<std::size_t> sizes;
  std::vector<std::string> ids, values;
  while ((*rr)->next(batch).value()) {
    sizes.push_back(batch.size());
    for (const auto& r : batch) {
      ids.push_back(r.id);
      values.push_back(r.fields.at("v").is_null() ? "null" : std::string(r.fields.at("v").as_string()));
    }
  }
  CHECK(sizes == std::vector<std::size_t>{3, 3, 1});
  CHECK(ids == std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7"});
  CHECK(values == std::vector<std::string>{"odd", "null", "odd", "null", "odd", "null", "odd"});
}

TEST_CASE("a projection keeps only the requested columns in order") {
  auto reader = open_text("id,a,b\n1,x,y\n");
  REQUIRE(reader.is_ok());
  auto rr = CsvRecordReader::make(std::move(*reader), CsvRecordOptions{"o", "id", "", {"b", "id"}});
  REQUIRE(rr.is_ok());
  cmg::Record r;
  REQUIRE((*rr)->next_record(r).value());
  CHECK(boost::json::serialize(r.fields) == R"({"b":"y","id":"1"})");
}

TEST_CASE("an empty id or an unreadable updated_at names the file and line") {
  {
    auto reader = open_text("id,name\n1,a\n,b\n");
    REQUIRE(reader.is_ok());
    auto rr = CsvRecordReader::make(std::move(*reader), CsvRecordOptions{"o", "id", "", {}});
    REQUIRE(rr.is_ok());
    cmg::Record r;
    REQUIRE((*rr)->next_record(r).value());
    auto second = (*rr)->next_record(r);
    REQUIRE_FALSE(second.is_ok());
    CHECK(second.status().message() == "t.csv:3: empty id in column \"id\"");
  }
  {
    auto reader = open_text("id,changed\n1,yesterday\n");
    REQUIRE(reader.is_ok());
    auto rr = CsvRecordReader::make(std::move(*reader), CsvRecordOptions{"o", "id", "changed", {}});
    REQUIRE(rr.is_ok());
    cmg::Record r;
    auto got = (*rr)->next_record(r);
    REQUIRE_FALSE(got.is_ok());
    CHECK(got.status().message() ==
          "t.csv:2: cannot parse updated_at \"yesterday\" in column \"changed\" as a timestamp");
  }
}

TEST_CASE("an id column missing from the header is rejected when the reader is made") {
  auto reader = open_text("key,name\n1,a\n");
  REQUIRE(reader.is_ok());
  auto rr = CsvRecordReader::make(std::move(*reader), CsvRecordOptions{"o", "id", "", {}});
  REQUIRE_FALSE(rr.is_ok());
  CHECK(rr.status().code() == Code::kInvalidArgument);
  CHECK(rr.status().message() == "t.csv:1: id column \"id\" is not in the header");
}

TEST_CASE("the atomic-crm contacts sample reads as 500 records of 24 columns") {
  const std::string path = std::string(CMG_SHARED_DATA_DIR) + "/atomic-crm-samples/contacts.csv";
  auto rr = CsvRecordReader::open(path, {}, CsvRecordOptions{"contacts", "id", "last_seen", {}}, 128);
  REQUIRE_MESSAGE(rr.is_ok(), rr.status().message());
  cmg::RecordBatch batch;
  std::size_t n = 0;
  cmg::Record first;
  for (;;) {
    auto got = (*rr)->next(batch);
    REQUIRE_MESSAGE(got.is_ok(), got.status().message());
    if (!*got) break;
    if (n == 0) first = batch.front();
    n += batch.size();
  }
  CHECK(n == 500);
  CHECK(first.id == "2");
  CHECK(first.fields.size() == 24);
  CHECK(first.fields.at("email_other") == "Shelley_Kerluke47@hotmail.com");
  CHECK(first.fields.at("company_name") == "Gottlieb and Sons");
  CHECK(first.fields.at("email_work").is_null());
  CHECK(first.updated_at == 1723635542318);  // 2024-08-14T11:39:02.318+00:00
}
