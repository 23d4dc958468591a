// Dry-run throughput and memory (DESIGN §7: ≥ 200,000 records/s on one core; peak anonymous memory
// < 256 MiB at 1 M records). For each N on the command line (default 100000 1000000) it runs, in a
// fresh child process (so memory peaks do not carry over between sizes):
//   1. generate a deterministic CSV of N contacts (varied US phone formats, extensions, mixed-case
//      emails, ~3 % duplicates by email in another letter case, ~1 % duplicates by phone only,
//      owners = 8 destination users' emails, ISO timestamps);
//   2. baseline: CsvRecordReader over the whole file (records/s);
//   3. the dry run: Migration (files source → empty HubSpot-preset sandbox holding the 8 owners)
//      run with RunOptions::dry_run, timed around run();
//   4. memory: RssAnon sampled every ~5 ms by a background thread (max per phase) and VmHWM;
//   5. phone normalisation: PhoneNormalizer("US").to_e164 over the same phone values, with and
//      without the NANP fast path, as a share of the dry-run time.
// Prints ONE JSON object to stdout; progress goes to stderr. It is a program, not a test.
//
// Usage: dry_run_bench [N ...]            e.g. dry_run_bench 100000 1000000
//        dry_run_bench --one N DIR        (internal: one size in the current process, work dir DIR)
// Environment: CMG_BENCH_FAST_ONLY=1 skips the slow libphonenumber-only timing (for profiling).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/connectors/files.hpp"
#include "crmmigrate/core/config.hpp"
#include "crmmigrate/core/normalize.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU seconds of the calling thread: on a shared machine wall time includes waiting for a core,
// so the CPU time is reported next to it (the pipeline runs on the calling thread).
double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "dry_run_bench: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}
[[noreturn]] void die(const cmg::Status& st) { die(st.to_string()); }

// ---------------------------------------------------------------------------------------------
// Memory

// kB value of a /proc/self/status line ("RssAnon", "VmHWM"); -1 when absent. Uses plain read(2)
// so the sampler allocates nothing and costs a few microseconds.
long status_kb(const char* key) {
  int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const std::size_t klen = std::strlen(key);
  for (const char* p = buf; p && *p;) {
    if (std::strncmp(p, key, klen) == 0 && p[klen] == ':') return std::atol(p + klen + 1);
    p = std::strchr(p, '\n');
    if (p) ++p;
  }
  return -1;
}

// Samples RssAnon every ~5 ms; begin_phase() restarts the maximum, end_phase() returns it (kB).
class AnonSampler {
 public:
  AnonSampler() : thread_([this] { loop(); }) {}
  ~AnonSampler() {
    stop_ = true;
    thread_.join();
  }
  void begin_phase() { max_kb_ = status_kb("RssAnon"); }
  long end_phase() {
    sample();
    return max_kb_.load();
  }

 private:
  void sample() {
    long kb = status_kb("RssAnon");
    long cur = max_kb_.load();
    while (kb > cur && !max_kb_.compare_exchange_weak(cur, kb)) {
    }
  }
  void loop() {
    while (!stop_) {
      sample();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<long> max_kb_{0};
  std::thread thread_;
};

double mib(long kb) { return static_cast<double>(kb) / 1024.0; }

// ---------------------------------------------------------------------------------------------
// Output: JSON with plain decimal numbers (Boost.JSON writes doubles as 2.282217E6).

void emit(const json::value& v, std::string& out) {
  switch (v.kind()) {
    case json::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, e] : v.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        out += json::serialize(json::string(k));
        out.push_back(':');
        emit(e, out);
      }
      out.push_back('}');
      break;
    }
    case json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        emit(e, out);
      }
      out.push_back(']');
      break;
    }
    case json::kind::double_: {
      const double d = v.get_double();
      char buf[64];
      if (!std::isfinite(d)) {
        std::snprintf(buf, sizeof buf, "null");
      } else if (std::fabs(d) >= 1000 || d == std::floor(d)) {
        std::snprintf(buf, sizeof buf, "%.0f", d);
      } else if (std::fabs(d) >= 1) {
        std::snprintf(buf, sizeof buf, "%.3f", d);
      } else {
        std::snprintf(buf, sizeof buf, "%.4g", d);
      }
      out += buf;
      break;
    }
    default:
      out += json::serialize(v);
      break;
  }
}

std::string to_text(const json::value& v) {
  std::string out;
  emit(v, out);
  return out;
}

// Bytes allocated on disk (st_blocks: what the state really takes, sparse files included).
std::uintmax_t dir_bytes(const std::string& dir) {
  std::error_code ec;
  std::uintmax_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (it->is_regular_file(ec) && ::stat(it->path().c_str(), &st) == 0)
      total += static_cast<std::uintmax_t>(st.st_blocks) * 512u;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Data

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The destination's users; contacts are owned by them (owners are matched by email, so one
// address is written in another letter case than the destination stores it).
struct Owner {
  const char* id;
  const char* name;
  const char* email;        // as the destination stores it
  const char* source_form;  // as the CSV writes it
};
const Owner kOwners[8] = {
    {"70000001", "Avery Chen", "avery.chen@brightpath-sales.com", "avery.chen@brightpath-sales.com"},
    {"70000002", "Jordan Patel", "jordan.patel@brightpath-sales.com", "Jordan.Patel@brightpath-sales.com"},
    {"70000003", "Samira Haddad", "Samira.Haddad@Brightpath-Sales.com", "samira.haddad@brightpath-sales.com"},
    {"70000004", "Lucas Moreau", "lucas.moreau@brightpath-sales.com", "lucas.moreau@brightpath-sales.com"},
    {"70000005", "Priya Raman", "priya.raman@brightpath-sales.com", "priya.raman@brightpath-sales.com"},
    {"70000006", "Diego Alvarez", "diego.alvarez@brightpath-sales.com", "Diego.Alvarez@brightpath-sales.com"},
    {"70000007", "Hannah Kim", "hkim@brightpath.io", "hkim@brightpath.io"},
    {"70000008", "Riley Ortiz", "riley.ortiz@brightpath-sales.com", "riley.ortiz@brightpath-sales.com"},
};

const char* const kFirst[] = {"James",   "Mary",   "Robert", "Patricia", "John",    "Jennifer", "Michael", "Linda",
                              "David",   "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
                              "Thomas",  "Sarah",  "Carlos", "Karen",    "Daniel",  "Lisa",     "Matthew", "Nancy",
                              "Anthony", "Betty",  "Mark",   "Margaret", "José",    "Zoë",      "Chloé",   "Siobhán"};
const char* const kLast[] = {"Smith",    "Johnson", "Williams", "Brown",   "Jones",    "Garcia", "Miller",  "Davis",
                             "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas",
                             "Taylor",   "Moore",   "Jackson",  "Martin",  "Lee",      "Perez",  "Thompson", "White",
                             "Harris",   "Sanchez", "Clark",    "O'Brien", "Müller",   "Nguyen", "Kowalski", "Da Silva"};
const char* const kDomains[] = {"gmail.com", "yahoo.com", "outlook.com", "acme-corp.com", "initech.io",
                                "globex.net", "umbrella.co", "hooli.com",  "example.org", "stark-industries.com"};
const char* const kCompanies[] = {"Acme Corp",        "Initech",           "Globex Corporation", "Umbrella, Inc.",
                                  "Hooli",            "Stark Industries",  "Wayne Enterprises",  "Soylent \"Green\" Co",
                                  "Brekke, Dietrich and Klein", "Gottlieb and Sons", "Vandelay Industries", ""};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
// ASCII-only name for an email local part ("José" → "jose" is too clever: drop non-ASCII bytes).
std::string ascii_lower(const char* s) {
  std::string out;
  for (const char* p = s; *p; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c < 0x80 && std::isalpha(c)) out.push_back(static_cast<char>(std::tolower(c)));
  }
  return out;
}

// One base contact, fully determined by its index.
struct Contact {
  std::string first, last, email, company;
  unsigned area = 0, exchange = 0, line = 0;
};

Contact base_contact(std::uint64_t seed, std::size_t i) {
  std::uint64_t h = splitmix64(seed ^ (static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ULL));
  Contact c;
  c.first = kFirst[h % 32];
  c.last = kLast[(h >> 5) % 32];
  const char* domain = kDomains[(h >> 10) % 10];
  // Unique local part: name + index; letter case varies like hand-typed CRM data.
  std::string local = ascii_lower(c.first.c_str()) + "." + ascii_lower(c.last.c_str()) + std::to_string(i);
  std::string dom = domain;
  switch ((h >> 14) % 8) {
    case 0: local[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(local[0]))); break;
    case 1: dom = upper(dom); break;
    case 2: local = upper(local); break;
    default: break;
  }
  c.email = local + "@" + dom;
  c.company = kCompanies[(h >> 18) % 12];
  // Unique NANP number per index (line and exchange are a bijection of i for i < 8,000,000);
  // area code and exchange start with 2-9.
  c.area = 200 + static_cast<unsigned>((h >> 24) % 800);
  c.exchange = 200 + static_cast<unsigned>((i / 10000) % 800);
  c.line = static_cast<unsigned>((i * 7919 + 17) % 10000);
  return c;
}

std::string format_phone(const Contact& c, std::uint64_t h) {
  char buf[64];
  switch (h % 7) {
    case 0: std::snprintf(buf, sizeof buf, "(%03u) %03u-%04u", c.area, c.exchange, c.line); break;
    case 1: std::snprintf(buf, sizeof buf, "%03u.%03u.%04u", c.area, c.exchange, c.line); break;
    case 2: std::snprintf(buf, sizeof buf, "+1 %03u %03u %04u", c.area, c.exchange, c.line); break;
    case 3: std::snprintf(buf, sizeof buf, "%03u-%03u-%04u", c.area, c.exchange, c.line); break;
    case 4: std::snprintf(buf, sizeof buf, "1-%03u-%03u-%04u", c.area, c.exchange, c.line); break;
    case 5: std::snprintf(buf, sizeof buf, "+1 (%03u) %03u-%04u", c.area, c.exchange, c.line); break;
    default: std::snprintf(buf, sizeof buf, "%03u%03u%04u", c.area, c.exchange, c.line); break;
  }
  std::string s = buf;
  if ((h >> 8) % 20 == 0) s += " x" + std::to_string(100 + (h >> 16) % 900);  // ~5 % extensions
  return s;
}

// Flips the letter case of the email (another spelling of the same address).
std::string other_case(const std::string& email, std::uint64_t h) {
  std::string s = email;
  switch (h % 3) {
    case 0: return upper(s);
    case 1: return lower(s);
    default:
      for (std::size_t k = 0; k < s.size(); k += 2) s[k] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[k])));
      return s;
  }
}

struct GenStats {
  std::size_t email_dups = 0, phone_dups = 0, blank_phone = 0, blank_email = 0, blank_owner = 0;
  std::uintmax_t bytes = 0;
};

// Writes `n` contacts; rows are fully determined by their index.
GenStats generate(const std::string& path, std::size_t n) {
  constexpr std::uint64_t kSeed = 0x5eed'c0ffee'2024ULL;
  GenStats gs;
  std::ofstream out(path, std::ios::binary);
  std::vector<char> obuf(1 << 20);
  out.rdbuf()->pubsetbuf(obuf.data(), static_cast<std::streamsize>(obuf.size()));
  cmg::files::CsvWriter writer(out);
  if (auto st = writer.write_row({"id", "first_name", "last_name", "email", "phone", "company", "owner", "updated_at"});
      !st.is_ok())
    die(st);
  std::vector<std::string> row(8);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t h = splitmix64(kSeed + 0x1234567ULL * (i + 1));
    const unsigned kind = static_cast<unsigned>(h % 1000);  // < 30: email dup, < 40: phone-only dup
    Contact c = base_contact(kSeed, i);
    std::string email = c.email, phone;
    if (i > 0 && kind < 40) {
      const std::size_t j = static_cast<std::size_t>((h >> 10) % i);  // an earlier contact
      Contact other = base_contact(kSeed, j);
      if (kind < 30) {
        // Same person entered twice: same name, the email in another letter case; the phone
        // written differently or left blank.
        c.first = other.first;
        c.last = other.last;
        c.company = other.company;
        email = other_case(other.email, h >> 20);
        phone = (h >> 24) % 2 == 0 ? format_phone(other, h >> 28) : "";
        ++gs.email_dups;
      } else {
        // Same phone (another format) and no email, or another email: matched on phone only.
        // (With another email the email level vetoes the phone match — by design, a false merge
        // is worse than a missed one — so only the blank-email half is expected to merge.)
        phone = format_phone(other, h >> 28);
        if ((h >> 24) % 2 == 0) email.clear();
        ++gs.phone_dups;
      }
    } else {
      const unsigned blanks = static_cast<unsigned>((h >> 40) % 100);
      if (blanks < 3) {
        ++gs.blank_phone;  // phone left blank
      } else {
        phone = format_phone(c, h >> 20);
      }
      if (blanks == 99) {
        email.clear();  // no email (phone only)
        ++gs.blank_email;
      }
    }
    const unsigned owner = static_cast<unsigned>((h >> 44) % 50);
    row[0] = std::to_string(i + 1);
    row[1] = c.first;
    row[2] = c.last;
    row[3] = email;
    row[4] = phone;
    row[5] = c.company;
    if (owner < 8) {
      row[6] = kOwners[owner].source_form;
    } else if (owner < 49) {
      row[6] = kOwners[(owner + (h >> 50)) % 8].source_form;
    } else {
      row[6].clear();  // ~2 % unowned
      ++gs.blank_owner;
    }
    // Updated between 2019 and 2024, with or without milliseconds / offset.
    const std::uint64_t t = h >> 12;
    char ts[48];
    const unsigned year = 2019 + static_cast<unsigned>(t % 6), month = 1 + static_cast<unsigned>((t >> 3) % 12),
                   day = 1 + static_cast<unsigned>((t >> 7) % 28), hour = static_cast<unsigned>((t >> 12) % 24),
                   minute = static_cast<unsigned>((t >> 17) % 60), second = static_cast<unsigned>((t >> 23) % 60),
                   ms = static_cast<unsigned>((t >> 29) % 1000);
    switch ((t >> 40) % 3) {
      case 0: std::snprintf(ts, sizeof ts, "%04u-%02u-%02uT%02u:%02u:%02uZ", year, month, day, hour, minute, second); break;
      case 1:
        std::snprintf(ts, sizeof ts, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", year, month, day, hour, minute, second, ms);
        break;
      default:
        std::snprintf(ts, sizeof ts, "%04u-%02u-%02uT%02u:%02u:%02u.%03u-07:00", year, month, day, hour, minute, second,
                      ms);
        break;
    }
    row[7] = ts;
    if (auto st = writer.write_row(row); !st.is_ok()) die(st);
  }
  if (auto st = writer.flush(); !st.is_ok()) die(st);
  out.close();
  gs.bytes = std::filesystem::file_size(path);
  return gs;
}

// ---------------------------------------------------------------------------------------------
// One size, in this process.

std::string migration_config(const std::string& csv, const std::string& state, const std::string& dest) {
  json::object fields{{"first_name", "firstname"}, {"last_name", "lastname"}, {"email", "email"},
                      {"phone", "phone"},          {"company", "company"},
                      {"owner", json::object{{"to", "hubspot_owner_id"}, {"owner", true}}}};
  json::object contacts{{"name", "contacts"},
                        {"source", "contacts"},
                        {"destination", "contacts"},
                        {"fields", std::move(fields)},
                        {"drop", json::array{"updated_at"}},
                        {"defaults", json::object{{"lifecyclestage", "lead"}}},
                        {"dedup", json::object{{"keys", json::array{"external_id", "email", "phone"}}}}};
  json::object cfg{
      {"name", "dry_run_bench"},
      {"state", state},
      {"source",
       json::object{{"connector", "files"},
                    {"options", json::object{{"objects", json::object{{"contacts", json::object{{"path", csv},
                                                                                                {"format", "csv"},
                                                                                                {"id", "id"},
                                                                                                {"updated_at",
                                                                                                 "updated_at"}}}}}}}}},
      {"destination", json::object{{"connector", "sandbox"}, {"options", json::object{{"path", dest}}}}},
      {"owners", json::object{{"match", json::array{"email", "name"}}}},
      {"dedup", json::object{{"phone_region", "US"}}},
      {"objects", json::array{std::move(contacts)}}};
  return json::serialize(cfg);
}

int run_one(std::size_t n, const std::string& dir) {
  AnonSampler sampler;
  json::object out;
  out["records"] = n;
  json::object anon_by_phase;

  // 1. Generate.
  const std::string csv = dir + "/contacts.csv";
  std::fprintf(stderr, "[N=%zu] generating %s\n", n, csv.c_str());
  sampler.begin_phase();
  auto t0 = Clock::now();
  GenStats gs = generate(csv, n);
  const double gen_s = seconds_since(t0);
  anon_by_phase["generate"] = mib(sampler.end_phase());
  std::fprintf(stderr, "[N=%zu] generated %.1f MB in %.2f s (%zu email dups, %zu phone-only dups)\n", n,
               static_cast<double>(gs.bytes) / 1e6, gen_s, gs.email_dups, gs.phone_dups);

  // 2. Baseline: CSV → Records.
  sampler.begin_phase();
  double parse_s = 0, parse_cpu = 0;
  {
    t0 = Clock::now();
    const double c0 = thread_cpu_seconds();
    auto reader = cmg::files::CsvRecordReader::open(csv, {}, {"contacts", "id", "updated_at", {}}, 1000);
    if (!reader.is_ok()) die(reader.status());
    cmg::RecordBatch batch;
    std::size_t got_n = 0;
    for (;;) {
      auto got = (*reader)->next(batch);
      if (!got.is_ok()) die(got.status());
      if (!*got) break;
      got_n += batch.size();
    }
    parse_s = seconds_since(t0);
    parse_cpu = thread_cpu_seconds() - c0;
    if (got_n != n) die("csv parse read " + std::to_string(got_n) + " records, expected " + std::to_string(n));
  }
  anon_by_phase["csv_parse"] = mib(sampler.end_phase());
  std::fprintf(stderr, "[N=%zu] csv parse: %.3f s (%.0f records/s)\n", n, parse_s, static_cast<double>(n) / parse_s);

  // 3. Dry run.
  const std::string state = dir + "/state", dest = dir + "/destination";
  sampler.begin_phase();
  double open_s = 0, run_s = 0, run_cpu = 0;
  long dry_anon_kb = 0;
  std::string step;  // pipeline step being run ("extract", "map", "dedup")
  json::object anon_by_step, seconds_by_step;
  Clock::time_point step_start;
  std::int64_t dedup_groups = -1;
  cmg::Report report;
  {
    auto sb = cmg::sandbox::SandboxCrm::create(dest, "hubspot");
    if (!sb.is_ok()) die(sb.status());
    for (const auto& o : kOwners)
      if (auto st = (*sb)->set_user(cmg::User{o.id, o.email, o.name, true}); !st.is_ok()) die(st);
    sb->reset();  // Migration opens its own handle from the config

    auto cfg = cmg::parse_config(migration_config(csv, state, dest), "dry_run_bench.json", dir);
    if (!cfg.is_ok()) die(cfg.status());
    t0 = Clock::now();
    auto mig = cmg::Migration::open(std::move(*cfg));
    if (!mig.is_ok()) die(mig.status());
    open_s = seconds_since(t0);

    cmg::RunOptions ro;
    ro.dry_run = true;
    std::string last_phase;
    std::int64_t last_tenth = -1;
    ro.progress = [&](const cmg::Progress& p) {
      if (p.phase != step) {
        // Peak anonymous memory per pipeline step: a step runs from its first progress report to
        // the first report of the next one (so "map" includes building the dedup groups).
        const long kb = sampler.end_phase();
        dry_anon_kb = std::max(dry_anon_kb, kb);
        anon_by_step[step.empty() ? "setup" : step] = mib(kb);
        seconds_by_step[step.empty() ? "setup" : step] = seconds_since(step_start);
        step_start = Clock::now();
        sampler.begin_phase();
        step = p.phase;
      }
      if (p.phase == "dedup") dedup_groups = p.total;
      // One line per phase and tenth of it.
      const std::int64_t total = p.total > 0 ? p.total : static_cast<std::int64_t>(n);
      const std::int64_t tenth = p.done * 10 / std::max<std::int64_t>(1, total);
      if (p.phase == last_phase && tenth == last_tenth) return;
      last_phase = p.phase;
      last_tenth = tenth;
      std::fprintf(stderr, "[N=%zu]   %s %s %lld/%lld  (%.1f s)\n", n, p.object.c_str(), p.phase.c_str(),
                   static_cast<long long>(p.done), static_cast<long long>(p.total), seconds_since(t0));
    };
    std::fprintf(stderr, "[N=%zu] dry run...\n", n);
    t0 = Clock::now();
    step_start = t0;
    const double c0 = thread_cpu_seconds();
    auto rep = (*mig)->run(ro);
    run_s = seconds_since(t0);
    run_cpu = thread_cpu_seconds() - c0;
    if (!rep.is_ok()) die(rep.status());
    report = std::move(*rep);
  }
  {
    const long kb = sampler.end_phase();
    dry_anon_kb = std::max(dry_anon_kb, kb);
    anon_by_step[step.empty() ? "run" : step + "+report"] = mib(kb);
    seconds_by_step[step.empty() ? "run" : step + "+report"] = seconds_since(step_start);
  }
  anon_by_phase["dry_run"] = mib(dry_anon_kb);
  const long hwm_kb = status_kb("VmHWM");  // generate + parse + dry run (phones come later)
  const std::uintmax_t scratch_bytes = dir_bytes(state + "/dry-run");
  std::fprintf(stderr, "[N=%zu] dry run: %.3f s (%.0f records/s), state %s\n", n, run_s,
               static_cast<double>(n) / run_s, report.state.c_str());

  cmg::ObjectCounts counts;
  for (const auto& [name, c] : report.objects)
    if (name == "contacts") counts = c;

  // 5. Phone normalisation over the same values (read back from the CSV, not timed).
  sampler.begin_phase();
  std::vector<std::string> phones;
  {
    auto reader = cmg::files::CsvReader::open(csv);
    if (!reader.is_ok()) die(reader.status());
    std::vector<std::string_view> row;
    phones.reserve(n);
    for (;;) {
      auto got = reader->next_row(row);
      if (!got.is_ok()) die(got.status());
      if (!*got) break;
      phones.emplace_back(row[4]);
    }
  }
  auto time_phones = [&](const cmg::PhoneNormalizer& pn, std::size_t* ok, double* cpu) {
    std::size_t good = 0, bytes = 0;
    auto start = Clock::now();
    const double c0 = thread_cpu_seconds();
    for (const auto& p : phones) {
      if (p.empty()) continue;  // the pipeline never normalises a blank value
      auto e = pn.to_e164(p);
      if (e) {
        ++good;
        bytes += e->size();
      }
    }
    double s = seconds_since(start);
    *cpu = thread_cpu_seconds() - c0;
    if (bytes == 1) std::fputs("", stderr);  // keeps the loop observable
    *ok = good;
    return s;
  };
  std::size_t fast_ok = 0, slow_ok = 0;
  double phone_cpu = 0, phone_slow_cpu = 0;
  const double phone_s = time_phones(cmg::PhoneNormalizer("US"), &fast_ok, &phone_cpu);
  // CMG_BENCH_FAST_ONLY=1 skips the libphonenumber-only timing (seconds per 100k phones), e.g.
  // when profiling the dry run itself; its figures are then reported as 0.
  const bool fast_only = std::getenv("CMG_BENCH_FAST_ONLY") != nullptr;
  const double phone_slow_s =
      fast_only ? 0.0 : time_phones(cmg::PhoneNormalizer("US", false), &slow_ok, &phone_slow_cpu);
  if (fast_only) slow_ok = fast_ok;
  anon_by_phase["phone"] = mib(sampler.end_phase());
  std::fprintf(stderr, "[N=%zu] phones: %.3f s (fast path), %.3f s (libphonenumber only)\n", n, phone_s,
               phone_slow_s);
  if (fast_ok != slow_ok)
    std::fprintf(stderr, "[N=%zu] WARNING: fast path accepted %zu phones, libphonenumber %zu\n", n, fast_ok, slow_ok);

  const double csv_rps = static_cast<double>(n) / parse_s, dry_rps = static_cast<double>(n) / run_s;
  out["csv_parse_records_per_s"] = std::round(csv_rps);
  out["dry_run_records_per_s"] = std::round(dry_rps);
  out["ratio_to_csv_parse"] = dry_rps / csv_rps;
  out["dry_run_seconds"] = run_s;
  out["peak_anon_mib"] = mib(dry_anon_kb);
  out["peak_rss_mib"] = mib(hwm_kb);
  out["phone_normalize_share"] = phone_s / run_s;
  out["phone_libphonenumber_only_share"] = phone_slow_s / run_s;
  out["queued"] = counts.queued;
  out["pending"] = counts.pending;
  out["written"] = counts.written;
  out["merged"] = counts.merged;
  // Context beyond the required shape.
  out["source"] = counts.source;
  out["skipped"] = counts.skipped;
  out["accounted"] = counts.written + counts.merged + counts.queued + counts.skipped + counts.pending ==
                     static_cast<std::int64_t>(n) &&
                     counts.source == static_cast<std::int64_t>(n);
  out["report_state"] = report.state;
  out["queue_open"] = report.queue_open;
  // Thread CPU time: the same rates free of waiting for a core on a loaded machine.
  out["dry_run_cpu_seconds"] = run_cpu;
  out["dry_run_records_per_cpu_s"] = std::round(static_cast<double>(n) / run_cpu);
  out["csv_parse_records_per_cpu_s"] = std::round(static_cast<double>(n) / parse_cpu);
  out["phone_normalize_cpu_share"] = phone_cpu / run_cpu;
  out["phone_libphonenumber_only_cpu_share"] = phone_slow_cpu / run_cpu;
  out["csv_parse_seconds"] = parse_s;
  out["migration_open_seconds"] = open_s;
  out["phone_normalize_seconds"] = phone_s;
  out["phone_libphonenumber_only_seconds"] = phone_slow_s;
  out["phones_normalized"] = fast_ok;
  out["csv_bytes"] = gs.bytes;
  out["scratch_state_mib"] = static_cast<double>(scratch_bytes) / 1048576.0;
  out["dedup_groups"] = dedup_groups;
  out["peak_anon_mib_by_phase"] = std::move(anon_by_phase);
  out["dry_run_peak_anon_mib_by_step"] = std::move(anon_by_step);
  // Wall seconds per pipeline step, delimited like the memory peaks above (from a step's first
  // progress report to the next step's: "extract" includes the mapping a dry run does while
  // extracting, and the step before "dedup" the clustering of the dedup groups).
  out["dry_run_seconds_by_step"] = std::move(seconds_by_step);
  out["generated"] = json::object{{"email_case_duplicates", gs.email_dups},
                                  {"phone_only_duplicates", gs.phone_dups},
                                  {"blank_phone", gs.blank_phone},
                                  {"blank_email", gs.blank_email},
                                  {"blank_owner", gs.blank_owner}};
  std::string text = to_text(out);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Driver: one child process per size.

std::string self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) die("cannot resolve /proc/self/exe: " + ec.message());
  return p.string();
}

// Runs `self --one n dir` with stdout piped back; returns what it printed.
std::string run_child(const std::string& exe, std::size_t n, const std::string& dir) {
  int fds[2];
  if (::pipe(fds) != 0) die(std::string("pipe: ") + std::strerror(errno));
  const std::string n_text = std::to_string(n);
  pid_t pid = ::fork();
  if (pid < 0) die(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    const char* argv[] = {exe.c_str(), "--one", n_text.c_str(), dir.c_str(), nullptr};
    ::execv(exe.c_str(), const_cast<char* const*>(argv));
    std::fprintf(stderr, "dry_run_bench: execv %s: %s\n", exe.c_str(), std::strerror(errno));
    std::_Exit(127);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    text.append(buf, static_cast<std::size_t>(got));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::filesystem::remove_all(dir);
    die("run for N=" + n_text + " failed (" +
        (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status)) : "exit " + std::to_string(WEXITSTATUS(status))) +
        ")");
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--one") == 0) {
    return run_one(std::strtoull(argv[2], nullptr, 10), argv[3]);
  }
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(argv[i], &end, 10);
    if (!end || *end != '\0' || v == 0) die(std::string("usage: dry_run_bench [N ...]  (bad N '") + argv[i] + "')");
    sizes.push_back(static_cast<std::size_t>(v));
  }
  if (sizes.empty()) sizes = {100000, 1000000};

  const std::string exe = self_exe();
  json::array runs;
  for (std::size_t n : sizes) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cmg-dry-run-bench-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) die(std::string("mkdtemp: ") + std::strerror(errno));
    std::string text = run_child(exe, n, tmpl);
    std::error_code ec;
    std::filesystem::remove_all(tmpl, ec);
    json::error_code jec;
    json::value v = json::parse(text, jec);
    if (jec || !v.is_object()) die("run for N=" + std::to_string(n) + " printed no JSON object: " + text);
    runs.push_back(std::move(v));
  }
  json::object result{{"benchmark", "dry_run"},
                      {"runs", std::move(runs)},
                      {"target_records_per_s", 200000},
                      {"target_peak_anon_mib", 256}};
  std::string text = to_text(result);
  std::printf("%s\n", text.c_str());
  return 0;
}
