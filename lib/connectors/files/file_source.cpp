#include <optional>
#include <string>

#include "connectors/files/files_internal.hpp"
#include "crmmigrate/connectors/files.hpp"

namespace cmg::files {

namespace {

// Records of the JSONL files whose keys make up the schema (a file has no header).
constexpr std::size_t kSchemaSampleLines = 100;

// Wraps a CSV or JSONL record reader: batching and the `since` filter of ReadOptions.
template <typename Inner>
class FileRecordReader final : public RecordReader {
 public:
  FileRecordReader(std::unique_ptr<Inner> inner, const ReadOptions& opts)
      : inner_(std::move(inner)), opts_(opts) {}

  Result<bool> next(RecordBatch& out) override {
    return internal::fill_batch(*inner_, out, opts_.batch_size, [this](const Record& r) { return keep(r); });
  }

 private:
  // A record without a timestamp (0) is kept: it may have changed and dropping it would be silent.
  bool keep(const Record& r) const {
    if (!opts_.since_updated_at || r.updated_at == 0) return true;
    if (r.updated_at != *opts_.since_updated_at) return r.updated_at > *opts_.since_updated_at;
    return r.id >= opts_.since_id;
  }

  std::unique_ptr<Inner> inner_;
  ReadOptions opts_;
};

class FileSource final : public Source {
 public:
  explicit FileSource(FileSourceOptions options) : options_(std::move(options)) {}

  Result<Schema> schema() override {
    Schema schema;
    for (const auto& [name, object] : options_.objects) {
      ObjectSchema os;
      os.name = name;
      CMG_ASSIGN_OR_RETURN(std::vector<std::string> names, field_names(object));
      for (auto& field : names) {
        FieldSchema fs;
        fs.label = field;
        fs.name = std::move(field);
        fs.type = object.format == FileFormat::kCsv ? FieldType::kString : FieldType::kJson;
        os.fields.push_back(std::move(fs));
      }
      schema.objects.emplace(name, std::move(os));
    }
    return schema;
  }

  Result<std::int64_t> count(std::string_view object) override {
    CMG_ASSIGN_OR_RETURN(const FileObjectOptions* o, find(object));
    std::int64_t n = 0;
    if (o->format == FileFormat::kCsv) {
      // Record ends only: the extract parses and checks every field (and names a malformed row).
      CMG_ASSIGN_OR_RETURN(CsvReader reader, CsvReader::open(o->path, csv_options(*o)));
      CMG_ASSIGN_OR_RETURN(std::uint64_t rows, reader.count_rows());
      n = static_cast<std::int64_t>(rows);
    } else {
      CMG_ASSIGN_OR_RETURN(JsonlReader reader, JsonlReader::open(o->path, options_.jsonl));
      boost::json::object obj;
      for (;;) {
        CMG_ASSIGN_OR_RETURN(bool got, reader.next_object(obj));
        if (!got) break;
        ++n;
      }
    }
    return n;
  }

  Result<std::unique_ptr<RecordReader>> read(std::string_view object, const ReadOptions& opts) override {
    CMG_ASSIGN_OR_RETURN(const FileObjectOptions* o, find(object));
    if (opts.batch_size == 0) return invalid_argument("file source: batch size must be positive");
    if (o->format == FileFormat::kCsv) {
      CsvRecordOptions ro{std::string(object), o->id, o->updated_at, opts.fields};
      CMG_ASSIGN_OR_RETURN(auto inner, CsvRecordReader::open(o->path, csv_options(*o), std::move(ro)));
      return std::unique_ptr<RecordReader>(new FileRecordReader<CsvRecordReader>(std::move(inner), opts));
    }
    JsonlRecordOptions ro{std::string(object), o->id, o->updated_at, opts.fields};
    CMG_ASSIGN_OR_RETURN(auto inner, JsonlRecordReader::open(o->path, options_.jsonl, std::move(ro)));
    return std::unique_ptr<RecordReader>(new FileRecordReader<JsonlRecordReader>(std::move(inner), opts));
  }

 private:
  Result<const FileObjectOptions*> find(std::string_view object) const {
    auto it = options_.objects.find(object);
    if (it == options_.objects.end()) {
      return not_found("file source has no object \"" + std::string(object) + "\"");
    }
    return &it->second;
  }

  CsvOptions csv_options(const FileObjectOptions& o) const {
    CsvOptions c = options_.csv;
    c.delimiter = o.delimiter;
    return c;
  }

  Result<std::vector<std::string>> field_names(const FileObjectOptions& o) const {
    if (o.format == FileFormat::kCsv) {
      CMG_ASSIGN_OR_RETURN(CsvReader reader, CsvReader::open(o.path, csv_options(o)));
      return reader.header();
    }
    CMG_ASSIGN_OR_RETURN(JsonlReader reader, JsonlReader::open(o.path, options_.jsonl));
    std::vector<std::string> names;
    boost::json::object seen;  // insertion-ordered set of keys
    boost::json::object obj;
    for (std::size_t i = 0; i < kSchemaSampleLines; ++i) {
      CMG_ASSIGN_OR_RETURN(bool got, reader.next_object(obj));
      if (!got) break;
      for (const auto& kv : obj) {
        if (seen.emplace(kv.key(), nullptr).second) names.emplace_back(kv.key());
      }
    }
    return names;
  }

  const FileSourceOptions options_;
};

// --- options from JSON -----------------------------------------------------------------------

using internal::check_keys;
using internal::member_path;

// The string at `key`: nullopt when absent; kConfig when not a string (or empty and `required`).
Result<std::optional<std::string>> string_member(const boost::json::object& obj, std::string_view path,
                                                 std::string_view key, bool non_empty) {
  const boost::json::value* v = obj.if_contains(boost::json::string_view(key.data(), key.size()));
  if (v == nullptr) return std::optional<std::string>();
  const auto* s = v->if_string();
  if (s == nullptr) return config_error(member_path(path, key) + ": expected a string");
  if (non_empty && s->empty()) return config_error(member_path(path, key) + ": expected a non-empty string");
  return std::optional<std::string>(std::string(s->data(), s->size()));
}

Result<FileObjectOptions> object_options_from_json(const boost::json::value& v, const std::string& path,
                                                   const std::string& base_dir) {
  const auto* obj = v.if_object();
  if (obj == nullptr) return config_error(path + ": expected an object");
  CMG_RETURN_IF_ERROR(check_keys(*obj, path, {"path", "format", "id", "updated_at", "delimiter"}));
  FileObjectOptions o;

  CMG_ASSIGN_OR_RETURN(auto file, string_member(*obj, path, "path", true));
  if (!file) return config_error(path + ": missing key \"path\" (the CSV or JSONL file)");
  CMG_ASSIGN_OR_RETURN(auto format, string_member(*obj, path, "format", true));
  CMG_ASSIGN_OR_RETURN(internal::FileSpec spec, internal::file_spec(*file, format, path, base_dir));
  o.path = std::move(spec.path);
  o.format = spec.format;
  o.delimiter = spec.delimiter;

  CMG_ASSIGN_OR_RETURN(auto id, string_member(*obj, path, "id", true));
  if (id) o.id = std::move(*id);
  CMG_ASSIGN_OR_RETURN(auto updated_at, string_member(*obj, path, "updated_at", false));
  if (updated_at) o.updated_at = std::move(*updated_at);

  CMG_ASSIGN_OR_RETURN(auto delimiter, string_member(*obj, path, "delimiter", false));
  if (delimiter) {
    const std::string dpath = member_path(path, "delimiter");
    if (o.format != FileFormat::kCsv) return config_error(dpath + ": only CSV files have a delimiter");
    if (delimiter->size() != 1 || !internal::delimiter_is_valid((*delimiter)[0])) {
      return config_error(dpath + ": expected one ASCII character other than a quote, CR, LF or NUL, got " +
                          internal::quoted_excerpt(*delimiter));
    }
    o.delimiter = (*delimiter)[0];
  }
  return o;
}

}  // namespace

Result<FileSourceOptions> file_source_options_from_json(const boost::json::value& v, std::string_view json_path,
                                                        const std::string& base_dir) {
  FileSourceOptions options;
  CMG_RETURN_IF_ERROR(internal::for_each_object(
      v, json_path, [&](std::string_view name, const boost::json::value& value, const std::string& path) -> Status {
        CMG_ASSIGN_OR_RETURN(FileObjectOptions o, object_options_from_json(value, path, base_dir));
        options.objects.emplace(std::string(name), std::move(o));
        return Status::ok();
      }));
  return options;
}

std::shared_ptr<Source> make_file_source(FileSourceOptions options) {
  return std::make_shared<FileSource>(std::move(options));
}

}  // namespace cmg::files
