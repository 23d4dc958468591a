// CSV parsing speed: generates N contact rows (argv[1], default 1,000,000) into a temp file, then
// times the low-level CsvReader (rows/s, fields/s, MB/s) and CsvRecordReader (records/s), best
// of three runs each, and prints one JSON object.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "crmmigrate/connectors/files.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void die(const cmg::Status& st) {
  std::fprintf(stderr, "csv_parse_bench: %s\n", st.to_string().c_str());
  std::exit(1);
}

// Writes `rows` contacts; about one row in five has a quoted company (comma, doubled quote) and
// one in fifty a quoted two-line company, as exports of real CRMs do.
std::uintmax_t generate(const std::string& path, std::size_t rows) {
  static const char* kFirst[] = {"Shelley", "Leah", "Margaret", "Faith", "Robin", "Zoë", "José", "Anna"};
  static const char* kLast[] = {"Kerluke", "Boehm", "Haley", "Leuschke", "Fritsch", "Müller", "O'Brien", "Smith"};
  static const char* kCompany[] = {"Gottlieb and Sons", "Brekke, Dietrich and Klein", "Schmitt and Sons",
                                   "The \"Best\" Co", "Acme\nEurope", "Initech"};
  std::ofstream out(path, std::ios::binary);
  cmg::files::CsvWriter writer(out);
  if (auto st = writer.write_row({"id", "first_name", "last_name", "email", "phone", "company", "owner", "updated_at"});
      !st.is_ok()) {
    die(st);
  }
  std::vector<std::string> row(8);
  std::uint64_t x = 88172645463325252ULL;
  for (std::size_t i = 0; i < rows; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const char* first = kFirst[x % 8];
    const char* last = kLast[(x >> 8) % 8];
    const std::size_t company = (x >> 16) % 100;
    row[0] = std::to_string(i + 1);
    row[1] = first;
    row[2] = last;
    row[3] = std::string(first) + "." + last + std::to_string(x % 1000) + "@example.com";
    row[4] = "+1-555-" + std::to_string(1000000 + x % 9000000);
    row[5] = kCompany[company < 2 ? 4 : company < 20 ? 1 + company % 3 : company % 2 == 0 ? 0 : 5];
    row[6] = (x >> 24) % 3 == 0 ? "" : "owner" + std::to_string((x >> 24) % 40) + "@example.com";
    row[7] = "2024-08-" + std::to_string(10 + (x >> 32) % 19) + "T18:04:34." + std::to_string(100 + (x >> 40) % 900) +
             "+00:00";
    if (auto st = writer.write_row(row); !st.is_ok()) die(st);
  }
  if (auto st = writer.flush(); !st.is_ok()) die(st);
  out.close();
  return std::filesystem::file_size(path);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t rows = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const std::string path =
      (std::filesystem::temp_directory_path() / ("cmg-csv-bench-" + std::to_string(::getpid()) + ".csv")).string();
  const std::uintmax_t bytes = generate(path, rows);

  double parse_s = 1e30;
  std::size_t fields = 0;
  for (int run = 0; run < 3; ++run) {
    const auto start = Clock::now();
    auto reader = cmg::files::CsvReader::open(path);
    if (!reader.is_ok()) die(reader.status());
    std::vector<std::string_view> row;
    std::size_t n = 0;
    fields = 0;
    for (;;) {
      auto got = reader->next_row(row);
      if (!got.is_ok()) die(got.status());
      if (!*got) break;
      ++n;
      fields += row.size();
    }
    parse_s = std::min(parse_s, seconds_since(start));
    if (n != rows) die(cmg::internal_error("read " + std::to_string(n) + " rows"));
  }

  double record_s = 1e30;
  for (int run = 0; run < 3; ++run) {
    const auto start = Clock::now();
    auto reader = cmg::files::CsvRecordReader::open(path, {}, {"contacts", "id", "updated_at", {}}, 500);
    if (!reader.is_ok()) die(reader.status());
    cmg::RecordBatch batch;
    std::size_t n = 0;
    for (;;) {
      auto got = (*reader)->next(batch);
      if (!got.is_ok()) die(got.status());
      if (!*got) break;
      n += batch.size();
    }
    record_s = std::min(record_s, seconds_since(start));
    if (n != rows) die(cmg::internal_error("read " + std::to_string(n) + " records"));
  }
  std::filesystem::remove(path);

  std::printf(
      "{\"bench\":\"csv_parse\",\"rows\":%zu,\"bytes\":%ju,\"parse_seconds\":%.4f,\"rows_per_s\":%.0f,"
      "\"fields_per_s\":%.0f,\"mb_per_s\":%.1f,\"record_seconds\":%.4f,\"records_per_s\":%.0f}\n",
      rows, bytes, parse_s, static_cast<double>(rows) / parse_s, static_cast<double>(fields) / parse_s,
      static_cast<double>(bytes) / 1e6 / parse_s, record_s, static_cast<double>(rows) / record_s);
  return 0;
}
