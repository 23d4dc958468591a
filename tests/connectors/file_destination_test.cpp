#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "crmmigrate/connectors/files.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "test_util.hpp"

using cmg::Code;
using cmg::WriteOp;
using cmg::WriteResult;
using cmg::files::file_destination_options_from_json;
using cmg::files::FileDestinationObjectOptions;
using cmg::files::FileDestinationOptions;
using cmg::files::FileFormat;
using cmg::files::make_file_destination;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

void append_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
}

FileDestinationOptions contacts_options(const std::string& path, FileFormat format) {
  FileDestinationOptions o;
  o.objects["contacts"] = FileDestinationObjectOptions{path, format, {"firstname", "lastname", "email"}, {"email"}, ','};
  return o;
}

std::shared_ptr<cmg::Destination> open_dest(const std::string& path, FileFormat format) {
  auto d = make_file_destination(contacts_options(path, format));
  REQUIRE_MESSAGE(d.is_ok(), d.status().to_string());
  return *d;
}

WriteOp upsert(const std::string& key, boost::json::object fields) {
  WriteOp op;
  op.kind = WriteOp::Kind::kUpsert;
  op.idempotency_key = key;
  op.fields = std::move(fields);
  return op;
}

std::vector<WriteResult> write_ok(cmg::Destination& d, const std::vector<WriteOp>& ops) {
  auto r = d.write("contacts", ops);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  REQUIRE(r->size() == ops.size());
  return *r;
}

std::vector<cmg::Record> list_all(cmg::Destination& d, std::size_t batch_size = 500) {
  cmg::ReadOptions ro;
  ro.batch_size = batch_size;
  auto reader = d.list("contacts", ro);
  REQUIRE(reader.is_ok());
  std::vector<cmg::Record> out;
  REQUIRE(cmg::for_each_batch(**reader, [&](cmg::RecordBatch& b) {
            for (auto& r : b) out.push_back(std::move(r));
            return cmg::Status::ok();
          }).is_ok());
  return out;
}

std::string options_error(const std::string& json) {
  auto r = file_destination_options_from_json(boost::json::parse(json), "$.destination.options", "/cfg");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kConfig);
  return r.status().message();
}

}  // namespace

TEST_CASE("file destination options are parsed from JSON and errors name the JSON path") {
  auto ok = file_destination_options_from_json(
      boost::json::parse(R"({"objects": {"contacts": {"path": "out/contacts.jsonl", "fields": ["firstname", "email"],
                                                     "required": ["email"]},
                                        "deals": {"path": "/abs/deals.txt", "format": "csv", "fields": ["name"]},
                                        "notes": {"path": "notes.tsv", "fields": ["body"]}}})"),
      "$.destination.options", "/cfg");
  REQUIRE_MESSAGE(ok.is_ok(), ok.status().to_string());
  const auto& c = ok->objects.at("contacts");
  CHECK(c.path == "/cfg/out/contacts.jsonl");
  CHECK(c.format == FileFormat::kJsonl);
  CHECK(c.fields == std::vector<std::string>{"firstname", "email"});
  CHECK(c.required == std::vector<std::string>{"email"});
  CHECK(ok->objects.at("deals").path == "/abs/deals.txt");
  CHECK(ok->objects.at("deals").format == FileFormat::kCsv);
  CHECK(ok->objects.at("notes").delimiter == '\t');

  CHECK(options_error(R"({"objects": {"contacts": {"path": "a.jsonl", "feilds": ["x"]}}})") ==
        "$.destination.options.objects.contacts.feilds: unknown key (did you mean \"fields\"?)");
  CHECK(options_error(R"({"objects": {"contacts": {"path": "a.jsonl"}}})") ==
        "$.destination.options.objects.contacts: missing key \"fields\" (the destination fields, in column order)");
  CHECK(options_error(R"({"objects": {"contacts": {"path": "a.jsonl", "fields": []}}})") ==
        "$.destination.options.objects.contacts.fields: expected at least one field");
  CHECK(options_error(R"({"objects": {"contacts": {"path": "a.jsonl", "fields": ["a", 3]}}})") ==
        "$.destination.options.objects.contacts.fields[1]: expected a non-empty string");
  CHECK(options_error(R"({"objects": {"contacts": {"path": "a.jsonl", "fields": ["a", "a"]}}})") ==
        "$.destination.options.objects.contacts.fields[1]: duplicate field \"a\"");
  CHECK(options_error(R"({"objects": {"contacts": {"path": "a.jsonl", "fields": ["crm_source_id"]}}})")
            .find("fields[0]: \"crm_source_id\" is added by the destination") != std::string::npos);
  CHECK(options_error(R"({"objects": {"contacts": {"path": "a.jsonl", "fields": ["a"], "required": ["b"]}}})") ==
        "$.destination.options.objects.contacts.required[0]: \"b\" is not in \"fields\"");
  CHECK(options_error(R"({"objects": {"contacts": {"path": "a.xlsx", "fields": ["a"]}}})").find("missing key \"format\"") !=
        std::string::npos);
  CHECK(options_error(R"({"objects": {"contacts": {"path": "a", "format": "xml", "fields": ["a"]}}})") ==
        "$.destination.options.objects.contacts.format: expected \"csv\" or \"jsonl\", got \"xml\"");
  CHECK(options_error(R"({"objects": {"a": {"path": "x.csv", "fields": ["f"]}, "b": {"path": "./x.csv", "fields": ["f"]}}})") ==
        "$.destination.options.objects.b.path: same file as object \"a\"; each object needs its own file");
  CHECK(options_error(R"({"objects": {}})") == "$.destination.options.objects: expected at least one object");
  CHECK(options_error(R"({"object": {}})") == "$.destination.options.object: unknown key (did you mean \"objects\"?)");
}

TEST_CASE("file destination schema has crm_source_id as the unique id property and the configured fields") {
  TempDir dir;
  auto d = open_dest(dir.sub("contacts.jsonl"), FileFormat::kJsonl);
  auto schema = d->schema();
  REQUIRE(schema.is_ok());
  const cmg::ObjectSchema* os = schema->object("contacts");
  REQUIRE(os != nullptr);
  CHECK(os->id_property == "crm_source_id");
  REQUIRE(os->fields.size() == 4);
  CHECK(os->fields[0].name == "crm_source_id");
  CHECK(os->fields[0].unique);
  CHECK_FALSE(os->fields[0].required);
  CHECK(os->fields[3].name == "email");
  CHECK(os->fields[3].required);
  CHECK_FALSE(os->fields[1].required);
  for (const auto& f : os->fields) CHECK(f.type == cmg::FieldType::kString);
  CHECK(d->quota().max_batch == 1000);
  CHECK(d->quota().burst_requests == 0);
  CHECK(d->quota().daily_requests == 0);
  CHECK(d->count("deals").status().code() == Code::kNotFound);
  CHECK(d->write("deals", {}).status().code() == Code::kNotFound);
  // Nothing is created before something is written.
  CHECK_FALSE(std::filesystem::exists(dir.sub("contacts.jsonl")));
}

TEST_CASE("file destination upserting the same key twice keeps one logical record") {
  TempDir dir;
  const std::string path = dir.sub("contacts.jsonl");
  auto d = open_dest(path, FileFormat::kJsonl);
  auto first = write_ok(*d, {upsert("p1", {{"firstname", "Ann"}, {"email", "ann@x.com"}})});
  CHECK(first[0].outcome == WriteResult::Outcome::kCreated);
  CHECK(first[0].status == 201);
  CHECK(first[0].id == "p1");
  const std::string after_first = slurp(path);

  auto again = write_ok(*d, {upsert("p1", {{"firstname", "Ann"}, {"email", "ann@x.com"}, {"crm_source_id", "p1"}})});
  CHECK(again[0].outcome == WriteResult::Outcome::kUpdated);
  CHECK(again[0].status == 200);
  CHECK(again[0].id == "p1");
  CHECK(slurp(path) == after_first);  // a no-op update appends nothing
  CHECK(*d->count("contacts") == 1);

  auto changed = write_ok(*d, {upsert("p1", {{"lastname", "Lee"}})});
  CHECK(changed[0].outcome == WriteResult::Outcome::kUpdated);
  CHECK(*d->count("contacts") == 1);
  auto all = list_all(*d);
  REQUIRE(all.size() == 1);
  CHECK(all[0].id == "p1");
  CHECK(all[0].fields == boost::json::object{{"crm_source_id", "p1"}, {"firstname", "Ann"}, {"lastname", "Lee"}, {"email", "ann@x.com"}});
}

TEST_CASE("file destination writes exact JSONL lines, one complete version per change") {
  TempDir dir;
  const std::string path = dir.sub("out/contacts.jsonl");  // the directory is created
  auto d = open_dest(path, FileFormat::kJsonl);
  auto r = write_ok(*d, {upsert("1", {{"firstname", "Ann \"A\""}, {"email", "a@x.com"}}),
                         upsert("2", {{"firstname", "Bo"}, {"lastname", 42}, {"email", "b@x.com"}}),
                         upsert("1", {{"lastname", "Line\nTwo"}})});
  CHECK(r[0].outcome == WriteResult::Outcome::kCreated);
  CHECK(r[1].outcome == WriteResult::Outcome::kCreated);
  CHECK(r[2].outcome == WriteResult::Outcome::kUpdated);  // same batch: sees the first op
  CHECK(slurp(path) ==
        "{\"crm_source_id\":\"1\",\"firstname\":\"Ann \\\"A\\\"\",\"lastname\":null,\"email\":\"a@x.com\"}\n"
        "{\"crm_source_id\":\"2\",\"firstname\":\"Bo\",\"lastname\":\"42\",\"email\":\"b@x.com\"}\n"
        "{\"crm_source_id\":\"1\",\"firstname\":\"Ann \\\"A\\\"\",\"lastname\":\"Line\\nTwo\",\"email\":\"a@x.com\"}\n");
  CHECK(*d->count("contacts") == 2);
}

TEST_CASE("file destination writes exact RFC 4180 CSV with a header and quoting") {
  TempDir dir;
  const std::string path = dir.sub("contacts.csv");
  auto d = open_dest(path, FileFormat::kCsv);
  write_ok(*d, {upsert("1", {{"firstname", "Bo, Jr"}, {"lastname", "O\"Neil"}, {"email", "b@x.com"}})});
  write_ok(*d, {upsert("2", {{"firstname", "multi\nline"}, {"email", "c@x.com"}}),
                upsert("1", {{"lastname", nullptr}})});
  CHECK(slurp(path) ==
        "crm_source_id,firstname,lastname,email\n"
        "1,\"Bo, Jr\",\"O\"\"Neil\",b@x.com\n"
        "2,\"multi\nline\",,c@x.com\n"
        "1,\"Bo, Jr\",,b@x.com\n");
  // The file is plain CSV that the files source reads back.
  cmg::files::FileSourceOptions so;
  so.objects["contacts"] = cmg::files::FileObjectOptions{path, FileFormat::kCsv, "crm_source_id", "", ','};
  auto src = cmg::files::make_file_source(std::move(so));
  CHECK(*src->count("contacts") == 3);
}

TEST_CASE("file destination rebuilds its index on reopen and the last line for a key wins") {
  for (FileFormat format : {FileFormat::kJsonl, FileFormat::kCsv}) {
    CAPTURE(static_cast<int>(format));
    TempDir dir;
    const std::string path = dir.sub(format == FileFormat::kCsv ? "c.csv" : "c.jsonl");
    {
      auto d = open_dest(path, format);
      write_ok(*d, {upsert("a", {{"firstname", "A1"}, {"email", "a@x.com"}}),
                    upsert("b", {{"firstname", "B, \"q\"\nz"}, {"email", "b@x.com"}})});
      write_ok(*d, {upsert("a", {{"firstname", "A2"}})});
    }
    const std::string before = slurp(path);
    auto d = open_dest(path, format);
    CHECK(slurp(path) == before);
    CHECK(*d->count("contacts") == 2);
    auto all = list_all(*d, 1);
    REQUIRE(all.size() == 2);
    CHECK(all[0].fields.at("firstname") == "A2");
    CHECK(all[0].fields.at("lastname").is_null());
    CHECK(all[1].fields.at("firstname") == "B, \"q\"\nz");
    // A rewrite after reopening is still idempotent, and a new key is still a create.
    auto r = write_ok(*d, {upsert("a", {{"firstname", "A2"}, {"email", "a@x.com"}}), upsert("c", {{"email", "c@x.com"}})});
    CHECK(r[0].outcome == WriteResult::Outcome::kUpdated);
    CHECK(r[1].outcome == WriteResult::Outcome::kCreated);
    CHECK(*d->count("contacts") == 3);
  }
}

TEST_CASE("file destination drops a torn last line on reopen and never reports it as data") {
  SUBCASE("JSONL") {
    TempDir dir;
    const std::string path = dir.sub("c.jsonl");
    { write_ok(*open_dest(path, FileFormat::kJsonl), {upsert("a", {{"email", "a@x.com"}})}); }
    const std::string good = slurp(path);
    append_file(path, "{\"crm_source_id\":\"b\",\"firstname\":null,\"lastname\":null,\"email\":\"b@x.com\"}");  // no LF
    auto d = open_dest(path, FileFormat::kJsonl);
    CHECK(slurp(path) == good);
    CHECK(*d->count("contacts") == 1);
    CHECK(d->find("contacts", "crm_source_id", {"b"})->empty());
    CHECK_FALSE((*d->read("contacts", {"b"}))[0].has_value());
    CHECK(list_all(*d).size() == 1);
    auto r = write_ok(*d, {upsert("b", {{"email", "b@x.com"}})});
    CHECK(r[0].outcome == WriteResult::Outcome::kCreated);
    CHECK(slurp(path) == good + "{\"crm_source_id\":\"b\",\"firstname\":null,\"lastname\":null,\"email\":\"b@x.com\"}\n");
  }
  SUBCASE("CSV torn inside a quoted line break") {
    TempDir dir;
    const std::string path = dir.sub("c.csv");
    { write_ok(*open_dest(path, FileFormat::kCsv), {upsert("a", {{"email", "a@x.com"}})}); }
    const std::string good = slurp(path);
    append_file(path, "b,\"first line\n");  // ends with LF, but inside an open quote
    auto d = open_dest(path, FileFormat::kCsv);
    CHECK(slurp(path) == good);
    CHECK(*d->count("contacts") == 1);
  }
  SUBCASE("a torn CSV header leaves an empty file") {
    TempDir dir;
    const std::string path = dir.sub("c.csv");
    write_file(path, "crm_source_id,firstn");
    auto d = open_dest(path, FileFormat::kCsv);
    CHECK(slurp(path).empty());
    write_ok(*d, {upsert("a", {{"email", "a@x.com"}})});
    CHECK(slurp(path) == "crm_source_id,firstname,lastname,email\na,,,a@x.com\n");
  }
}

TEST_CASE("file destination refuses files it did not write instead of cutting them") {
  TempDir dir;
  const std::string csv = dir.sub("c.csv");
  const std::string stray_quote = "crm_source_id,firstname,lastname,email\na,x\"y,,a@x.com\nb,,,";
  write_file(csv, stray_quote);
  auto r = make_file_destination(contacts_options(csv, FileFormat::kCsv));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kParse);
  CHECK(r.status().message() == csv + ":2: quote inside an unquoted field");
  CHECK(slurp(csv) == stray_quote);  // not cut

  write_file(csv, "id,firstname,lastname,email\n");
  r = make_file_destination(contacts_options(csv, FileFormat::kCsv));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find(csv + ":1: header \"id,firstname,lastname,email\" differs") == 0);

  const std::string jsonl = dir.sub("c.jsonl");
  write_file(jsonl, "{\"crm_source_id\":\"a\",\"phone\":\"1\"}\n");
  r = make_file_destination(contacts_options(jsonl, FileFormat::kJsonl));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find(jsonl + ":1: key \"phone\" is not a field") == 0);

  write_file(jsonl, "{\"firstname\":\"a\"}\n");
  r = make_file_destination(contacts_options(jsonl, FileFormat::kJsonl));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() == jsonl + ":1: missing \"crm_source_id\"");
}

TEST_CASE("file destination rejects unknown fields and missing required values per record") {
  TempDir dir;
  const std::string path = dir.sub("c.jsonl");
  auto d = open_dest(path, FileFormat::kJsonl);
  auto r = write_ok(*d, {upsert("a", {{"firstname", "A"}, {"phone", "123"}}),
                         upsert("b", {{"email", "b@x.com"}}),
                         upsert("c", {{"email", "  "}})});
  CHECK(r[0].outcome == WriteResult::Outcome::kFailed);
  CHECK(r[0].status == 400);
  REQUIRE(r[0].errors.size() == 2);
  CHECK(r[0].errors[0].field == "phone");
  CHECK(r[0].errors[0].code == "PROPERTY_DOESNT_EXIST");
  CHECK(r[0].errors[0].value == "123");
  CHECK(r[0].errors[1].field == "email");
  CHECK(r[0].errors[1].code == "REQUIRED");
  CHECK_FALSE(r[0].retryable);
  CHECK(r[1].outcome == WriteResult::Outcome::kCreated);
  CHECK(r[2].outcome == WriteResult::Outcome::kFailed);
  CHECK(r[2].errors.at(0).code == "REQUIRED");
  // An update may not clear a required field either.
  auto u = write_ok(*d, {upsert("b", {{"email", nullptr}})});
  CHECK(u[0].status == 400);
  CHECK(u[0].errors.at(0).code == "REQUIRED");
  // Only the valid record reached the file.
  CHECK(slurp(path) == "{\"crm_source_id\":\"b\",\"firstname\":null,\"lastname\":null,\"email\":\"b@x.com\"}\n");
  // An upsert without a key.
  auto k = write_ok(*d, {upsert("", {{"email", "z@x.com"}})});
  CHECK(k[0].status == 400);
  CHECK(k[0].errors.at(0).field == "crm_source_id");
  CHECK(k[0].errors.at(0).code == "REQUIRED");
}

TEST_CASE("file destination rejects values it could not read back") {
  TempDir dir;
  auto d = open_dest(dir.sub("c.csv"), FileFormat::kCsv);
  auto r = write_ok(*d, {upsert("a", {{"email", "a@x.com"}, {"firstname", boost::json::array{"x"}}}),
                         upsert("b", {{"email", std::string("b\0c", 3)}}),
                         upsert("c", {{"email", "\xff"}}),
                         upsert("d", {{"email", "d@x.com"}, {"crm_source_id", "other"}}),
                         upsert("e", {{"email", "e@x.com"}, {"firstname", true}})});
  for (std::size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(r[i].status == 400);
    CHECK(r[i].errors.at(0).code == "INVALID_VALUE");
  }
  CHECK(r[4].outcome == WriteResult::Outcome::kCreated);
  CHECK((*d->read("contacts", {"e"}))[0]->fields.at("firstname") == "true");
  CHECK(*d->count("contacts") == 1);
}

TEST_CASE("file destination update of an unknown id is a 404 and of a known id merges") {
  TempDir dir;
  auto d = open_dest(dir.sub("c.jsonl"), FileFormat::kJsonl);
  write_ok(*d, {upsert("a", {{"firstname", "A"}, {"email", "a@x.com"}})});
  WriteOp missing;
  missing.kind = WriteOp::Kind::kUpdate;
  missing.id = "zz";
  missing.fields = {{"firstname", "Z"}};
  WriteOp known;
  known.kind = WriteOp::Kind::kUpdate;
  known.id = "a";
  known.fields = {{"lastname", "Lee"}};
  auto r = write_ok(*d, {missing, known});
  CHECK(r[0].outcome == WriteResult::Outcome::kFailed);
  CHECK(r[0].status == 404);
  CHECK(r[0].errors.at(0).code == "OBJECT_NOT_FOUND");
  CHECK(r[1].outcome == WriteResult::Outcome::kUpdated);
  CHECK(r[1].id == "a");
  auto rec = (*d->read("contacts", {"a"}))[0];
  REQUIRE(rec.has_value());
  CHECK(rec->fields.at("firstname") == "A");
  CHECK(rec->fields.at("lastname") == "Lee");
  CHECK(*d->count("contacts") == 1);
}

TEST_CASE("file destination find and read answer from the index") {
  TempDir dir;
  auto d = open_dest(dir.sub("c.jsonl"), FileFormat::kJsonl);
  write_ok(*d, {upsert("a", {{"firstname", "A"}, {"email", "a@x.com"}}),
                upsert("b", {{"firstname", "B"}, {"email", "b@x.com"}}),
                upsert("c", {{"email", "c@x.com"}})});
  auto by_key = d->find("contacts", "crm_source_id", {"b", "nope", "a", "b"});
  REQUIRE(by_key.is_ok());
  REQUIRE(by_key->size() == 2);
  CHECK((*by_key)[0].id == "b");
  CHECK((*by_key)[0].object == "contacts");
  CHECK((*by_key)[0].fields.at("crm_source_id") == "b");
  CHECK((*by_key)[1].id == "a");
  auto by_email = d->find("contacts", "email", {"c@x.com", ""});
  REQUIRE(by_email.is_ok());
  REQUIRE(by_email->size() == 1);
  CHECK((*by_email)[0].id == "c");
  CHECK(d->find("contacts", "phone", {"1"}).status().code() == Code::kInvalidArgument);
  auto read = d->read("contacts", {"c", "x", "a"});
  REQUIRE(read.is_ok());
  REQUIRE(read->size() == 3);
  CHECK((*read)[0]->id == "c");
  CHECK((*read)[0]->fields.at("firstname").is_null());
  CHECK_FALSE((*read)[1].has_value());
  CHECK((*read)[2]->fields.at("email") == "a@x.com");
  cmg::ReadOptions only;
  only.fields = {"email"};
  auto reader = d->list("contacts", only);
  REQUIRE(reader.is_ok());
  cmg::RecordBatch batch;
  REQUIRE(*(*reader)->next(batch));
  REQUIRE(batch.size() == 3);
  CHECK(batch[0].fields == boost::json::object{{"email", "a@x.com"}});
}

TEST_CASE("file destination is built from a files destination config") {
  TempDir dir;
  cmg::ConnectorConfig c;
  c.connector = "files";
  c.json_path = "$.destination";
  c.options = boost::json::parse(R"({"objects": {"contacts": {"path": "out/contacts.csv", "fields": ["email"]}}})").as_object();
  auto d = cmg::make_destination(c, dir.path());
  REQUIRE_MESSAGE(d.is_ok(), d.status().to_string());
  write_ok(**d, {upsert("1", {{"email", "a@x.com"}})});
  CHECK(slurp(dir.sub("out/contacts.csv")) == "crm_source_id,email\n1,a@x.com\n");

  c.options = boost::json::parse(R"({"objects": {"contacts": {"path": "x.csv"}}})").as_object();
  auto bad = cmg::make_destination(c, dir.path());
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == Code::kConfig);
  CHECK(bad.status().message().rfind("$.destination.options.objects.contacts: missing key \"fields\"", 0) == 0);
}
