#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "crmmigrate/connectors/files.hpp"
#include "test_util.hpp"

using cmg::Code;
using cmg::files::JsonlOptions;
using cmg::files::JsonlReader;
using cmg::files::JsonlRecordOptions;
using cmg::files::JsonlRecordReader;
using cmg::files::JsonlWriter;

namespace {

cmg::Result<JsonlReader> open_text(const std::string& text, JsonlOptions options = {}) {
  return JsonlReader::open_stream(std::make_unique<std::istringstream>(text), "t.jsonl", options);
}

// Every object serialised, or the Status of the first error.
cmg::Result<std::vector<std::string>> read_all(const std::string& text, JsonlOptions options = {}) {
  CMG_ASSIGN_OR_RETURN(JsonlReader reader, open_text(text, options));
  std::vector<std::string> out;
  boost::json::object obj;
  for (;;) {
    CMG_ASSIGN_OR_RETURN(bool got, reader.next_object(obj));
    if (!got) break;
    out.push_back(boost::json::serialize(obj));
  }
  return out;
}

std::string error_of(const std::string& text, JsonlOptions options = {}) {
  auto r = read_all(text, options);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kParse);
  return r.status().message();
}

cmg::Result<std::vector<cmg::Record>> records_of(const std::string& text, JsonlRecordOptions options) {
  CMG_ASSIGN_OR_RETURN(JsonlReader reader, open_text(text));
  CMG_ASSIGN_OR_RETURN(auto rr, JsonlRecordReader::make(std::move(reader), std::move(options), 2));
  std::vector<cmg::Record> out;
  cmg::RecordBatch batch;
  for (;;) {
    CMG_ASSIGN_OR_RETURN(bool got, rr->next(batch));
    if (!got) break;
    for (auto& r : batch) out.push_back(std::move(r));
  }
  return out;
}

std::string record_error(const std::string& text, JsonlRecordOptions options) {
  auto r = records_of(text, std::move(options));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kParse);
  return r.status().message();
}

}  // namespace

TEST_CASE("each JSONL line is one object and blank lines are skipped") {
  auto rows = read_all("\xEF\xBB\xBF{\"a\":1}\n\n  \t\n{\"b\":\"x\"}\r\n{\"c\":[1,{\"d\":null}]}");
  REQUIRE(rows.is_ok());
  CHECK(*rows == std::vector<std::string>{R"({"a":1})", R"({"b":"x"})", R"({"c":[1,{"d":null}]})"});
}

TEST_CASE("line() gives the line of the object last returned") {
  auto reader = open_text("\n{\"a\":1}\n\n{\"a\":2}\n");
  REQUIRE(reader.is_ok());
  boost::json::object obj;
  REQUIRE(reader->next_object(obj).value());
  CHECK(reader->line() == 2);
  REQUIRE(reader->next_object(obj).value());
  CHECK(reader->line() == 4);
  CHECK_FALSE(reader->next_object(obj).value());
}

TEST_CASE("invalid JSON names the line, the column and Boost's reason") {
  CHECK(error_of("{\"a\":1}\n{\"a\": tru}\n") == "t.jsonl:2: invalid JSON at column 7: syntax error");
  CHECK(error_of("{\"a\":1}\n\n{\"a\":1\n") == "t.jsonl:3: invalid JSON at column 7: incomplete JSON");
  CHECK(error_of("{\"a\":1} {}\n") == "t.jsonl:1: invalid JSON at column 9: extra data");
}

TEST_CASE("deeply nested JSON is a depth error, not a crash") {
  const std::string deep = "{\"a\":" + std::string(100'000, '[') + std::string(100'000, ']') + "}\n";
  CHECK(error_of("{}\n" + deep) == "t.jsonl:2: JSON nested deeper than 64 levels at column 69");
  // 63 arrays inside the object are 64 levels: accepted.
  auto ok = read_all("{\"a\":" + std::string(63, '[') + std::string(63, ']') + "}\n");
  CHECK(ok.is_ok());
}

TEST_CASE("a line that is not an object is an error") {
  CHECK(error_of("{}\n[1,2]\n") == "t.jsonl:2: expected a JSON object, got an array");
  CHECK(error_of("\"x\"\n") == "t.jsonl:1: expected a JSON object, got a string");
}

TEST_CASE("invalid UTF-8 in a JSONL line names the line and column") {
  CHECK(error_of("{}\n{\"a\":\"\xC3\x28\"}\n") == "t.jsonl:2: invalid UTF-8 byte 0xC3 at column 7");
}

TEST_CASE("a JSONL line longer than the maximum is an error") {
  JsonlOptions options;
  options.max_line_bytes = 16;
  options.block_bytes = 64;
  CHECK(error_of("{\"a\":\"12345678\"}\n{\"a\":\"123456789\"}\n", options) ==
        "t.jsonl:2: line is longer than the maximum of 16 bytes");
  CHECK(error_of("{}\n{\"a\":\"" + std::string(500, 'x') + "\"}\n", options) ==
        "t.jsonl:2: line is longer than the maximum of 16 bytes");
}

TEST_CASE("JSONL lines crossing tiny blocks are read whole") {
  TempDir dir;
  const std::string path = dir.sub("x.jsonl");
  std::vector<std::string> expected;
  {
    std::ofstream out(path, std::ios::binary);
    JsonlWriter writer(out);
    for (int i = 0; i < 2000; ++i) {
      boost::json::object o{{"id", i}, {"name", std::string(static_cast<std::size_t>(i % 97), 'n') + "é\n\"q\""}};
      REQUIRE(writer.write(o).is_ok());
      expected.push_back(boost::json::serialize(o));
    }
    REQUIRE(writer.flush().is_ok());
    CHECK(writer.lines() == 2000);
  }
  JsonlOptions options;
  options.block_bytes = 64;
  auto reader = JsonlReader::open(path, options);
  REQUIRE(reader.is_ok());
  boost::json::object obj;
  std::size_t n = 0;
  for (;;) {
    auto got = reader->next_object(obj);
    REQUIRE_MESSAGE(got.is_ok(), got.status().message());
    if (!*got) break;
    REQUIRE(n < expected.size());
    CHECK(boost::json::serialize(obj) == expected[n]);
    ++n;
  }
  CHECK(n == expected.size());
}

TEST_CASE("JSONL records take the id from a string or an integer and keep it in fields") {
  auto recs = records_of("{\"id\":\"p-1\",\"name\":\"Ann\",\"tags\":[\"a\"]}\n{\"name\":\"Bo\",\"id\":42}\n"
                         "{\"id\":18446744073709551615}\n",
                         JsonlRecordOptions{"persons", "id", "", {}});
  REQUIRE(recs.is_ok());
  REQUIRE(recs->size() == 3);
  CHECK((*recs)[0].object == "persons");
  CHECK((*recs)[0].id == "p-1");
  CHECK(boost::json::serialize((*recs)[0].fields) == R"({"id":"p-1","name":"Ann","tags":["a"]})");
  CHECK((*recs)[1].id == "42");
  CHECK(boost::json::serialize((*recs)[1].fields) == R"({"name":"Bo","id":42})");
  CHECK((*recs)[2].id == "18446744073709551615");
}

TEST_CASE("JSONL updated_at is read from timestamps and Unix seconds or milliseconds") {
  auto recs = records_of(
      "{\"id\":1,\"u\":\"2024-08-13T18:04:34.666+00:00\"}\n{\"id\":2,\"u\":1723572274}\n"
      "{\"id\":3,\"u\":1723572274666}\n{\"id\":4,\"u\":1723572274.5}\n{\"id\":5,\"u\":null}\n{\"id\":6}\n",
      JsonlRecordOptions{"o", "id", "u", {}});
  REQUIRE(recs.is_ok());
  REQUIRE(recs->size() == 6);
  CHECK((*recs)[0].updated_at == 1723572274666);
  CHECK((*recs)[1].updated_at == 1723572274000);
  CHECK((*recs)[2].updated_at == 1723572274666);
  CHECK((*recs)[3].updated_at == 1723572274500);
  CHECK((*recs)[4].updated_at == 0);
  CHECK((*recs)[5].updated_at == 0);
}

TEST_CASE("a missing, empty or non-scalar JSONL id names the line") {
  JsonlRecordOptions opts{"o", "id", "", {}};
  CHECK(record_error("{\"id\":1}\n{\"name\":\"x\"}\n", opts) == "t.jsonl:2: missing id key \"id\"");
  CHECK(record_error("{\"id\":\"\"}\n", opts) == "t.jsonl:1: empty id in key \"id\"");
  CHECK(record_error("{\"id\":1.5}\n", opts) == "t.jsonl:1: id key \"id\" must be a string or an integer, got a number");
  CHECK(record_error("{\"id\":1,\"u\":true}\n", JsonlRecordOptions{"o", "id", "u", {}}) ==
        "t.jsonl:1: cannot parse updated_at key \"u\" (a boolean \"true\") as a timestamp");
}

TEST_CASE("a JSONL projection keeps only the requested keys") {
  auto recs = records_of("{\"id\":1,\"a\":2,\"b\":3}\n", JsonlRecordOptions{"o", "id", "", {"b", "id"}});
  REQUIRE(recs.is_ok());
  CHECK(boost::json::serialize((*recs)[0].fields) == R"({"id":1,"b":3})");
}

TEST_CASE("JsonlWriter writes one compact object per line") {
  std::ostringstream out;
  JsonlWriter writer(out);
  REQUIRE(writer.write(boost::json::object{{"a", "x\ny"}, {"b", nullptr}}).is_ok());
  REQUIRE(writer.write(boost::json::array{1, 2}).is_ok());
  CHECK(out.str() == "{\"a\":\"x\\ny\",\"b\":null}\n[1,2]\n");
}
