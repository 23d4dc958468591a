// FileDestination: an append-only JSONL/CSV sink with upsert on crm_source_id (files.hpp documents
// the file format and the Destination behaviour).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "connectors/files/files_internal.hpp"
#include "crmmigrate/connectors/files.hpp"

namespace cmg::files {

namespace {

namespace json = boost::json;

const std::string kIdProperty(kFileDestinationIdProperty);

// One value per schema field (in `fields` order); nullopt = no value.
using Values = std::vector<std::optional<std::string>>;

std::string excerpt(std::string_view s) { return internal::quoted_excerpt(s); }

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

// An owned POSIX file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Status errno_error(const std::string& what, int err) { return io_error(what + ": " + std::strerror(err)); }

struct ObjectState {
  std::string name;
  FileDestinationObjectOptions options;
  ObjectSchema schema;
  std::map<std::string, std::size_t, std::less<>> field_index;  // field name → index in Values
  std::map<std::string, Values, std::less<>> records;            // crm_source_id → latest version
  std::uint64_t size = 0;  // bytes of the file we know about (complete records only)
  Fd fd;                   // append descriptor, opened by the first write that appends
  // Set when the file's content is no longer known (fsync failed, or a failed append could not be
  // undone); every later write returns it. Reopening the destination re-reads the file.
  Status broken;
};

struct State {
  std::mutex mu;
  CsvOptions csv;
  JsonlOptions jsonl;
  std::map<std::string, ObjectState, std::less<>> objects;
};

Record to_record(const ObjectState& s, const std::string& key, const Values& values,
                 const std::vector<std::string>& only) {
  auto wanted = [&](std::string_view name) {
    return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
  };
  Record r;
  r.object = s.name;
  r.id = key;
  if (wanted(kIdProperty)) r.fields[kIdProperty] = key;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::string& f = s.options.fields[i];
    if (!wanted(f)) continue;
    if (values[i]) {
      r.fields[f] = json::string(*values[i]);
    } else {
      r.fields[f] = nullptr;
    }
  }
  return r;
}

WriteResult failed(int status, std::vector<FieldError> errors, std::string message = {}) {
  WriteResult r;
  r.outcome = WriteResult::Outcome::kFailed;
  r.status = status;
  if (message.empty()) {
    message = errors.size() == 1 ? errors.front().message : std::to_string(errors.size()) + " properties are invalid";
  }
  r.message = std::move(message);
  r.errors = std::move(errors);
  return r;
}

WriteResult succeeded(bool created, const std::string& key) {
  WriteResult r;
  r.outcome = created ? WriteResult::Outcome::kCreated : WriteResult::Outcome::kUpdated;
  r.status = created ? 201 : 200;
  r.id = key;
  return r;
}

// --- opening: torn tail and index ------------------------------------------------------------

// Length of the file's prefix made of complete records: up to and including the last line end
// that closes a record. The readers do not report byte offsets, so the boundary is found here:
// a JSONL line cannot hold a raw LF (JSON escapes it), a CSV quoted field can, so CSV is scanned
// with the quoting rules of CsvWriter's output. Outside quotes, a quote inside a field or a CR
// not followed by LF is something CsvWriter never writes: that is kParse (not a torn tail), so
// a file in another dialect is never cut.
Result<std::uint64_t> complete_prefix(const std::string& path, const FileDestinationObjectOptions& o,
                                      std::unique_ptr<std::istream> in) {
  enum class Csv { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted, kCr };
  Csv st = Csv::kFieldStart;
  std::uint64_t offset = 0, boundary = 0, line = 1;
  std::vector<char> buf(1u << 20);
  for (;;) {
    in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<std::size_t>(in->gcount());
    if (got == 0) {
      if (in->bad()) return io_error(path + ": read failed");
      break;
    }
    for (std::size_t i = 0; i < got; ++i, ++offset) {
      const char c = buf[i];
      if (o.format == FileFormat::kJsonl) {
        if (c == '\n') boundary = offset + 1;
        continue;
      }
      switch (st) {
        case Csv::kQuoted:
          if (c == '"') st = Csv::kQuoteInQuoted;
          break;
        case Csv::kQuoteInQuoted:
        case Csv::kFieldStart:
        case Csv::kUnquoted:
        case Csv::kCr:
          if (st == Csv::kCr && c != '\n') {
            return internal::located_error(path, line, "carriage return without a line feed (not written by the files destination)");
          }
          if (c == '\n') {
            boundary = offset + 1;
            st = Csv::kFieldStart;
          } else if (c == '\r') {
            st = Csv::kCr;
          } else if (c == o.delimiter) {
            st = Csv::kFieldStart;
          } else if (c == '"') {
            if (st == Csv::kFieldStart) {
              st = Csv::kQuoted;
            } else if (st == Csv::kQuoteInQuoted) {
              st = Csv::kQuoted;
            } else {
              return internal::located_error(path, line, "quote inside an unquoted field");
            }
          } else if (st == Csv::kQuoteInQuoted) {
            return internal::located_error(path, line, "character after a closing quote");
          } else {
            st = Csv::kUnquoted;
          }
          break;
      }
      if (c == '\n') ++line;
    }
  }
  return boundary;
}

Status load_jsonl(ObjectState& s, const JsonlOptions& jsonl) {
  const std::string& path = s.options.path;
  CMG_ASSIGN_OR_RETURN(JsonlReader reader, JsonlReader::open(path, jsonl));
  json::object obj;
  for (;;) {
    CMG_ASSIGN_OR_RETURN(bool got, reader.next_object(obj));
    if (!got) break;
    Values values(s.options.fields.size());
    std::optional<std::string> key;
    for (const auto& kv : obj) {
      const std::string_view name(kv.key().data(), kv.key().size());
      const json::value& v = kv.value();
      if (name == kIdProperty) {
        if (!v.is_string() || v.get_string().empty()) {
          return internal::located_error(path, reader.line(), "\"" + kIdProperty + "\" must be a non-empty string");
        }
        key.emplace(v.get_string().data(), v.get_string().size());
        continue;
      }
      auto it = s.field_index.find(name);
      if (it == s.field_index.end()) {
        return internal::located_error(path, reader.line(), "key " + excerpt(name) + " is not a field of object \"" +
                                                                s.name + "\" (were \"fields\" changed?)");
      }
      if (v.is_string()) {
        values[it->second].emplace(v.get_string().data(), v.get_string().size());
      } else if (!v.is_null()) {
        return internal::located_error(path, reader.line(), "value of " + excerpt(name) + " is not a string or null");
      }
    }
    if (!key) return internal::located_error(path, reader.line(), "missing \"" + kIdProperty + "\"");
    s.records.insert_or_assign(std::move(*key), std::move(values));
  }
  return Status::ok();
}

std::vector<std::string> csv_header(const FileDestinationObjectOptions& o) {
  std::vector<std::string> h{kIdProperty};
  h.insert(h.end(), o.fields.begin(), o.fields.end());
  return h;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out.append(out.empty() ? "" : ",").append(n);
  return out;
}

Status load_csv(ObjectState& s, CsvOptions csv) {
  const std::string& path = s.options.path;
  csv.delimiter = s.options.delimiter;
  CMG_ASSIGN_OR_RETURN(CsvReader reader, CsvReader::open(path, csv));
  const std::vector<std::string> expected = csv_header(s.options);
  if (reader.header() != expected) {
    return internal::located_error(path, 1, "header " + internal::quoted_excerpt(joined(reader.header()), 200) + " differs from " +
                                                internal::quoted_excerpt(joined(expected), 200) + " (were \"fields\" changed?)");
  }
  std::vector<std::string_view> row;
  for (;;) {
    CMG_ASSIGN_OR_RETURN(bool got, reader.next_row(row));
    if (!got) break;
    if (row[0].empty()) return internal::located_error(path, reader.row_line(), "empty \"" + kIdProperty + "\"");
    Values values(s.options.fields.size());
    for (std::size_t i = 1; i < row.size(); ++i) {
      if (!row[i].empty()) values[i - 1].emplace(row[i]);
    }
    s.records.insert_or_assign(std::string(row[0]), std::move(values));
  }
  return Status::ok();
}

// Removes a torn tail, then reads the file into the index. A missing file is an empty object.
Status open_object(ObjectState& s, const State& state) {
  const std::string& path = s.options.path;
  auto in = internal::open_input(path);
  if (!in.is_ok()) {
    if (in.status().code() == Code::kNotFound) return Status::ok();
    return in.status();
  }
  CMG_ASSIGN_OR_RETURN(std::uint64_t keep, complete_prefix(path, s.options, std::move(in).value()));
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return io_error("cannot size " + path + ": " + ec.message());
  if (keep < size) {
    // Bytes after the last complete record were never acknowledged by write() (it returns only
    // after the whole batch, line ends included, is fsynced): drop them.
    if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
      return errno_error("cannot remove the torn last line of " + path, errno);
    }
  }
  s.size = keep;
  if (keep == 0) return Status::ok();
  return s.options.format == FileFormat::kJsonl ? load_jsonl(s, state.jsonl) : load_csv(s, state.csv);
}

// --- options ---------------------------------------------------------------------------------

using internal::check_keys;
using internal::member_path;

// The absolute, normalised form of `path` (as is when that fails): two objects may not share it.
std::string normalised(const std::string& path) {
  std::error_code ec;
  std::string norm = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (ec) norm = path;
  return norm;
}

// Checks what the JSON parser also checks (with JSON paths), for options built in code.
Status check_options(const FileDestinationOptions& options) {
  if (options.objects.empty()) return invalid_argument("file destination: no objects");
  std::map<std::string, std::string> paths;  // normalised path → object
  for (const auto& [name, o] : options.objects) {
    const std::string where = "file destination object \"" + name + "\"";
    if (o.path.empty()) return invalid_argument(where + ": empty path");
    auto [it, fresh] = paths.emplace(normalised(o.path), name);
    if (!fresh) return invalid_argument(where + ": same file as object \"" + it->second + "\" (" + o.path + ")");
    if (o.fields.empty()) return invalid_argument(where + ": no fields");
    std::set<std::string_view> seen;
    for (const auto& f : o.fields) {
      if (f.empty()) return invalid_argument(where + ": empty field name");
      if (f == kIdProperty) return invalid_argument(where + ": \"" + kIdProperty + "\" is added by the destination");
      if (!seen.insert(f).second) return invalid_argument(where + ": duplicate field " + excerpt(f));
    }
    for (const auto& r : o.required) {
      if (!seen.count(r)) return invalid_argument(where + ": required field " + excerpt(r) + " is not in fields");
    }
    if (o.format == FileFormat::kCsv && !internal::delimiter_is_valid(o.delimiter)) {
      return invalid_argument(where + ": invalid CSV delimiter");
    }
  }
  return Status::ok();
}

std::string index_path(std::string_view parent, std::size_t i) {
  return std::string(parent) + "[" + std::to_string(i) + "]";
}

// The array of non-empty strings at `key`; nullopt when absent.
Result<std::optional<std::vector<std::string>>> names_member(const json::object& obj, std::string_view path,
                                                             std::string_view key) {
  const json::value* v = obj.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) return std::optional<std::vector<std::string>>();
  const std::string apath = member_path(path, key);
  const auto* a = v->if_array();
  if (a == nullptr) return config_error(apath + ": expected an array of field names");
  std::vector<std::string> names;
  for (std::size_t i = 0; i < a->size(); ++i) {
    const auto* s = (*a)[i].if_string();
    if (s == nullptr || s->empty()) return config_error(index_path(apath, i) + ": expected a non-empty string");
    names.emplace_back(s->data(), s->size());
  }
  return std::optional<std::vector<std::string>>(std::move(names));
}

Result<FileDestinationObjectOptions> object_options_from_json(const json::value& v, const std::string& path,
                                                              const std::string& base_dir) {
  const auto* obj = v.if_object();
  if (obj == nullptr) return config_error(path + ": expected an object");
  CMG_RETURN_IF_ERROR(check_keys(*obj, path, {"path", "format", "fields", "required"}));
  FileDestinationObjectOptions o;

  const json::value* pv = obj->if_contains("path");
  if (pv == nullptr) return config_error(path + ": missing key \"path\" (the CSV or JSONL file to write)");
  if (!pv->is_string() || pv->get_string().empty()) {
    return config_error(member_path(path, "path") + ": expected a non-empty string");
  }
  const std::string file(pv->get_string().data(), pv->get_string().size());
  std::optional<std::string_view> format;
  if (const json::value* fv = obj->if_contains("format")) {
    if (!fv->is_string()) return config_error(member_path(path, "format") + ": expected a string");
    format.emplace(fv->get_string().data(), fv->get_string().size());
  }
  CMG_ASSIGN_OR_RETURN(internal::FileSpec spec, internal::file_spec(file, format, path, base_dir));
  o.path = std::move(spec.path);
  o.format = spec.format;
  o.delimiter = spec.delimiter;

  const std::string fields_path = member_path(path, "fields");
  CMG_ASSIGN_OR_RETURN(auto fields, names_member(*obj, path, "fields"));
  if (!fields) return config_error(path + ": missing key \"fields\" (the destination fields, in column order)");
  if (fields->empty()) return config_error(fields_path + ": expected at least one field");
  for (std::size_t i = 0; i < fields->size(); ++i) {
    const std::string& f = (*fields)[i];
    if (f == kIdProperty) {
      return config_error(index_path(fields_path, i) + ": \"" + kIdProperty +
                          "\" is added by the destination (it holds the source id); remove it");
    }
    if (std::find(fields->begin(), fields->begin() + static_cast<std::ptrdiff_t>(i), f) !=
        fields->begin() + static_cast<std::ptrdiff_t>(i)) {
      return config_error(index_path(fields_path, i) + ": duplicate field " + excerpt(f));
    }
  }
  o.fields = std::move(*fields);

  CMG_ASSIGN_OR_RETURN(auto required, names_member(*obj, path, "required"));
  if (required) {
    const std::string rpath = member_path(path, "required");
    for (std::size_t i = 0; i < required->size(); ++i) {
      if (std::find(o.fields.begin(), o.fields.end(), (*required)[i]) == o.fields.end()) {
        return config_error(index_path(rpath, i) + ": " + excerpt((*required)[i]) + " is not in \"fields\"");
      }
    }
    o.required = std::move(*required);
  }
  return o;
}

// --- the destination -------------------------------------------------------------------------

// Streams the latest version of each record in key order. Each batch is taken under the lock,
// resuming after the last key returned, so writes may happen between batches.
class IndexReader final : public RecordReader {
 public:
  IndexReader(std::shared_ptr<State> state, ObjectState* object, ReadOptions opts)
      : state_(std::move(state)), object_(object), opts_(std::move(opts)) {}

  Result<bool> next(RecordBatch& out) override {
    out.clear();
    if (done_) return false;
    std::lock_guard<std::mutex> lock(state_->mu);
    const auto& records = object_->records;
    auto it = started_ ? records.upper_bound(last_) : records.begin();
    for (; it != records.end() && out.size() < opts_.batch_size; ++it) {
      out.push_back(to_record(*object_, it->first, it->second, opts_.fields));
    }
    started_ = true;
    if (out.empty()) {
      done_ = true;
      return false;
    }
    last_ = out.back().id;
    return true;
  }

 private:
  std::shared_ptr<State> state_;
  ObjectState* object_;  // owned by state_ (map nodes are stable)
  ReadOptions opts_;
  std::string last_;
  bool started_ = false;
  bool done_ = false;
};

class FileDestination final : public Destination {
 public:
  explicit FileDestination(std::shared_ptr<State> state) : state_(std::move(state)) {}

  Result<Schema> schema() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    Schema schema;
    for (const auto& [name, s] : state_->objects) schema.objects.emplace(name, s.schema);
    return schema;
  }

  Result<std::int64_t> count(std::string_view object) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    CMG_ASSIGN_OR_RETURN(ObjectState * s, find_object(object));
    return static_cast<std::int64_t>(s->records.size());
  }

  Result<std::unique_ptr<RecordReader>> list(std::string_view object, const ReadOptions& opts) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    CMG_ASSIGN_OR_RETURN(ObjectState * s, find_object(object));
    if (opts.batch_size == 0) return invalid_argument("list of " + s->name + ": batch_size must be at least 1");
    return std::unique_ptr<RecordReader>(new IndexReader(state_, s, opts));
  }

  Result<std::vector<Record>> find(std::string_view object, std::string_view field,
                                   const std::vector<std::string>& values) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    CMG_ASSIGN_OR_RETURN(ObjectState * s, find_object(object));
    std::vector<Record> out;
    if (field == kIdProperty) {
      std::set<std::string_view> done;
      for (const auto& v : values) {
        if (!done.insert(v).second) continue;
        auto it = s->records.find(v);
        if (it != s->records.end()) out.push_back(to_record(*s, it->first, it->second, {}));
      }
      return out;
    }
    auto fi = s->field_index.find(field);
    if (fi == s->field_index.end()) {
      return invalid_argument("find on " + s->name + ": no field '" + std::string(field) + "'");
    }
    std::set<std::string_view> wanted;
    for (const auto& v : values) {
      if (!is_blank(v)) wanted.insert(v);
    }
    for (const auto& [key, vals] : s->records) {
      const auto& v = vals[fi->second];
      if (v && wanted.count(*v)) out.push_back(to_record(*s, key, vals, {}));
    }
    return out;
  }

  Result<std::vector<std::optional<Record>>> read(std::string_view object, const std::vector<std::string>& ids) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    CMG_ASSIGN_OR_RETURN(ObjectState * s, find_object(object));
    std::vector<std::optional<Record>> out;
    out.reserve(ids.size());
    for (const auto& id : ids) {
      auto it = s->records.find(id);
      if (it == s->records.end()) {
        out.emplace_back(std::nullopt);
      } else {
        out.emplace_back(to_record(*s, it->first, it->second, {}));
      }
    }
    return out;
  }

  Result<std::vector<WriteResult>> write(std::string_view object, const std::vector<WriteOp>& ops) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    CMG_ASSIGN_OR_RETURN(ObjectState * s, find_object(object));
    if (!s->broken.is_ok()) return s->broken;
    std::vector<WriteResult> results;
    results.reserve(ops.size());
    // Versions written by this call, applied to the index only once the lines are durable.
    std::map<std::string, Values, std::less<>> staged;
    std::string lines;
    for (const auto& op : ops) results.push_back(apply(*s, op, staged, lines));
    if (lines.empty()) return results;
    if (s->options.format == FileFormat::kCsv && s->size == 0) {
      std::ostringstream header;
      CsvWriter w(header, CsvWriteOptions{s->options.delimiter, false});
      CMG_RETURN_IF_ERROR(w.write_row(csv_header(s->options)));
      lines.insert(0, header.str());
    }
    CMG_RETURN_IF_ERROR(append(*s, lines));
    for (auto& [key, values] : staged) s->records.insert_or_assign(key, std::move(values));
    return results;
  }

  Quota quota() const override {
    Quota q;
    q.max_batch = 1000;
    return q;
  }

 private:
  Result<ObjectState*> find_object(std::string_view object) {
    auto it = state_->objects.find(object);
    if (it == state_->objects.end()) {
      return not_found("file destination has no object \"" + std::string(object) + "\"");
    }
    return &it->second;
  }

  // Why `text` cannot be stored in this object's file, or empty when it can. Values longer than
  // the read-back limits are refused so that every file we write can be reopened.
  std::string value_problem(const ObjectState& s, std::string_view text) const {
    if (internal::utf8_invalid_offset(text.data(), text.size()) != text.size()) return "invalid UTF-8";
    if (s.options.format == FileFormat::kCsv) {
      if (text.find('\0') != std::string_view::npos) return "a NUL byte (CSV cannot hold one)";
      if (text.size() > state_->csv.max_field_bytes) {
        return std::to_string(text.size()) + " bytes, over the " + std::to_string(state_->csv.max_field_bytes) +
               "-byte field limit";
      }
    }
    return {};
  }

  // Validates one op against the current state (the index plus this call's staged versions) and,
  // when it changes the record, serialises the new version onto `lines`.
  WriteResult apply(const ObjectState& s, const WriteOp& op, std::map<std::string, Values, std::less<>>& staged,
                    std::string& lines) const {
    const bool upsert = op.kind == WriteOp::Kind::kUpsert;
    const std::string& key = upsert ? op.idempotency_key : op.id;
    const Values* existing = nullptr;
    if (auto it = staged.find(key); it != staged.end()) {
      existing = &it->second;
    } else if (auto jt = s.records.find(key); jt != s.records.end()) {
      existing = &jt->second;
    }
    if (!upsert && existing == nullptr) {
      std::string msg = "No " + s.name + " record with id " + excerpt(key);
      return failed(404, {FieldError{"id", key, "OBJECT_NOT_FOUND", msg}}, msg);
    }
    if (upsert) {
      if (key.empty()) {
        return failed(400, {FieldError{kIdProperty, "", "REQUIRED",
                                       "an upsert needs a value for the id property \"" + kIdProperty + "\""}});
      }
      std::string problem = value_problem(s, key);
      if (!problem.empty()) {
        return failed(400, {FieldError{kIdProperty, key, "INVALID_VALUE",
                                       "\"" + kIdProperty + "\" " + excerpt(key) + " has " + problem}});
      }
    }

    std::vector<FieldError> errors;
    Values merged = existing ? *existing : Values(s.options.fields.size());
    for (const auto& kv : op.fields) {
      const std::string name(kv.key().data(), kv.key().size());
      const json::value& v = kv.value();
      if (name == kIdProperty) {
        if (value_to_text(v) != key) {
          errors.push_back(FieldError{name, value_to_text(v), "INVALID_VALUE",
                                      "\"" + kIdProperty + "\" differs from the record's key " + excerpt(key)});
        }
        continue;
      }
      auto it = s.field_index.find(name);
      if (it == s.field_index.end()) {
        errors.push_back(FieldError{name, value_to_text(v), "PROPERTY_DOESNT_EXIST",
                                    "Property " + excerpt(name) + " does not exist on " + s.name});
        continue;
      }
      if (v.is_null()) {
        merged[it->second].reset();
        continue;
      }
      if (v.is_array() || v.is_object()) {
        errors.push_back(FieldError{name, value_to_text(v), "INVALID_VALUE",
                                    excerpt(name) + " takes text, not " + (v.is_array() ? "an array" : "an object")});
        continue;
      }
      std::string text = v.is_string() ? std::string(v.get_string().data(), v.get_string().size()) : value_to_text(v);
      std::string problem = value_problem(s, text);
      if (!problem.empty()) {
        errors.push_back(FieldError{name, text, "INVALID_VALUE", excerpt(name) + " has " + problem});
        continue;
      }
      merged[it->second] = std::move(text);
    }
    for (const auto& r : s.options.required) {
      const auto& v = merged[s.field_index.at(r)];
      if (!v || is_blank(*v)) {
        errors.push_back(FieldError{r, v ? *v : std::string(), "REQUIRED", excerpt(r) + " is required"});
      }
    }
    if (!errors.empty()) return failed(400, std::move(errors));
    if (existing && merged == *existing) return succeeded(false, key);

    std::ostringstream out;
    Status st;
    std::size_t limit = 0;
    if (s.options.format == FileFormat::kJsonl) {
      json::object line;
      line[kIdProperty] = key;
      for (std::size_t i = 0; i < merged.size(); ++i) {
        if (merged[i]) {
          line[s.options.fields[i]] = json::string(*merged[i]);
        } else {
          line[s.options.fields[i]] = nullptr;
        }
      }
      JsonlWriter w(out);
      st = w.write(line);
      limit = state_->jsonl.max_line_bytes;
    } else {
      std::vector<std::string_view> row;
      row.reserve(merged.size() + 1);
      row.emplace_back(key);
      for (const auto& v : merged) row.emplace_back(v ? std::string_view(*v) : std::string_view());
      CsvWriter w(out, CsvWriteOptions{s.options.delimiter, false});
      st = w.write_row(row);
      limit = state_->csv.max_record_bytes;
    }
    if (!st.is_ok()) return failed(400, {FieldError{"", "", "INVALID_VALUE", st.message()}});
    std::string text = std::move(out).str();
    if (text.size() > limit) {
      return failed(400, {FieldError{"", "", "INVALID_VALUE",
                                     "the record is " + std::to_string(text.size()) + " bytes, over the " +
                                         std::to_string(limit) + "-byte limit the file is read back with"}});
    }
    lines += text;
    staged.insert_or_assign(key, std::move(merged));
    return succeeded(existing == nullptr, key);
  }

  // Opens the file for appending, creating it (and its directories) when missing.
  Status open_for_append(ObjectState& s) {
    const std::string& path = s.options.path;
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      const std::filesystem::path parent = std::filesystem::path(path).parent_path();
      std::error_code ec;
      if (!parent.empty()) std::filesystem::create_directories(parent, ec);
      if (ec) return io_error("cannot create the directory of " + path + ": " + ec.message());
      fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0) return errno_error("cannot create " + path, errno);
      // The new directory entry must be durable too, or a crash could lose the whole file.
      Fd dir(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (dir.get() >= 0) (void)::fsync(dir.get());
    } else if (fd < 0) {
      return errno_error("cannot open " + path + " for appending", errno);
    }
    s.fd = Fd(fd);
    return Status::ok();
  }

  // Appends `bytes` and fsyncs once. On failure the file is cut back to its previous size.
  Status append(ObjectState& s, const std::string& bytes) {
    const std::string& path = s.options.path;
    if (s.fd.get() < 0) CMG_RETURN_IF_ERROR(open_for_append(s));
    struct stat sb {};
    if (::fstat(s.fd.get(), &sb) != 0) return errno_error("cannot stat " + path, errno);
    if (static_cast<std::uint64_t>(sb.st_size) != s.size) {
      // Someone else wrote to (or cut) the file: the index no longer describes it.
      s.broken = io_error(path + " changed since the files destination opened it (" + std::to_string(sb.st_size) +
                          " bytes, expected " + std::to_string(s.size) + "); reopen the destination");
      return s.broken;
    }
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(s.fd.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        const Status err = errno_error("cannot append to " + path, errno);
        roll_back(s);
        return err;
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(s.fd.get()) != 0) {
      const Status err = errno_error("cannot fsync " + path, errno);
      roll_back(s);
      // After a failed fsync the kernel may have dropped dirty pages: trust nothing until reopen.
      s.broken = io_error(err.message() + "; reopen the destination");
      return err;
    }
    s.size += bytes.size();
    return Status::ok();
  }

  void roll_back(ObjectState& s) {
    if (::ftruncate(s.fd.get(), static_cast<off_t>(s.size)) != 0) {
      s.broken = errno_error("cannot undo a failed append to " + s.options.path + " (reopen the destination)", errno);
    }
  }

  std::shared_ptr<State> state_;
};

}  // namespace

Result<FileDestinationOptions> file_destination_options_from_json(const boost::json::value& v,
                                                                  std::string_view json_path,
                                                                  const std::string& base_dir) {
  FileDestinationOptions options;
  std::map<std::string, std::string> paths;  // normalised path → object
  CMG_RETURN_IF_ERROR(internal::for_each_object(
      v, json_path, [&](std::string_view name, const json::value& value, const std::string& opath) -> Status {
        CMG_ASSIGN_OR_RETURN(FileDestinationObjectOptions o, object_options_from_json(value, opath, base_dir));
        auto [it, fresh] = paths.emplace(normalised(o.path), std::string(name));
        if (!fresh) {
          return config_error(member_path(opath, "path") + ": same file as object " + excerpt(it->second) +
                              "; each object needs its own file");
        }
        options.objects.emplace(std::string(name), std::move(o));
        return Status::ok();
      }));
  return options;
}

Result<std::shared_ptr<Destination>> make_file_destination(FileDestinationOptions options) {
  CMG_RETURN_IF_ERROR(check_options(options));
  auto state = std::make_shared<State>();
  state->csv = options.csv;
  state->jsonl = options.jsonl;
  for (auto& [name, o] : options.objects) {
    ObjectState& s = state->objects[name];
    s.name = name;
    s.schema.name = name;
    s.schema.id_property = kIdProperty;
    FieldSchema id;
    id.name = kIdProperty;
    id.label = "CRM source id";
    id.unique = true;
    s.schema.fields.push_back(std::move(id));
    for (std::size_t i = 0; i < o.fields.size(); ++i) {
      FieldSchema f;
      f.name = o.fields[i];
      f.label = o.fields[i];
      f.required = std::find(o.required.begin(), o.required.end(), f.name) != o.required.end();
      s.schema.fields.push_back(std::move(f));
      s.field_index.emplace(o.fields[i], i);
    }
    s.options = std::move(o);
  }
  for (auto& [name, s] : state->objects) CMG_RETURN_IF_ERROR(open_object(s, *state));
  return std::shared_ptr<Destination>(std::make_shared<FileDestination>(std::move(state)));
}

}  // namespace cmg::files
