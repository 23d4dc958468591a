// The files connector: RFC 4180 CSV and JSON Lines, read as a Source and written as sinks.
//
// Readers stream: they read the input in blocks (1 MiB by default) and keep only the record being
// parsed, so memory is bounded by the longest record plus one block, whatever the file size.
// Input must be UTF-8. Every malformed input is a kParse Status whose message starts with
// `<path>:<line>: ` where <line> is the 1-based line on which the offending record starts; when
// the problem sits on a later physical line of a multi-line record, the message names that line
// too. Readers never skip or truncate data silently.
//
// Thread-safety: a reader or writer object is used by one thread at a time; distinct objects are
// independent. A FileSource may be called from several threads at once (each call opens its own
// file), but each RecordReader it returns belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <istream>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/status.hpp"

namespace cmg::files {

// ---------------------------------------------------------------------------------------------
// CSV

/// How CSV input is split and bounded.
struct CsvOptions {
  char delimiter = ',';                          ///< any ASCII byte but '"', CR, LF and NUL
  std::size_t max_field_bytes = 16u << 20;       ///< longest field after unquoting (16 MiB)
  std::size_t max_record_bytes = 64u << 20;      ///< longest raw record with its line end (64 MiB)
  std::size_t block_bytes = 1u << 20;            ///< read size (1 MiB)
};

/// Low-level RFC 4180 reader: yields each data row as views into an internal buffer.
///
/// Dialect: fields are separated by the delimiter; records end with LF, CRLF or a lone CR (the
/// last one may have none). A field that starts with '"' is quoted: it may contain delimiters, CR
/// and LF (kept byte for byte) and `""` for one quote, and must be followed by a delimiter or a
/// record end. A quote anywhere else in a field is an error. A UTF-8 byte-order mark at the start
/// is skipped. The first record is the header: names must be non-empty and distinct (they are
/// taken verbatim, spaces included). Every later record must have as many fields as the header.
/// Empty lines (zero bytes between two line ends, including a final line end) carry no data and are
/// skipped, so a single-column file writes an empty value as `""` (CsvWriter does).
///
/// Errors (kParse, `<path>:<record line>: <reason>`): unterminated quoted field, quote inside an
/// unquoted field, character after a closing quote, ragged row ("ragged row: 5 fields, header has
/// 4"), invalid UTF-8 and NUL bytes (with the physical line and 1-based byte column), field or
/// record over the configured maximum, empty or duplicate header name, missing header. After an
/// error the reader is unusable: later calls return the same Status.
class CsvReader {
 public:
  /// Opens the file at `path` and reads its header row. `path` is used as is in messages.
  /// Returns kNotFound when the file does not exist, kIO when it cannot be read,
  /// kInvalidArgument for a bad `options.delimiter` or zero limits, kParse for a bad header.
  static Result<CsvReader> open(const std::string& path, const CsvOptions& options = {});
  /// Same as open() over an already open stream (taken over); `name` stands for the path in
  /// messages.
  static Result<CsvReader> open_stream(std::unique_ptr<std::istream> in, std::string name,
                                       const CsvOptions& options = {});

  CsvReader(CsvReader&&) noexcept;
  CsvReader& operator=(CsvReader&&) noexcept;
  ~CsvReader();

  /// The column names from the header row, in file order.
  const std::vector<std::string>& header() const noexcept;
  /// The path (or stream name) used in messages.
  const std::string& name() const noexcept;

  /// Reads the next data row into `fields` (resized to header().size()) and returns true, or
  /// returns false at the end of the input. [out] `fields` are unquoted, unescaped views into the
  /// reader's buffer, valid until the next call on this reader (or its destruction). Returns a
  /// kParse or kIO Status as described for the class. Allocates nothing in the steady state.
  Result<bool> next_row(std::vector<std::string_view>& fields);

  /// Counts the data rows left, without splitting or checking their fields: a scan for the
  /// record ends outside quotes (a blank line is no row, as for next_row()). On a file next_row()
  /// reads to the end without an error the count is the number of rows it returns; on a malformed
  /// file it may differ (next_row() reports the error). The reader is at the end afterwards.
  /// Errors: kIO when the stream fails, or the error next_row() returned before.
  Result<std::uint64_t> count_rows();

  /// 1-based line on which the row last returned by next_row() starts (1 for the header).
  std::uint64_t row_line() const noexcept;

  struct Impl;

 private:
  explicit CsvReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// How CSV rows become Records.
struct CsvRecordOptions {
  std::string object;                ///< Record::object of every record
  std::string id_column = "id";      ///< column holding Record::id; must exist and be non-empty
  std::string updated_at_column;     ///< column parsed with parse_timestamp_ms; empty = none
  std::vector<std::string> fields;   ///< columns copied into Record::fields; empty = all
};

/// Adapts a CsvReader into Records: `fields` maps each column name (in header order) to a JSON
/// string holding the cell, or to null for an empty cell; the id column is kept in `fields` too.
/// `updated_at` is 0 when the updated_at column is not configured or the cell is empty.
class CsvRecordReader final : public RecordReader {
 public:
  /// Takes over `reader`. Returns kInvalidArgument when `options` name a column the header does
  /// not have (the message names the file and the column) or batch_size is 0.
  static Result<std::unique_ptr<CsvRecordReader>> make(CsvReader reader, CsvRecordOptions options,
                                                       std::size_t batch_size = 500);
  /// CsvReader::open() followed by make().
  static Result<std::unique_ptr<CsvRecordReader>> open(const std::string& path, const CsvOptions& csv,
                                                       CsvRecordOptions options, std::size_t batch_size = 500);

  /// Reads the next row into `out` and returns true, or false at the end. [out] `out` is
  /// overwritten; its strings and field storage are reused when they already have the same
  /// columns, so passing the same Record each time avoids allocation. Errors: those of
  /// CsvReader::next_row, plus kParse for an empty id ("<path>:<line>: empty id in column
  /// \"id\"") or an updated_at cell parse_timestamp_ms rejects.
  Result<bool> next_record(Record& out);

  /// Fills `out` with up to batch_size records (existing elements are reused as by
  /// next_record()); returns false, with `out` empty, at the end. Same errors as next_record().
  Result<bool> next(RecordBatch& out) override;

 private:
  explicit CsvRecordReader(CsvReader reader) : reader_(std::move(reader)) {}
  CsvReader reader_;
  CsvRecordOptions options_;
  std::size_t batch_size_ = 500;
  std::vector<std::size_t> columns_;  // header index of each output field
  std::vector<std::string_view> names_;
  std::size_t id_index_ = 0;
  std::size_t updated_at_index_ = SIZE_MAX;
  std::vector<std::string_view> row_;
};

/// How CsvWriter formats output.
struct CsvWriteOptions {
  char delimiter = ',';
  bool crlf = false;  ///< end records with CRLF (RFC 4180, Excel) instead of LF
};

/// Writes RFC 4180 CSV that CsvReader reads back byte for byte. A field is quoted when it
/// contains the delimiter, '"', CR or LF, starts or ends with a space or tab, or is the only,
/// empty, field of its row (an empty line would otherwise be skipped on reading).
class CsvWriter {
 public:
  /// Borrows `out`, which must outlive the writer. kInvalidArgument is reported by write_row()
  /// when options.delimiter is '"', CR, LF, NUL or non-ASCII.
  explicit CsvWriter(std::ostream& out, CsvWriteOptions options = {});

  /// Writes one record (a header is written the same way). Returns kInvalidArgument, writing
  /// nothing, when a field holds a NUL byte or invalid UTF-8 (the message names the row and
  /// field, counted from 1), and kIO when the stream has failed.
  Status write_row(const std::vector<std::string_view>& fields);
  Status write_row(std::initializer_list<std::string_view> fields);
  Status write_row(const std::vector<std::string>& fields);

  /// Flushes the stream; kIO when it has failed.
  Status flush();

  /// Number of rows written so far.
  std::uint64_t rows() const noexcept { return rows_; }

 private:
  Status write_fields(const std::string_view* fields, std::size_t n);
  std::ostream* out_;
  CsvWriteOptions options_;
  std::string line_;
  std::uint64_t rows_ = 0;
};

// ---------------------------------------------------------------------------------------------
// JSON Lines

/// How JSONL input is bounded.
struct JsonlOptions {
  std::size_t max_line_bytes = 16u << 20;  ///< longest line (16 MiB)
  std::size_t max_depth = 64;              ///< deepest nesting of arrays/objects
  std::size_t block_bytes = 1u << 20;      ///< read size (1 MiB)
};

/// Low-level JSON Lines reader: one JSON object per line (LF or CRLF); lines holding only spaces
/// or tabs are skipped; a UTF-8 byte-order mark at the start is skipped. Errors (kParse,
/// `<path>:<line>: <reason>`): invalid UTF-8 (with the byte column), invalid JSON (Boost.JSON's
/// reason and the column), nesting deeper than max_depth, a value that is not an object, a line
/// longer than max_line_bytes. After an error later calls return the same Status.
class JsonlReader {
 public:
  /// Opens the file at `path`. kNotFound when it does not exist, kIO when it cannot be read,
  /// kInvalidArgument for zero limits.
  static Result<JsonlReader> open(const std::string& path, const JsonlOptions& options = {});
  /// Same over an already open stream (taken over); `name` stands for the path in messages.
  static Result<JsonlReader> open_stream(std::unique_ptr<std::istream> in, std::string name,
                                         const JsonlOptions& options = {});

  JsonlReader(JsonlReader&&) noexcept;
  JsonlReader& operator=(JsonlReader&&) noexcept;
  ~JsonlReader();

  const std::string& name() const noexcept;

  /// Parses the next non-blank line and returns true, or returns false at the end.
  /// [out] `out` receives the object (owned by the caller, default memory resource).
  Result<bool> next_object(boost::json::object& out);

  /// 1-based line number of the object last returned.
  std::uint64_t line() const noexcept;

  struct Impl;

 private:
  explicit JsonlReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// How JSONL objects become Records.
struct JsonlRecordOptions {
  std::string object;              ///< Record::object of every record
  std::string id_key = "id";       ///< key holding the id: a non-empty string or an integer
  std::string updated_at_key;      ///< key parsed as a timestamp (string or number); empty = none
  std::vector<std::string> fields; ///< keys kept in Record::fields; empty = all
};

/// Adapts a JsonlReader into Records: `fields` is the line's object (id key included, key order
/// kept); `updated_at` comes from a string (parse_timestamp_ms) or a number (Unix seconds when
/// below 1e11, else milliseconds) and is 0 when the key is absent or null.
class JsonlRecordReader final : public RecordReader {
 public:
  /// Takes over `reader`; kInvalidArgument when batch_size is 0.
  static Result<std::unique_ptr<JsonlRecordReader>> make(JsonlReader reader, JsonlRecordOptions options,
                                                         std::size_t batch_size = 500);
  /// JsonlReader::open() followed by make().
  static Result<std::unique_ptr<JsonlRecordReader>> open(const std::string& path, const JsonlOptions& jsonl,
                                                         JsonlRecordOptions options, std::size_t batch_size = 500);

  /// Reads the next record into `out` (overwritten) and returns true, or false at the end.
  /// Errors: those of JsonlReader::next_object, plus kParse `<path>:<line>: ` for a missing, empty
  /// or non-string/integer id and an updated_at value that is not a timestamp.
  Result<bool> next_record(Record& out);

  /// Fills `out` with up to batch_size records; false, with `out` empty, at the end.
  Result<bool> next(RecordBatch& out) override;

 private:
  explicit JsonlRecordReader(JsonlReader reader) : reader_(std::move(reader)) {}
  JsonlReader reader_;
  JsonlRecordOptions options_;
  std::size_t batch_size_ = 500;
};

/// Writes one compact JSON value per line (LF), as JsonlReader reads them.
class JsonlWriter {
 public:
  /// Borrows `out`, which must outlive the writer.
  explicit JsonlWriter(std::ostream& out) : out_(&out) {}

  /// Serialises `v` and a LF. kIO when the stream has failed. Strings are written as they are
  /// stored (Boost.JSON escapes control characters and quotes).
  Status write(const boost::json::value& v);
  /// Flushes the stream; kIO when it has failed.
  Status flush();
  std::uint64_t lines() const noexcept { return lines_; }

 private:
  std::ostream* out_;
  boost::json::serializer serializer_;
  std::uint64_t lines_ = 0;
};

// ---------------------------------------------------------------------------------------------
// FileSource

enum class FileFormat { kCsv, kJsonl };

/// One object type read from one file.
struct FileObjectOptions {
  std::string path;                     ///< the file; used as is (resolve relative paths first)
  FileFormat format = FileFormat::kCsv;
  std::string id = "id";                ///< id column (CSV) or key (JSONL)
  std::string updated_at;               ///< updated_at column or key; empty = none
  char delimiter = ',';                 ///< CSV only
};

struct FileSourceOptions {
  std::map<std::string, FileObjectOptions, std::less<>> objects;  ///< object name → file
  CsvOptions csv;      ///< limits for every CSV file (the delimiter comes from each object)
  JsonlOptions jsonl;  ///< limits for every JSONL file
};

/// Parses the `options` object of a files source from a migration config:
/// `{"objects": {"<name>": {"path": "...", "format": "csv"|"jsonl", "id": "id",
/// "updated_at": "updated_at", "delimiter": ","}}}`. Only "path" is required; "format" defaults
/// from the extension (".jsonl"/".ndjson" → jsonl, ".csv"/".tsv"/".txt" → csv, and ".tsv" also
/// defaults the delimiter to a tab); "delimiter" (one ASCII character, CSV only) defaults to ",".
/// A relative path is resolved against `base_dir` (the config file's directory; empty = as is).
/// `json_path` is where `v` sits in the config (e.g. "$.source.options") and prefixes messages.
/// Returns kConfig naming the JSON path for a wrong type, a missing or unknown key (with a
/// "did you mean" hint), an empty object list, or a bad format/delimiter. Files are not opened.
/// Thread-safe.
Result<FileSourceOptions> file_source_options_from_json(const boost::json::value& v, std::string_view json_path,
                                                        const std::string& base_dir = {});

/// A Source over CSV and JSONL files:
/// - schema(): per object, the CSV header columns as kString fields, or the keys seen in the
///   first 100 lines of a JSONL file as kJson fields; id_property empty; no users.
/// - count(): the number of records: for CSV the record ends counted by CsvReader::count_rows()
///   (fields are checked when they are read), for JSONL every line parsed.
/// - read(): streams Records in file order (files are not sorted by id); `since_updated_at` keeps
///   records with (updated_at, id) ≥ (since_updated_at, since_id) and those without a timestamp
///   (updated_at 0), which may have changed; `fields` restricts the fields (an unknown CSV column is
///   kInvalidArgument, an absent JSONL key is simply missing).
/// - get(): not supported (the default kNotFound).
/// Unknown object names are kNotFound; file errors are those of the readers above.
/// The returned source is thread-safe; options are copied.
std::shared_ptr<Source> make_file_source(FileSourceOptions options);


// ---------------------------------------------------------------------------------------------
// FileDestination

/// The property that holds a record's idempotency key (the source id) in every file a
/// FileDestination writes. It is the first column (CSV) or key (JSONL) of each line, the object's
/// id_property, and the record's destination id.
inline constexpr std::string_view kFileDestinationIdProperty = "crm_source_id";

/// One destination object type written to one file.
struct FileDestinationObjectOptions {
  std::string path;                    ///< the file; used as is (resolve relative paths first)
  FileFormat format = FileFormat::kJsonl;
  std::vector<std::string> fields;     ///< the object's fields (all kString), in CSV column order
  std::vector<std::string> required;   ///< fields a record must have a non-blank value for
  char delimiter = ',';                ///< CSV only
};

struct FileDestinationOptions {
  std::map<std::string, FileDestinationObjectOptions, std::less<>> objects;  ///< object name → file
  CsvOptions csv;      ///< limits for reading back CSV files (each object's delimiter wins)
  JsonlOptions jsonl;  ///< limits for reading back JSONL files
};

/// Parses the `options` object of a files destination from a migration config:
/// `{"objects": {"<name>": {"path": "out/contacts.jsonl", "format": "jsonl"|"csv",
/// "fields": ["firstname", "email"], "required": ["email"]}}}`. "path" and "fields" are required;
/// "format" defaults from the extension (".jsonl"/".ndjson" → jsonl, ".csv"/".tsv"/".txt" → csv,
/// ".tsv" with a tab delimiter). Field names must be non-empty, distinct and not "crm_source_id"
/// (added by the destination); "required" names must be listed in "fields". A relative path is
/// resolved against `base_dir` (empty = as is). `json_path` prefixes messages. Returns kConfig
/// naming the JSON path for a wrong type, a missing or unknown key (with a hint), an empty list,
/// a bad format or two objects sharing a file. Files are not opened. Thread-safe.
Result<FileDestinationOptions> file_destination_options_from_json(const boost::json::value& v,
                                                                  std::string_view json_path,
                                                                  const std::string& base_dir = {});

/// Opens a Destination ("sink") that writes each object to an append-only JSONL or CSV file.
///
/// File content: one line per record version. JSONL lines are objects with "crm_source_id" first,
/// then every field in `fields` order (null when the record has no value); CSV files start with
/// the header `crm_source_id,<fields...>` and hold one row per version (an empty cell for no value;
/// CSV cannot tell an empty string from no value, both read back as null). Values are strings:
/// numbers and booleans are written as their text (value_to_text). **The last line for a key
/// wins**: an update appends the record's complete new version, and readers of the file must keep
/// the last line of each crm_source_id (the earlier lines are history).
///
/// Opening: each existing file is checked and indexed. A torn last line (bytes after the last
/// complete record, e.g. the process was killed in the middle of a write) is truncated away; it
/// was never acknowledged by write(). The remaining file is read with CsvReader / JsonlReader and
/// the latest version of every key is kept in memory (memory grows with the number of distinct
/// records). A CSV header that differs from `crm_source_id,<fields...>`, a JSONL key that is not a
/// field, a value that is not a string or null, or an empty crm_source_id is kParse naming the
/// file and line; other malformed input is reported as by the readers. A missing file is created
/// (with its parent directories) by the first write() that has something to append.
///
/// Destination behaviour:
/// - schema(): per object, "crm_source_id" (kString, unique; the id_property) then the fields
///   (kString, `required` flags); no users.
/// - write(): ops are applied in order. kUpsert creates the record whose crm_source_id is the
///   idempotency key (kCreated, 201) or merges the given fields into it (kUpdated, 200); a merge
///   that changes nothing appends nothing. kUpdate merges into the record whose crm_source_id is
///   `id` (404 OBJECT_NOT_FOUND when there is none). Per-op failures (400) carry FieldErrors:
///   PROPERTY_DOESNT_EXIST (a field not in the schema), REQUIRED (a required field blank after the
///   merge, or an empty idempotency key), INVALID_VALUE (an array or object value, invalid UTF-8,
///   NUL in CSV, a value longer than the read-back limits, a "crm_source_id" field that differs
///   from the key). The lines of one call are appended with one write and made durable with one
///   fsync before it returns; a failed append is rolled back (truncated) and returned as kIO.
///   The destination id of a record is its crm_source_id.
/// - find(): by "crm_source_id" through the index; by another field with a scan of the latest
///   versions (exact text match; blank values never match). read(): by destination id.
///   list(): the latest version of every record, ordered by crm_source_id (batch_size and
///   `fields` are honoured, `since_*` ignored). count(): the number of distinct records.
/// - quota(): unlimited, max_batch 1000.
/// Unknown object names are kNotFound. Thread-safe (calls are serialised). Only one
/// FileDestination may write a given file at a time (the migration lock ensures this).
///
/// Returns kInvalidArgument for options that file_destination_options_from_json would reject,
/// kIO when a file cannot be read or truncated, kParse as above. `options` are taken over.
Result<std::shared_ptr<Destination>> make_file_destination(FileDestinationOptions options);

}  // namespace cmg::files
