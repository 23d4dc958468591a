// The cost of the C plugin boundary (issue 4): the same dry run (extract → map → dedup → validate,
// state in LMDB) over the same N contacts, read once by the native CSV source and once by a custom
// source written against the C ABI (include/crmmigrate/sys/source.h) that hands the library JSON
// record batches. Both legs go through the C API (cmg_migration_run with dry_run), alternate, and
// are repeated; the best run of each leg is reported. The difference of their per-record times is
// the overhead per record of the boundary (JSON batch parse + record conversion in the adapter,
// minus the CSV parse the native source does instead). Wall time includes waiting for a core on a
// shared machine, so the calling thread's CPU time (the pipeline runs on it) is reported too.
//
// The C source's batches are serialised before timing starts (as a C program would already hold
// its data), from the records the CSV reader produces, so both legs see identical records.
// Prints ONE JSON object to stdout; progress goes to stderr. A program, not a test.
//
// Usage: boundary_bench [N [REPEATS]]      default 200000 records, 2 repeats per leg
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/connectors/files.hpp"
#include "crmmigrate/crmmigrate.h"
#include "crmmigrate/sys/source.h"

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "boundary_bench: %s\n", what.c_str());
  std::exit(1);
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// N contacts, ~3 % duplicates by email in another letter case, varied phone formats.
void generate(const std::string& path, std::size_t n) {
  static const char* const first[] = {"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John"};
  static const char* const last[] = {"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus"};
  static const char* const company[] = {"Acme Corp", "Initech", "Globex", "Umbrella, Inc.", "Hooli", ""};
  std::ofstream out(path, std::ios::binary);
  cmg::files::CsvWriter w(out);
  if (!w.write_row({"id", "first_name", "last_name", "email", "phone", "company", "updated_at"}).is_ok()) die("csv");
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t h = mix(i + 1);
    std::size_t person = (h % 100 < 3 && i > 0) ? static_cast<std::size_t>((h >> 8) % i) : i;
    std::uint64_t p = mix(person + 7);
    std::string email = std::string(first[p % 8]) + "." + last[(p >> 3) % 8] + std::to_string(person) + "@example.com";
    if (person != i) std::transform(email.begin(), email.end(), email.begin(), ::toupper);
    char phone[40];
    unsigned area = 200 + static_cast<unsigned>((p >> 10) % 800), ex = 200 + static_cast<unsigned>(person / 10000 % 800),
             line = static_cast<unsigned>(person % 10000);
    if (h % 2) std::snprintf(phone, sizeof phone, "(%03u) %03u-%04u", area, ex, line);
    else std::snprintf(phone, sizeof phone, "+1 %03u %03u %04u", area, ex, line);
    char ts[32];
    std::snprintf(ts, sizeof ts, "2024-%02u-%02uT10:%02u:00Z", 1 + static_cast<unsigned>(h % 12),
                  1 + static_cast<unsigned>((h >> 4) % 28), static_cast<unsigned>((h >> 9) % 60));
    if (!w.write_row({std::to_string(i + 1), first[p % 8], last[(p >> 3) % 8], email, phone, company[(p >> 6) % 6], ts})
             .is_ok())
      die("csv");
  }
  if (!w.flush().is_ok()) die("csv flush");
}

// The C source: JSON batches prepared up front, served through the C stream.
struct CSource {
  std::string schema;
  std::vector<std::string> batches;
  std::int64_t count = 0;
  std::int64_t streams = 0;
};
struct CStream {
  const CSource* src;
  std::size_t pos;
};

int src_schema(cmg_buf* out, void* ud) {
  const auto* s = static_cast<const CSource*>(ud);
  return cmg_buf_set(out, s->schema.data(), s->schema.size());
}
int src_count(std::int64_t* out, const char*, void* ud) {
  *out = static_cast<const CSource*>(ud)->count;
  return 0;
}
int stream_next(cmg_record_stream* st, const char** out) {
  auto* cs = static_cast<CStream*>(st->private_data);
  *out = cs->pos < cs->src->batches.size() ? cs->src->batches[cs->pos++].c_str() : nullptr;
  return 0;
}
const char* stream_error(cmg_record_stream*) { return nullptr; }
void stream_release(cmg_record_stream* st) {
  delete static_cast<CStream*>(st->private_data);
  st->release = nullptr;
}
int src_open(cmg_record_stream* out, const char*, void* ud) {
  auto* s = static_cast<CSource*>(ud);
  ++s->streams;
  out->next = stream_next;
  out->last_error = stream_error;
  out->release = stream_release;
  out->private_data = new CStream{s, 0};
  return 0;
}
const cmg_source_vtable kSourceVtable = {CMG_SOURCE_VTABLE_VERSION, src_schema, src_count, src_open, nullptr};

std::string config(const std::string& csv, const std::string& state, const std::string& dest) {
  json::object contacts{
      {"name", "contacts"},
      {"source", "contacts"},
      {"destination", "contacts"},
      {"fields", json::object{{"first_name", "firstname"}, {"last_name", "lastname"}, {"email", "email"},
                              {"phone", "phone"}, {"company", "company"}}},
      {"drop", json::array{"updated_at"}},
      {"dedup", json::object{{"keys", json::array{"external_id", "email", "phone"}}}}};
  json::object cfg{
      {"name", "boundary_bench"},
      {"state", state},
      {"source", json::object{{"connector", "files"},
                              {"options", json::object{{"objects", json::object{{"contacts", json::object{
                                                                                    {"path", csv},
                                                                                    {"format", "csv"},
                                                                                    {"id", "id"},
                                                                                    {"updated_at", "updated_at"}}}}}}}}},
      {"destination",
       json::object{{"connector", "files"},
                    {"options", json::object{{"objects", json::object{{"contacts", json::object{
                                                                          {"path", dest},
                                                                          {"format", "jsonl"},
                                                                          {"fields", json::array{"firstname", "lastname",
                                                                                                 "email", "phone",
                                                                                                 "company"}}}}}}}}}},
      {"objects", json::array{std::move(contacts)}}};
  return json::serialize(cfg);
}

struct Leg {
  double seconds = 0, cpu = 0;
  std::string report;
};

Leg run_leg(const std::string& cfg, CSource* c_source) {
  cmg_open_options opts = CMG_OPEN_OPTIONS_INIT;
  if (c_source) {
    opts.source = &kSourceVtable;
    opts.source_user_data = c_source;
  }
  cmg_migration* m = nullptr;
  if (cmg_migration_open(&m, cfg.c_str(), nullptr, &opts) != CMG_OK)
    die(std::string("open: ") + cmg_error_last()->message);
  cmg_run_options ro = CMG_RUN_OPTIONS_INIT;
  ro.dry_run = 1;
  cmg_buf out = CMG_BUF_INIT;
  Leg leg;
  auto t0 = Clock::now();
  double c0 = thread_cpu_seconds();
  int rc = cmg_migration_run(&out, m, &ro);
  leg.cpu = thread_cpu_seconds() - c0;
  leg.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (rc != CMG_OK) die(std::string("run: ") + cmg_error_last()->message);
  leg.report = out.ptr;
  cmg_buf_dispose(&out);
  cmg_migration_close(m);
  return leg;
}

// The counts of the report (without state/message, which may differ only by wording).
std::string counts_of(const std::string& report) {
  return json::serialize(json::parse(report).at("objects"));
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  int repeats = argc > 2 ? std::atoi(argv[2]) : 2;
  if (n == 0 || repeats <= 0) die("usage: boundary_bench [N [REPEATS]]");

  std::string tmpl = (std::filesystem::temp_directory_path() / "cmg-boundary-bench-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) die("mkdtemp");
  const std::string dir = tmpl, csv = dir + "/contacts.csv";
  std::fprintf(stderr, "generating %zu contacts\n", n);
  generate(csv, n);

  // The C source's batches: the records the CSV reader produces, as JSON, 1000 per batch.
  CSource src;
  {
    auto reader = cmg::files::CsvRecordReader::open(csv, {}, {"contacts", "id", "updated_at", {}}, 1000);
    if (!reader.is_ok()) die(reader.status().to_string());
    cmg::RecordBatch batch;
    for (;;) {
      auto more = (*reader)->next(batch);
      if (!more.is_ok()) die(more.status().to_string());
      if (!*more) break;
      json::array a;
      for (const auto& r : batch)
        a.push_back(json::object{{"id", r.id}, {"updated_at", r.updated_at}, {"fields", r.fields}});
      src.batches.push_back(json::serialize(a));
      src.count += static_cast<std::int64_t>(batch.size());
    }
    json::array fields;
    for (const char* f : {"first_name", "last_name", "email", "phone", "company", "updated_at"})
      fields.push_back(json::object{{"name", f}, {"type", "string"}});
    src.schema = json::serialize(json::object{
        {"objects", json::object{{"contacts", json::object{{"fields", std::move(fields)}}}}}, {"users", json::array{}}});
  }
  std::size_t batch_bytes = 0;
  for (const auto& b : src.batches) batch_bytes += b.size();

  Leg best_csv, best_c;  // the shortest wall time and, independently, the least CPU time per leg
  best_csv.seconds = best_c.seconds = best_csv.cpu = best_c.cpu = 1e300;
  for (int r = 0; r < repeats; ++r) {
    for (int which = 0; which < 2; ++which) {
      std::string tag = (which == 0 ? "csv" : "c") + std::to_string(r);
      std::filesystem::create_directories(dir + "/" + tag);
      std::string cfg = config(csv, dir + "/" + tag + "/state", dir + "/" + tag + "/out.jsonl");
      Leg leg = run_leg(cfg, which == 0 ? nullptr : &src);
      std::fprintf(stderr, "%s source, run %d: %.3f s (%.0f records/s)\n", which == 0 ? "CSV" : "C", r + 1, leg.seconds,
                   static_cast<double>(n) / leg.seconds);
      Leg& best = which == 0 ? best_csv : best_c;
      best.seconds = std::min(best.seconds, leg.seconds);
      best.cpu = std::min(best.cpu, leg.cpu);
      best.report = leg.report;
      std::filesystem::remove_all(dir + "/" + tag);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);

  const bool same = counts_of(best_csv.report) == counts_of(best_c.report);
  const double dn = static_cast<double>(n);
  // Written by hand: Boost.JSON prints doubles in exponent form (7.04E-1).
  std::printf(
      "{\"benchmark\":\"boundary\",\"records\":%zu,\"repeats\":%d,"
      "\"csv_source_records_per_s\":%.0f,\"c_source_records_per_s\":%.0f,\"ratio_c_to_csv\":%.3f,"
      "\"overhead_ns_per_record\":%.0f,"
      "\"csv_source_records_per_cpu_s\":%.0f,\"c_source_records_per_cpu_s\":%.0f,\"cpu_ratio_c_to_csv\":%.3f,"
      "\"overhead_cpu_ns_per_record\":%.0f,\"c_batch_json_bytes_per_record\":%.0f,\"same_counts\":%s,"
      "\"counts\":%s}\n",
      n, repeats, dn / best_csv.seconds, dn / best_c.seconds, best_csv.seconds / best_c.seconds,
      (best_c.seconds - best_csv.seconds) / dn * 1e9, dn / best_csv.cpu, dn / best_c.cpu, best_csv.cpu / best_c.cpu,
      (best_c.cpu - best_csv.cpu) / dn * 1e9, static_cast<double>(batch_bytes) / dn, same ? "true" : "false",
      counts_of(best_csv.report).c_str());
  return same ? 0 : 1;
}
