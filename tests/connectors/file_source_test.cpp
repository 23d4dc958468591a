#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "crmmigrate/connectors/files.hpp"
#include "test_util.hpp"

using cmg::Code;
using cmg::files::file_source_options_from_json;
using cmg::files::FileFormat;
using cmg::files::FileObjectOptions;
using cmg::files::FileSourceOptions;
using cmg::files::make_file_source;

namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string options_error(const std::string& json) {
  auto r = file_source_options_from_json(boost::json::parse(json), "$.source.options", "/cfg");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kConfig);
  return r.status().message();
}

// All records of `object`, or the first error.
cmg::Result<std::vector<cmg::Record>> read_all(cmg::Source& source, std::string_view object,
                                               const cmg::ReadOptions& opts, std::vector<std::size_t>* sizes = nullptr) {
  CMG_ASSIGN_OR_RETURN(auto reader, source.read(object, opts));
  std::vector<cmg::Record> out;
  cmg::RecordBatch batch;
  for (;;) {
    CMG_ASSIGN_OR_RETURN(bool got, reader->next(batch));
    if (!got) break;
    if (sizes) sizes->push_back(batch.size());
    for (auto& r : batch) out.push_back(std::move(r));
  }
  return out;
}

// A source with a CSV "contacts" and a JSONL "notes" object in `dir`.
std::shared_ptr<cmg::Source> sample_source(const TempDir& dir) {
  write_file(dir.sub("contacts.csv"),
             "id,name,updated_at\r\n1,Ann,2024-01-01\r\n2,\"Bo, Jr\",2024-03-01T10:00:00Z\r\n3,Cy,\r\n"
             "4,Di,2024-03-01T10:00:00Z\r\n");
  write_file(dir.sub("notes.jsonl"), "{\"id\":10,\"text\":\"hi\"}\n{\"id\":11,\"contact\":1,\"text\":\"yo\"}\n\n");
  FileSourceOptions options;
  options.objects["contacts"] = FileObjectOptions{dir.sub("contacts.csv"), FileFormat::kCsv, "id", "updated_at", ','};
  options.objects["notes"] = FileObjectOptions{dir.sub("notes.jsonl"), FileFormat::kJsonl, "id", "", ','};
  return make_file_source(std::move(options));
}

std::vector<std::string> ids_of(const std::vector<cmg::Record>& records) {
  std::vector<std::string> ids;
  for (const auto& r : records) ids.push_back(r.id);
  return ids;
}

}  // namespace

TEST_CASE("file source options parse paths, formats, columns and delimiters") {
  auto r = file_source_options_from_json(boost::json::parse(R"({"objects": {
      "persons": {"path": "data/persons.csv", "id": "person_id", "updated_at": "changed", "delimiter": ";"},
      "notes": {"path": "/abs/notes.ndjson"},
      "deals": {"path": "deals.tsv"},
      "orgs": {"path": "orgs.dat", "format": "csv"}}})"),
                                         "$.source.options", "/cfg/dir");
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  const auto& persons = r->objects.at("persons");
  CHECK(persons.path == "/cfg/dir/data/persons.csv");
  CHECK(persons.format == FileFormat::kCsv);
  CHECK(persons.id == "person_id");
  CHECK(persons.updated_at == "changed");
  CHECK(persons.delimiter == ';');
  const auto& notes = r->objects.at("notes");
  CHECK(notes.path == "/abs/notes.ndjson");
  CHECK(notes.format == FileFormat::kJsonl);
  CHECK(notes.id == "id");
  CHECK(notes.updated_at.empty());
  CHECK(r->objects.at("deals").delimiter == '\t');
  CHECK(r->objects.at("orgs").format == FileFormat::kCsv);
}

TEST_CASE("file source option errors name the JSON path") {
  CHECK(options_error(R"({"objects": {"persons": {"path": 3}}})") ==
        "$.source.options.objects.persons.path: expected a string");
  CHECK(options_error(R"({"objects": {"persons": {"pth": "a.csv"}}})") ==
        "$.source.options.objects.persons.pth: unknown key (did you mean \"path\"?)");
  CHECK(options_error(R"({"objects": {"persons": {"path": "a.csv", "colour": 1}}})") ==
        "$.source.options.objects.persons.colour: unknown key; expected one of path, format, id, updated_at, "
        "delimiter");
  CHECK(options_error(R"({"objekts": {}})") == "$.source.options.objekts: unknown key (did you mean \"objects\"?)");
  CHECK(options_error(R"({})") == "$.source.options: missing key \"objects\" (object name → file)");
  CHECK(options_error(R"({"objects": {}})") == "$.source.options.objects: expected at least one object");
  CHECK(options_error(R"({"objects": {"persons": {}}})") ==
        "$.source.options.objects.persons: missing key \"path\" (the CSV or JSONL file)");
  CHECK(options_error(R"({"objects": {"persons": {"path": "a.csv", "format": "xml"}}})") ==
        "$.source.options.objects.persons.format: expected \"csv\" or \"jsonl\", got \"xml\"");
  CHECK(options_error(R"({"objects": {"persons": {"path": "a.dat"}}})") ==
        "$.source.options.objects.persons: missing key \"format\" (\"csv\" or \"jsonl\"); the file name \"a.dat\" "
        "does not tell");
  CHECK(options_error(R"({"objects": {"persons": {"path": "a.jsonl", "delimiter": ";"}}})") ==
        "$.source.options.objects.persons.delimiter: only CSV files have a delimiter");
  CHECK(options_error(R"({"objects": {"persons": {"path": "a.csv", "delimiter": ";;"}}})") ==
        "$.source.options.objects.persons.delimiter: expected one ASCII character other than a quote, CR, LF or "
        "NUL, got \";;\"");
  CHECK(options_error(R"({"objects": {"my persons": {"path": 1}}})") ==
        "$.source.options.objects[\"my persons\"].path: expected a string");
  CHECK(options_error(R"([])") == "$.source.options: expected an object");
}

TEST_CASE("the file source schema lists CSV columns as strings and JSONL keys as JSON") {
  TempDir dir;
  auto source = sample_source(dir);
  auto schema = source->schema();
  REQUIRE_MESSAGE(schema.is_ok(), schema.status().message());
  REQUIRE(schema->objects.size() == 2);
  const auto& contacts = schema->objects.at("contacts");
  REQUIRE(contacts.fields.size() == 3);
  CHECK(contacts.fields[1].name == "name");
  CHECK(contacts.fields[1].type == cmg::FieldType::kString);
  const auto& notes = schema->objects.at("notes");
  REQUIRE(notes.fields.size() == 3);
  CHECK(notes.fields[0].name == "id");
  CHECK(notes.fields[1].name == "text");
  CHECK(notes.fields[2].name == "contact");
  CHECK(notes.fields[2].type == cmg::FieldType::kJson);
}

TEST_CASE("the file source counts and streams records in batches") {
  TempDir dir;
  auto source = sample_source(dir);
  CHECK(source->count("contacts").value() == 4);
  CHECK(source->count("notes").value() == 2);
  cmg::ReadOptions opts;
  opts.batch_size = 3;
  std::vector<std::size_t> sizes;
  auto contacts = read_all(*source, "contacts", opts, &sizes);
  REQUIRE_MESSAGE(contacts.is_ok(), contacts.status().message());
  CHECK(sizes == std::vector<std::size_t>{3, 1});
  CHECK(ids_of(*contacts) == std::vector<std::string>{"1", "2", "3", "4"});
  CHECK((*contacts)[1].fields.at("name") == "Bo, Jr");
  CHECK((*contacts)[0].updated_at == 1704067200000);
  CHECK((*contacts)[0].object == "contacts");
  auto notes = read_all(*source, "notes", opts);
  REQUIRE(notes.is_ok());
  CHECK(ids_of(*notes) == std::vector<std::string>{"10", "11"});
  CHECK((*notes)[1].fields.at("contact") == 1);
}

TEST_CASE("the file source keeps records changed since the cursor and those without a timestamp") {
  TempDir dir;
  auto source = sample_source(dir);
  cmg::ReadOptions opts;
  opts.since_updated_at = 1709287200000;  // 2024-03-01T10:00:00Z
  opts.since_id = "3";
  auto records = read_all(*source, "contacts", opts);
  REQUIRE(records.is_ok());
  CHECK(ids_of(*records) == std::vector<std::string>{"3", "4"});
}

TEST_CASE("the file source restricts fields when asked") {
  TempDir dir;
  auto source = sample_source(dir);
  cmg::ReadOptions opts;
  opts.fields = {"name"};
  auto records = read_all(*source, "contacts", opts);
  REQUIRE(records.is_ok());
  CHECK(boost::json::serialize((*records)[0].fields) == R"({"name":"Ann"})");
  CHECK((*records)[0].id == "1");
  opts.fields = {"nope"};
  auto bad = source->read("contacts", opts);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == Code::kInvalidArgument);
}

TEST_CASE("an unknown object or a missing file is not found") {
  TempDir dir;
  auto source = sample_source(dir);
  auto r = source->read("deals", {});
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kNotFound);
  CHECK(r.status().message() == "file source has no object \"deals\"");

  FileSourceOptions options;
  options.objects["x"] = FileObjectOptions{dir.sub("missing.csv"), FileFormat::kCsv, "id", "", ','};
  auto missing = make_file_source(options)->count("x");
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().code() == Code::kNotFound);
  CHECK(missing.status().message() == "cannot open " + dir.sub("missing.csv") + ": No such file or directory");
}

TEST_CASE("a malformed file surfaces as a parse error from the file source") {
  TempDir dir;
  write_file(dir.sub("bad.csv"), "id,name\n1,a\n2,b,c\n");
  FileSourceOptions options;
  options.objects["x"] = FileObjectOptions{dir.sub("bad.csv"), FileFormat::kCsv, "id", "", ','};
  auto source = make_file_source(options);
  // A CSV count looks at record ends only; reading the rows checks their fields.
  auto count = source->count("x");
  REQUIRE(count.is_ok());
  CHECK(*count == 2);
  cmg::ReadOptions opts;
  auto rows = read_all(*source, "x", opts);
  REQUIRE_FALSE(rows.is_ok());
  CHECK(rows.status().code() == Code::kParse);
  CHECK(rows.status().message() == dir.sub("bad.csv") + ":3: ragged row: 3 fields, header has 2");
  // A JSONL count parses every line: a bad line is reported by the count already.
  write_file(dir.sub("bad.jsonl"), "{\"id\":\"1\"}\n{\"id\":\n");
  options.objects["y"] = FileObjectOptions{dir.sub("bad.jsonl"), FileFormat::kJsonl, "id", "", ','};
  auto jsonl = make_file_source(options)->count("y");
  REQUIRE_FALSE(jsonl.is_ok());
  CHECK(jsonl.status().code() == Code::kParse);
  CHECK(jsonl.status().message().rfind(dir.sub("bad.jsonl") + ":2:", 0) == 0);
}
