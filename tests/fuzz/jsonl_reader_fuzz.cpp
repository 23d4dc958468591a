// libFuzzer target: JsonlReader and JsonlRecordReader over arbitrary bytes.
//
// Each input is read in one block (the default limits, a block larger than the input so the 1 MiB
// default buffer is not zeroed on every run) and with 64-byte blocks and small limits; both must
// give the same objects and errors unless a limit is hit. Every error must be kParse naming the
// input. JsonlRecordReader must then turn the same objects into Records.
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
using cmg::files::JsonlOptions;
using cmg::files::JsonlReader;
using cmg::files::JsonlRecordOptions;
using cmg::files::JsonlRecordReader;

constexpr std::string_view kName = "fuzz.jsonl";
constexpr std::string_view kPrefix = "fuzz.jsonl:";

struct Outcome {
  std::vector<std::string> objects;  // serialised
  std::vector<std::uint64_t> lines;
  Status error;
};

std::unique_ptr<std::istream> stream_of(std::string_view bytes) {
  return std::make_unique<std::istringstream>(std::string(bytes));
}

Outcome read_objects(std::string_view bytes, const JsonlOptions& options) {
  Outcome out;
  auto reader = JsonlReader::open_stream(stream_of(bytes), std::string(kName), options);
  CMG_FUZZ_CHECK(reader.is_ok(), reader.status().message());
  boost::json::object obj;
  for (;;) {
    auto got = reader->next_object(obj);
    if (!got.is_ok()) {
      out.error = got.status();
      auto again = reader->next_object(obj);
      CMG_FUZZ_CHECK(!again.is_ok() && again.status().message() == out.error.message(), out.error.message());
      return out;
    }
    if (!*got) return out;
    CMG_FUZZ_CHECK(out.lines.empty() || reader->line() > out.lines.back(), "line numbers must increase");
    out.objects.push_back(boost::json::serialize(obj));
    out.lines.push_back(reader->line());
  }
}

bool hit_limit(const Outcome& o) {
  const std::string& m = o.error.message();
  return !o.error.is_ok() &&
         (m.find("longer than the maximum") != std::string::npos || m.find("nested deeper than") != std::string::npos);
}

void check_same(const Outcome& a, const Outcome& b) {
  if (hit_limit(b)) {
    CMG_FUZZ_CHECK(b.objects.size() <= a.objects.size(), b.error.message());
    for (std::size_t i = 0; i < b.objects.size(); ++i) {
      CMG_FUZZ_CHECK(a.objects[i] == b.objects[i] && a.lines[i] == b.lines[i], "objects differ before a limit error");
    }
    return;
  }
  CMG_FUZZ_CHECK(a.error.message() == b.error.message(), a.error.message() + " <> " + b.error.message());
  CMG_FUZZ_CHECK(a.objects == b.objects, "objects differ with small blocks");
  CMG_FUZZ_CHECK(a.lines == b.lines, "lines differ with small blocks");
}

void check_records(std::string_view bytes, const JsonlOptions& jsonl, const Outcome& plain) {
  auto reader = JsonlReader::open_stream(stream_of(bytes), std::string(kName), jsonl);
  CMG_FUZZ_CHECK(reader.is_ok(), reader.status().message());
  JsonlRecordOptions options;
  options.object = "lines";
  options.updated_at_key = "updated_at";
  auto records = JsonlRecordReader::make(std::move(*reader), options, 3);
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
      CMG_FUZZ_CHECK(n < plain.objects.size(), "more records than objects");
      CMG_FUZZ_CHECK(boost::json::serialize(r.fields) == plain.objects[n++], "a record's fields changed");
      CMG_FUZZ_CHECK(!r.id.empty() && r.object == "lines", r.id);
      CMG_FUZZ_CHECK(r.updated_at > -1'000'000'000'000'000'000 && r.updated_at < 1'000'000'000'000'000'000,
                     std::to_string(r.updated_at));
    }
  }
  CMG_FUZZ_CHECK(n == plain.objects.size() && plain.error.is_ok(), "records and objects disagree");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  JsonlOptions one_block;
  one_block.block_bytes = std::max<std::size_t>(size + 1, 4096);
  const Outcome plain = read_objects(bytes, one_block);
  if (!plain.error.is_ok()) cmg::fuzz::check_error(plain.error, Code::kParse, kPrefix);

  JsonlOptions small;
  small.block_bytes = 64;
  small.max_line_bytes = 300;
  small.max_depth = 6;
  const Outcome blocks = read_objects(bytes, small);
  if (!blocks.error.is_ok()) cmg::fuzz::check_error(blocks.error, Code::kParse, kPrefix);
  check_same(plain, blocks);

  check_records(bytes, one_block, plain);
  return 0;
}
