// Review console server time per request at scale: the queue page and the audit search over a state
// holding Q queue items and E audit events (defaults 100,000 and 1,000,000; target: p95 < 50 ms).
//
//   1. builds a synthetic state (store::Env, the pipeline's own key layout): Q queued records with
//      their queue items (deals, contacts, notes; several reasons and fields), as many written
//      records with id map, dedup index and mapped keys, and E audit events spread over all records;
//   2. opens the reference scenario's config on it (sandbox connectors seeded next to it) and a
//      web::Console, and times Console::handle (no sockets) for each request kind, N times each:
//      the first queue request (index build), queue pages (default, deep offsets, reason+object,
//      field, text), item detail, record search by source id / destination id / email, record
//      timeline, the latest audit events and status;
//   3. baseline in the same run: Migration::queue_list for the same pages (the pipeline's scan and
//      parse of every item) and Migration::audit(record) for the same records.
// Prints ONE JSON object (p50 / p95 / max in ms, wall and thread CPU). A program, not a test.
//
// Usage: console_bench [Q [E [N]]] [--keep DIR]
//   --keep DIR keeps the state and its config in DIR (tests/web/browser/paint.bench.js serves it).
#include <time.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "crmmigrate/core/config.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "crmmigrate/sandbox/reference.hpp"
#include "crmmigrate/store/lmdb_env.hpp"
#include "crmmigrate/web/console.hpp"
#include "pipeline/state_internal.hpp"

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using cmg::store::key_of;

double cpu_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Samples {
  std::vector<double> wall, cpu;  // ms
  json::object summary() {
    auto pct = [](std::vector<double> v, double p) {
      if (v.empty()) return 0.0;
      std::sort(v.begin(), v.end());
      std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
      return v[std::min(i, v.size() - 1)];
    };
    auto r3 = [](double x) { return std::round(x * 1000) / 1000; };
    return json::object{{"n", wall.size()},
                        {"p50_ms", r3(pct(wall, 0.5))},
                        {"p95_ms", r3(pct(wall, 0.95))},
                        {"max_ms", r3(pct(wall, 1.0))},
                        {"cpu_p50_ms", r3(pct(cpu, 0.5))},
                        {"cpu_p95_ms", r3(pct(cpu, 0.95))}};
  }
};

template <typename F>
void timed(Samples& s, F&& f) {
  auto w0 = Clock::now();
  double c0 = cpu_now();
  f();
  s.cpu.push_back((cpu_now() - c0) * 1000);
  s.wall.push_back(std::chrono::duration<double, std::milli>(Clock::now() - w0).count());
}

void die(const std::string& what) {
  std::fprintf(stderr, "console_bench: %s\n", what.c_str());
  std::exit(2);
}

const char* kReasons[] = {"unmapped_value", "owner_unprovisioned", "missing_required", "invalid_value",
                          "parent_queued"};
const char* kFields[] = {"dealstage", "hubspot_owner_id", "email", "amount", "associations.contacts"};
const char* kObjects[] = {"deals", "contacts", "notes"};
const char* kFirst[] = {"Ann", "Bo", "Chen", "Dana", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun"};
const char* kLast[] = {"Lee", "Moss", "Novak", "Ortiz", "Park", "Quinn", "Rossi", "Singh", "Tan", "Ueda"};

std::string ascii_lower_copy(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string sid_of(std::size_t i) { return std::to_string(100000 + i); }

// Builds the synthetic state. Records 0..Q-1 are queued, Q..2Q-1 written; events go round-robin.
void build_state(const std::string& dir, std::size_t q, std::size_t events) {
  cmg::store::EnvOptions eo;
  eo.initial_map_size = std::size_t{8} << 30;
  eo.no_sync = true;
  auto env = cmg::store::Env::open(dir, eo);
  if (!env.is_ok()) die(env.status().to_string());
  const std::size_t records = 2 * q;
  std::uint64_t seq = 0;
  const std::size_t batch = 5000;
  auto object_of = [](std::size_t i) { return std::string(kObjects[i % 3]); };
  for (std::size_t start = 0; start < records; start += batch) {
    cmg::Status st = (*env)->write([&](cmg::store::Txn& t) -> cmg::Status {
      for (std::size_t i = start; i < std::min(records, start + batch); ++i) {
        std::string object = object_of(i), sid = sid_of(i), k = key_of({object, sid});
        std::string first = kFirst[i % 10], last = kLast[(i / 10) % 10];
        std::string email = ascii_lower_copy(first) + "." + ascii_lower_copy(last) + std::to_string(i) + "@example.com";
        json::object fields{{"name", first + " " + last + " " + sid},
                            {"email", email},
                            {"phone", "+1 555 01" + std::to_string(i % 100)},
                            {"stage_id", std::to_string(i % 9)},
                            {"pipeline_id", "2"},
                            {"value", static_cast<std::int64_t>(i % 5000)},
                            {"owner_id", std::to_string(i % 17)},
                            {"note", "Imported from the old CRM; see history"}};
        CMG_RETURN_IF_ERROR(cmg::state::put_json(
            t, cmg::state::kSrc, k,
            json::object{{"object", object}, {"id", sid}, {"updated_at", 1700000000000}, {"fields", fields}}));
        json::array keys{json::array{json::string(sid)}, json::array{json::string(email)}, json::array{}};
        CMG_RETURN_IF_ERROR(cmg::state::put_json(t, cmg::state::kMapped, k,
                                                 json::object{{"o", object},
                                                              {"fields", fields},
                                                              {"translations", json::array{}},
                                                              {"defaults", json::array{}},
                                                              {"dropped", json::array{}},
                                                              {"k", keys},
                                                              {"u", 1700000000000},
                                                              {"cv", 1}}));
        if (i < q) {
          const char* reason = kReasons[i % 5];
          const char* field = kFields[(i / 5) % 5];
          std::string status = i % 20 == 0 ? "fixed" : i % 33 == 0 ? "skipped" : "open";
          json::object item{{"id", object + "/" + sid},
                            {"object", object},
                            {"source_id", sid},
                            {"reason", reason},
                            {"stage", "validate"},
                            {"problems", json::array{json::object{{"field", field},
                                                                  {"value", "v" + std::to_string(i % 97)},
                                                                  {"rule", "picklist"},
                                                                  {"message", "not an option of the destination field"},
                                                                  {"suggestion", "partner_contract"}}}},
                            {"status", status},
                            {"queued_at", "2026-11-25T10:00:00.000Z"},
                            {"updated_at", "2026-11-25T10:00:00.000Z"},
                            {"history", json::array{}},
                            {"corrections", json::object{}},
                            {"source", fields}};
          CMG_RETURN_IF_ERROR(cmg::state::put_json(t, cmg::state::kQueue, k, item));
          CMG_RETURN_IF_ERROR(cmg::state::put_json(t, cmg::state::kRecords, k,
                                                   json::object{{"s", status == "skipped" ? "skipped" : "queued"}}));
        } else {
          std::string did = "d" + sid;
          std::string dobj = object;
          CMG_RETURN_IF_ERROR(cmg::state::put_json(t, cmg::state::kRecords, k,
                                                   json::object{{"s", "written"}, {"d", did}, {"o", dobj}}));
          CMG_RETURN_IF_ERROR(t.put(cmg::state::kIdmap, k, did));
          CMG_RETURN_IF_ERROR(t.put(cmg::state::kIdmapRev, key_of({dobj, did}), k));
          if (object == "contacts")
            CMG_RETURN_IF_ERROR(t.put(cmg::state::kDedup, key_of({object, "1", email, did}), ""));
        }
      }
      return cmg::Status::ok();
    });
    if (!st.is_ok()) die(st.to_string());
  }
  // Audit events: one "extracted-like" queued/written event per record first, then the rest spread.
  for (std::size_t start = 0; start < events; start += 20000) {
    cmg::Status st = (*env)->write([&](cmg::store::Txn& t) -> cmg::Status {
      std::uint64_t s0 = seq;
      for (std::size_t e = start; e < std::min(events, start + 20000); ++e) {
        std::size_t i = e % records;
        std::string object = object_of(i), sid = sid_of(i);
        std::uint64_t s = ++s0;
        json::object ev{
            {"seq", s}, {"time", "2026-11-25T10:00:00.000Z"}, {"object", object}, {"source_id", sid}, {"run", "r1"}};
        if (i < q) {
          ev["action"] = e < records ? "queued" : "requeued_check";
          ev["reason"] = kReasons[i % 5];
        } else {
          ev["action"] = e < records ? "written" : "confirmed_check";
          ev["destination_id"] = "d" + sid;
          ev["key"] = "external_id";
          ev["sent"] = json::object{{"name", "x"}, {"email", "y"}};
        }
        CMG_RETURN_IF_ERROR(t.put(cmg::state::kAudit, cmg::store::be64(s), json::serialize(ev)));
        CMG_RETURN_IF_ERROR(t.put(cmg::state::kAuditByRecord, key_of({object, sid, cmg::store::be64(s)}), ""));
      }
      seq = s0;
      return t.put(cmg::state::kMeta, "audit_seq", std::to_string(seq));
    });
    if (!st.is_ok()) die(st.to_string());
    std::fprintf(stderr, "  audit events %zu/%zu\r", std::min(events, start + 20000), events);
  }
  std::fprintf(stderr, "\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> pos;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--keep" && i + 1 < argc)
      keep = argv[++i];
    else
      pos.push_back(a);
  }
  const std::size_t q = pos.size() > 0 ? std::stoul(pos[0]) : 100000;
  const std::size_t events = pos.size() > 1 ? std::stoul(pos[1]) : 1000000;
  const std::size_t n = pos.size() > 2 ? std::stoul(pos[2]) : 200;

  std::string work = keep;
  if (work.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "cmg-console-bench-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) die("mkdtemp failed");
    work = tmpl;
  }
  fs::create_directories(work);
  std::fprintf(stderr, "console_bench: seeding sandboxes and building %zu queue items, %zu audit events in %s\n", q,
               events, work.c_str());
  auto man = cmg::sandbox::seed_reference(work + "/sandbox/source", work + "/sandbox/destination", 42);
  if (!man.is_ok()) die(man.status().to_string());
  std::ifstream in(std::string(CMG_SOURCE_DIR) + "/examples/reference/migration.json");
  std::string config_text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(work + "/migration.json") << config_text;
  auto cfg = cmg::load_config(work + "/migration.json");
  if (!cfg.is_ok()) die(cfg.status().to_string());
  auto b0 = Clock::now();
  build_state(cfg->state_dir, q, events);
  double build_s = std::chrono::duration<double>(Clock::now() - b0).count();

  auto mig = cmg::Migration::open(*cfg);
  if (!mig.is_ok()) die(mig.status().to_string());
  auto console = cmg::web::Console::create(std::move(*mig), {});
  if (!console.is_ok()) die(console.status().to_string());
  cmg::web::Console& c = **console;

  std::string csrf;
  auto send = [&](const std::string& target) {
    cmg::net::HttpRequest r;
    r.target = target;
    r.headers = {{"Host", "127.0.0.1:1"}, {"Authorization", "Bearer " + c.token()}};
    auto resp = c.handle(r);
    if (resp.status != 200) die(target + " → " + std::to_string(resp.status) + " " + resp.body.substr(0, 300));
    return resp;
  };

  std::mt19937_64 rng(7);
  auto pick = [&](std::size_t lo, std::size_t hi) { return lo + rng() % (hi - lo); };
  json::object out;
  out["queue_items"] = q;
  out["audit_events"] = events;
  out["requests_per_kind"] = n;
  out["state_build_seconds"] = std::round(build_s * 10) / 10;

  Samples cold;
  timed(cold, [&] { send("/api/queue?limit=100"); });
  out["queue_first_request_ms_index_build"] = cold.summary()["max_ms"];

  json::object kinds;
  auto run_kind = [&](const char* name, const std::function<std::string()>& target) {
    Samples s;
    for (std::size_t i = 0; i < n; ++i) {
      std::string t = target();
      timed(s, [&] { send(t); });
    }
    kinds[name] = s.summary();
    std::fprintf(stderr, "  %-28s p95 %.2f ms\n", name, kinds[name].at("p95_ms").to_number<double>());
  };
  run_kind("queue_page_first", [] { return std::string("/api/queue?limit=100"); });
  run_kind("queue_page_deep_offset", [&] { return "/api/queue?limit=100&offset=" + std::to_string(pick(0, q - 100)); });
  run_kind("queue_reason_object", [&] {
    return std::string("/api/queue?limit=100&reason=") + kReasons[pick(0, 5)] + "&object=" + kObjects[pick(0, 3)] +
           "&offset=" + std::to_string(pick(0, 2000));
  });
  run_kind("queue_field", [&] { return std::string("/api/queue?limit=100&field=") + kFields[pick(0, 5)]; });
  run_kind("queue_text",
           [&] { return "/api/queue?limit=100&text=" + std::string(kLast[pick(0, 10)]) + "%20" + sid_of(pick(0, q)); });
  run_kind("queue_item_detail", [&] {
    std::size_t i = pick(0, q);
    return "/api/queue/item?id=" + std::string(kObjects[i % 3]) + "/" + sid_of(i);
  });
  run_kind("audit_search_source_id", [&] { return "/api/search?q=" + sid_of(pick(0, 2 * q)); });
  run_kind("audit_search_destination_id", [&] { return "/api/search?q=d" + sid_of(pick(q, 2 * q)); });
  run_kind("audit_search_email", [&] {
    std::size_t i = pick(q, 2 * q);
    i -= (i % 3) - 1;  // a contact (i % 3 == 1)
    if (i >= 2 * q) i -= 3;
    return "/api/search?q=" + ascii_lower_copy(kFirst[i % 10]) + "." + ascii_lower_copy(kLast[(i / 10) % 10]) +
           std::to_string(i) + "%40example.com";
  });
  run_kind("audit_record_timeline", [&] {
    std::size_t i = pick(0, 2 * q);
    return "/api/record?id=" + std::string(kObjects[i % 3]) + "/" + sid_of(i);
  });
  run_kind("audit_latest_events", [] { return std::string("/api/audit/events?limit=50"); });
  run_kind("audit_events_deep_page",
           [&] { return "/api/audit/events?limit=50&before=" + std::to_string(pick(100, events)); });
  Samples status;
  for (std::size_t i = 0; i < std::min<std::size_t>(n, 20); ++i) timed(status, [&] { send("/api/status"); });
  kinds["status"] = status.summary();
  out["console"] = std::move(kinds);

  // Baseline: the pipeline's own listing and audit reader, same pages, same records (fewer reps:
  // each scans and parses the whole queue).
  // One LMDB environment per process: the console lets go of the state first.
  console->reset();
  auto m2 = cmg::Migration::open(*cfg);
  if (!m2.is_ok()) die(m2.status().to_string());
  json::object base;
  {
    Samples s;
    for (std::size_t i = 0; i < std::min<std::size_t>(n, 10); ++i) {
      cmg::QueueFilter f;
      std::size_t off = pick(0, q - 100);
      timed(s, [&] { (void)(*m2)->queue_list(f, off, 100); });
    }
    base["queue_list_deep_offset"] = s.summary();
  }
  {
    Samples s;
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t r = pick(0, 2 * q);
      std::string id = std::string(kObjects[r % 3]) + "/" + sid_of(r);
      timed(s, [&] { (void)(*m2)->audit(id, [](const json::object&) { return true; }); });
    }
    base["migration_audit_record"] = s.summary();
  }
  out["baseline"] = base;
  double console_p95 = out["console"].at("queue_page_deep_offset").at("p95_ms").to_number<double>();
  double base_p95 = base["queue_list_deep_offset"].at("p95_ms").to_number<double>();
  out["queue_deep_page_speedup_vs_queue_list"] = std::round(base_p95 / std::max(console_p95, 1e-3) * 10) / 10;
  std::printf("%s\n", json::serialize(out).c_str());
  if (keep.empty()) {
    m2->reset();
    std::error_code ec;
    fs::remove_all(work, ec);
  }
  return 0;
}
