// Hostile input: every malformed file (tests/hostile/files/) and config (tests/hostile/configs/)
// fails with exactly the Status in its sidecar `<name>.expected` ("<code>: <message>", one line),
// and inputs that are odd but valid read as the sidecar says ("ok: N records: <fields as JSON>..."). Inputs too big to
// commit (a 10 MB field, 100,000 nested brackets, over-long lines) are generated at test time; only
// their `.expected` is committed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "crmmigrate/connectors/files.hpp"
#include "crmmigrate/core/config.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;

namespace {

using cmg::files::CsvOptions;
using cmg::files::CsvReader;
using cmg::files::CsvRecordOptions;
using cmg::files::CsvRecordReader;
using cmg::files::JsonlOptions;
using cmg::files::JsonlReader;
using cmg::files::JsonlRecordOptions;
using cmg::files::JsonlRecordReader;

const fs::path kHostileDir = fs::path(CMG_SOURCE_DIR) / "tests" / "hostile";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The one line of a sidecar, without its line end.
std::string expected_of(const fs::path& sidecar) {
  std::string s = read_file(sidecar);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// Limits lowered for the cases that test them; everything else reads with the defaults.
CsvOptions csv_options_for(const std::string& name) {
  CsvOptions o;
  if (name == "huge_field.csv") o.max_field_bytes = 1u << 20;
  if (name == "overlong_line.csv") o.max_record_bytes = 1u << 20;
  return o;
}

JsonlOptions jsonl_options_for(const std::string& name) {
  JsonlOptions o;
  if (name == "overlong_line.jsonl") o.max_line_bytes = 1u << 20;
  return o;
}

// Inputs generated at test time, by name, in the directory the test reads from.
const std::map<std::string, std::function<std::string()>>& generated() {
  static const std::map<std::string, std::function<std::string()>> g = {
      // A 10 MB quoted field, over a 1 MiB limit.
      {"huge_field.csv", [] { return "id,notes\n1,\"" + std::string(10'000'000, 'a') + "\"\n"; }},
      // A 2 MiB record of short fields, over a 1 MiB record limit (no single field is long).
      {"overlong_line.csv",
       [] {
         std::string s = "id,name\n1,Ada\n2";
         while (s.size() < (2u << 20)) s += ",x";
         return s + "\n";
       }},
      // 100,000 nested arrays on line 2.
      {"deeply_nested.jsonl",
       [] { return "{\"id\":\"1\"}\n{\"id\":\"2\",\"x\":" + std::string(100'000, '[') + std::string(100'000, ']') + "}\n"; }},
      {"overlong_line.jsonl",
       [] { return "{\"id\":\"1\"}\n{\"id\":\"2\",\"notes\":\"" + std::string(2u << 20, 'a') + "\"}\n"; }},
      {"deeply_nested_100k.json",
       [] {
         return "{\"name\":\"hostile\",\"source\":{\"connector\":\"sandbox\",\"options\":{\"a\":" +
                std::string(100'000, '[') + std::string(100'000, ']') + "}}}";
       }},
  };
  return g;
}

struct Case {
  std::string name;      // file name: names the input in messages
  fs::path path;         // where it is read from
  std::string expected;  // the sidecar's line
};

// Every `<name>.expected` of `dir`, with its input (committed in `dir`, or generated into `tmp`).
std::vector<Case> cases_in(const fs::path& dir, const TempDir& tmp) {
  std::vector<Case> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".expected") continue;
    Case c;
    c.name = e.path().stem().string();
    c.expected = expected_of(e.path());
    c.path = dir / c.name;
    if (auto g = generated().find(c.name); g != generated().end()) {
      REQUIRE_MESSAGE(!fs::exists(c.path), c.name << " is generated: do not commit it");
      c.path = tmp.sub(c.name);
      std::ofstream(c.path, std::ios::binary) << g->second();
    }
    REQUIRE_MESSAGE(fs::exists(c.path), c.name << ".expected has no input");
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(), [](const Case& a, const Case& b) { return a.name < b.name; });
  return out;
}

// Reads the whole file as Records: "ok: N records: <each record as JSON>", or the first error as
// "<code>: <message>".
template <typename RecordReader>
std::string drain(cmg::Result<std::unique_ptr<RecordReader>> reader) {
  if (!reader.is_ok()) return reader.status().to_string();
  cmg::RecordBatch batch;
  std::size_t n = 0;
  std::string records;
  for (;;) {
    auto got = (*reader)->next(batch);
    if (!got.is_ok()) return got.status().to_string();
    if (!*got) break;
    n += batch.size();
    for (const auto& r : batch) records += " " + boost::json::serialize(r.fields);
  }
  return "ok: " + std::to_string(n) + " records:" + records;
}

std::string read_records(const Case& c) {
  auto in = std::make_unique<std::ifstream>(c.path, std::ios::binary);
  if (c.path.extension() == ".csv") {
    auto csv = CsvReader::open_stream(std::move(in), c.name, csv_options_for(c.name));
    if (!csv.is_ok()) return csv.status().to_string();
    CsvRecordOptions options;
    options.object = "rows";
    const auto& header = csv->header();
    if (std::find(header.begin(), header.end(), "updated_at") != header.end()) options.updated_at_column = "updated_at";
    return drain(CsvRecordReader::make(std::move(*csv), options));
  }
  auto jsonl = JsonlReader::open_stream(std::move(in), c.name, jsonl_options_for(c.name));
  if (!jsonl.is_ok()) return jsonl.status().to_string();
  JsonlRecordOptions options;
  options.object = "lines";
  options.updated_at_key = "updated_at";
  return drain(JsonlRecordReader::make(std::move(*jsonl), options));
}

// "parse: <name>:<line>: <reason>" with a reason after the line number.
bool names_file_and_line(const std::string& message, const std::string& name) {
  const std::string prefix = "parse: " + name + ":";
  if (message.compare(0, prefix.size(), prefix) != 0) return false;
  std::size_t i = prefix.size();
  const std::size_t digits = i;
  while (i < message.size() && std::isdigit(static_cast<unsigned char>(message[i]))) ++i;
  return i > digits && message.compare(i, 2, ": ") == 0 && message.size() > i + 2;
}

// "config: <name>: $<path>: <reason>", or "config: <name>:<line>:<column>: invalid JSON: <reason>".
bool names_config_path(const std::string& message, const std::string& name) {
  if (message.rfind("config: " + name + ": $", 0) == 0) return message.find(": ", name.size() + 11) != std::string::npos;
  const std::string prefix = "config: " + name + ":";
  if (message.rfind(prefix, 0) != 0) return false;
  std::size_t i = prefix.size();
  auto number = [&] {
    const std::size_t from = i;
    while (i < message.size() && std::isdigit(static_cast<unsigned char>(message[i]))) ++i;
    return i > from;
  };
  return number() && message[i++] == ':' && number() && message.compare(i, 16, ": invalid JSON: ") == 0 &&
         message.size() > i + 16;
}

}  // namespace

TEST_CASE("every hostile CSV and JSONL file fails with exactly its expected message, naming file and line") {
  TempDir tmp;
  const auto cases = cases_in(kHostileDir / "files", tmp);
  CHECK(cases.size() >= 20);
  for (const auto& c : cases) {
    INFO(c.name);
    const std::string actual = read_records(c);
    CHECK(actual == c.expected);
    if (actual.rfind("ok: ", 0) != 0) CHECK(names_file_and_line(actual, c.name));
  }
}

TEST_CASE("every hostile config fails with exactly its expected message, naming file and JSON path") {
  TempDir tmp;
  const auto cases = cases_in(kHostileDir / "configs", tmp);
  CHECK(cases.size() >= 15);
  for (const auto& c : cases) {
    INFO(c.name);
    auto cfg = cmg::parse_config(read_file(c.path), c.name, "/hostile");
    REQUIRE_FALSE(cfg.is_ok());
    const std::string actual = cfg.status().to_string();
    CHECK(actual == c.expected);
    CHECK(names_config_path(actual, c.name));
  }
}

TEST_CASE("every committed hostile input has its expected message") {
  for (const char* sub : {"files", "configs"}) {
    for (const auto& e : fs::directory_iterator(kHostileDir / sub)) {
      if (e.path().extension() == ".expected") continue;
      INFO(e.path().string());
      CHECK(fs::exists(e.path().string() + ".expected"));
    }
  }
}
