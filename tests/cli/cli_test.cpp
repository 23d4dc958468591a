#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <map>

#include <boost/json.hpp>

#include "cli/cli_util.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"
#include "crmmigrate/store/lmdb_env.hpp"
#include "pipeline/scenario_util.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

json::object json_out(const CliResult& r) {
  json::error_code ec;
  auto v = json::parse(r.out, ec);
  REQUIRE_MESSAGE(!ec, "not JSON: " << r.out << r.err);
  return v.as_object();
}

// Destination records sharing an idempotency key (crm_source_id): must be none.
std::size_t duplicates_in(const std::string& dest_dir) {
  auto dest = sandbox::SandboxCrm::open(dest_dir);
  REQUIRE(dest.is_ok());
  std::size_t dups = 0;
  for (const char* obj : {"contacts", "companies", "deals", "notes", "calls", "meetings", "tasks", "emails"}) {
    std::map<std::string, int> seen;
    auto reader = (*dest)->list(obj, ReadOptions{});
    REQUIRE(reader.is_ok());
    RecordBatch b;
    for (;;) {
      auto more = (*reader)->next(b);
      REQUIRE(more.is_ok());
      if (!*more) break;
      for (const auto& r : b)
        if (const auto* k = r.fields.if_contains("crm_source_id"); k && !value_is_blank(*k))
          if (++seen[value_to_text(*k)] == 2) ++dups;
    }
  }
  return dups;
}

}  // namespace

TEST_CASE("a crash between send and confirm resumes with no duplicate and no lost record") {
  for (const char* point : {"after_send", "after_intents", "after_confirm", "before_intents"}) {
    CAPTURE(point);
    Scenario sc;
    std::string cfg = sc.config_file();
    REQUIRE(run_cli({"plan", "-c", cfg, "--approve", "--reviewer", "Avery"}, {}, sc.dir.path()).code == 0);
    // The 7th write batch is applied by the destination, then the process dies before confirming.
    auto crashed = run_cli({"run", "-c", cfg}, {{"CMG_CRASH_POINT", point}, {"CMG_CRASH_AFTER", "7"}}, sc.dir.path());
    CHECK(crashed.code == 99);
    auto status = run_cli({"status", "-c", cfg, "--json"}, {}, sc.dir.path());
    CHECK(status.code == 1);
    CHECK(json_out(status).at("state").as_string() == "incomplete");
    auto resumed = run_cli({"run", "-c", cfg, "--json"}, {}, sc.dir.path());
    CHECK(resumed.code == 1);  // finished; the reference queue is open
    auto rep = json_out(resumed);
    const auto& contacts = rep.at("objects").at("contacts").as_object();
    CHECK(contacts.at("written").to_number<int>() == 3716);
    CHECK(contacts.at("merged").to_number<int>() == 450);
    CHECK(contacts.at("pending").to_number<int>() == 0);
    CHECK(rep.at("objects").at("deals").at("written").to_number<int>() == 1640);
    CHECK(duplicates_in(sc.dir.sub("sandbox/destination")) == 0);
    auto rec = run_cli({"reconcile", "-c", cfg, "--json"}, {}, sc.dir.path());
    CHECK(json_out(rec).at("readback_mismatches").to_number<int>() == 0);
  }
}

TEST_CASE("a second run is refused while another holds the lock, and status still answers") {
  Scenario sc;
  std::string cfg = sc.config_file();
  REQUIRE(run_cli({"plan", "-c", cfg, "--approve", "--reviewer", "Avery"}, {}, sc.dir.path()).code == 0);
  auto lock = store::RunLock::acquire(sc.config().state_dir);  // as a running `run` holds it
  REQUIRE(lock.is_ok());
  auto second = run_cli({"run", "-c", cfg}, {}, sc.dir.path());
  CHECK(second.code == 4);
  CHECK(second.err.find("another run holds the migration lock") != std::string::npos);
  auto reprocess = run_cli({"queue", "reprocess", "-c", cfg}, {}, sc.dir.path());
  CHECK(reprocess.code == 4);
  auto status = run_cli({"status", "-c", cfg, "--json"}, {}, sc.dir.path());
  CHECK(status.code == 1);
  CHECK(json_out(status).at("objects").at("contacts").at("source").to_number<int>() == 0);
  auto queue = run_cli({"queue", "list", "-c", cfg, "--json"}, {}, sc.dir.path());
  CHECK(queue.code == 0);
}

TEST_CASE("run is refused without a sign-off and with a source field neither mapped nor dropped") {
  Scenario sc;
  std::string cfg = sc.config_file();
  auto r = run_cli({"run", "-c", cfg}, {}, sc.dir.path());
  CHECK(r.code == 2);
  CHECK(r.err.find("has not been signed off") != std::string::npos);

  // Remove "probability" from the deals' drop list: a gap that blocks sign-off and run.
  std::string text = read_text(cfg);
  auto pos = text.find("\"probability\", ");
  REQUIRE(pos != std::string::npos);
  text.erase(pos, std::string("\"probability\", ").size());
  std::ofstream(cfg) << text;
  auto plan = run_cli({"plan", "-c", cfg}, {}, sc.dir.path());
  CHECK(plan.code == 1);
  CHECK(plan.out.find("deals: source field 'probability' is neither mapped nor dropped") != std::string::npos);
  auto approve = run_cli({"plan", "-c", cfg, "--approve", "--reviewer", "Avery"}, {}, sc.dir.path());
  CHECK(approve.code == 2);
  CHECK(approve.err.find("'probability'") != std::string::npos);
}

TEST_CASE("a bad config names the file and the JSON path") {
  TempDir dir;
  std::string cfg = dir.sub("m.json");
  std::ofstream(cfg) << R"({"name": "x", "source": {"connector": "sandbox", "options": {"path": "s"}},
    "destination": {"connector": "sandbox", "options": {"path": "d"}},
    "objects": [{"name": "contacts", "source": "persons", "destination": "contacts",
                 "fields": {"email": {"too": "email"}}, "dedup": {"keys": ["email"]}}]})";
  auto r = run_cli({"plan", "-c", cfg}, {}, dir.path());
  CHECK(r.code == 2);
  CHECK(r.err.find(cfg + ": $.objects[0].fields.email.too: unknown key") != std::string::npos);

  std::ofstream(cfg) << "{\"name\": \"x\",\n \"source\": }";
  r = run_cli({"plan", "-c", cfg}, {}, dir.path());
  CHECK(r.code == 2);
  CHECK(r.err.find(cfg + ":2:") != std::string::npos);
}

TEST_CASE("malformed CSV input fails with the file and line and the run stops cleanly") {
  TempDir dir;
  std::string csv = dir.sub("contacts.csv");
  std::ofstream(csv) << "id,email\n1,a@x.com\n2,\"b@x.com\n3,c@x.com\n";
  auto sb = sandbox::SandboxCrm::create(dir.sub("dest"), "hubspot");
  REQUIRE(sb.is_ok());
  sb->reset();
  std::string cfg = dir.sub("m.json");
  std::ofstream(cfg) << R"({"name": "csv", "source": {"connector": "files", "options": {"objects": {"contacts": {"path": "contacts.csv"}}}},
    "destination": {"connector": "sandbox", "options": {"path": "dest"}},
    "objects": [{"name": "contacts", "source": "contacts", "destination": "contacts",
                 "fields": {"email": "email"}, "dedup": {"keys": ["external_id", "email"]}}]})";
  auto r = run_cli({"run", "-c", cfg, "--dry-run"}, {}, dir.path());
  CHECK(r.code == 2);
  CHECK(r.err.find("contacts.csv:3: unterminated quoted field") != std::string::npos);
}

TEST_CASE("an inline secret in the config is refused without echoing it, and a token in the environment never appears") {
  Scenario sc;
  std::string cfg = sc.config_file();
  std::string text = read_text(cfg);
  std::string bad = text;
  bad.replace(bad.find(R"({"path": "sandbox/source"})"), std::string(R"({"path": "sandbox/source"})").size(),
              R"({"path": "sandbox/source", "api_token": "s3cr3t-VALUE-42"})");
  std::ofstream(cfg) << bad;
  auto r = run_cli({"plan", "-c", cfg}, {}, sc.dir.path());
  CHECK(r.code == 2);
  CHECK(r.err.find("secrets must not be inline") != std::string::npos);
  CHECK(r.err.find("s3cr3t-VALUE-42") == std::string::npos);

  std::ofstream(cfg) << text;
  std::map<std::string, std::string> env{{"HUBSPOT_TOKEN", "s3cr3t-VALUE-42"}};
  std::string all;
  for (auto args : std::vector<std::vector<std::string>>{{"plan", "-c", cfg, "--approve", "--reviewer", "A"},
                                                         {"run", "-c", cfg, "--json"},
                                                         {"status", "-c", cfg},
                                                         {"audit", "-c", cfg},
                                                         {"queue", "list", "-c", cfg}}) {
    auto out = run_cli(args, env, sc.dir.path());
    all += out.out + out.err;
  }
  CHECK(all.size() > 1000);
  CHECK(all.find("s3cr3t-VALUE-42") == std::string::npos);
}

TEST_CASE("the CLI walks the reviewer flow to a complete reconcile with exit code 0") {
  Scenario sc;
  std::string cfg = sc.config_file();
  CHECK(run_cli({"plan", "-c", cfg, "--approve", "--reviewer", "Avery"}, {}, sc.dir.path()).code == 0);
  CHECK(run_cli({"run", "-c", cfg}, {}, sc.dir.path()).code == 1);
  std::ofstream(cfg) << reference_config_text(true);
  CHECK(run_cli({"plan", "-c", cfg, "--approve", "--reviewer", "Avery"}, {}, sc.dir.path()).code == 0);
  auto fix = run_cli({"queue", "fix", "-c", cfg, "--reason", "owner_unprovisioned", "--object", "contacts", "--set",
                      "hubspot_owner_id=" + sc.manifest.reassign_owner_id, "--reviewer", "Sam", "--json"},
                     {}, sc.dir.path());
  CHECK(fix.code == 0);
  CHECK(json_out(fix).at("fixed").to_number<int>() == 34);
  CHECK(run_cli({"queue", "skip", "-c", cfg, "--reason", "orphan_reference", "--reviewer", "Sam", "--note", "deleted"},
                {}, sc.dir.path())
            .code == 0);
  CHECK(run_cli({"queue", "reprocess", "-c", cfg}, {}, sc.dir.path()).code == 0);
  auto rec = run_cli({"reconcile", "-c", cfg, "--json"}, {}, sc.dir.path());
  CHECK(rec.code == 0);
  auto rep = json_out(rec);
  CHECK(rep.at("state").as_string() == "complete");
  CHECK(rep.at("complete").as_bool());
  CHECK(rep.at("queue_open").to_number<int>() == 0);
  // The fix is in the audit trail with the reviewer.
  std::string id = "contacts/" + sc.manifest.unprovisioned_owner_person_ids.front();
  auto audit = run_cli({"audit", "-c", cfg, "--record", id}, {}, sc.dir.path());
  CHECK(audit.out.find("\"action\":\"fixed\"") != std::string::npos);
  CHECK(audit.out.find("\"reviewer\":\"Sam\"") != std::string::npos);
  CHECK(audit.out.find("\"action\":\"written\"") != std::string::npos);
  auto csv = run_cli({"audit", "-c", cfg, "--record", id, "--format", "csv"}, {}, sc.dir.path());
  CHECK(csv.out.rfind("seq,time,action,object,source_id", 0) == 0);
}

TEST_CASE("SIGTERM stops a run cleanly after the in-flight batch and the next run completes it") {
  Scenario sc;
  std::string cfg = sc.config_file();
  REQUIRE(run_cli({"plan", "-c", cfg, "--approve", "--reviewer", "Avery"}, {}, sc.dir.path()).code == 0);
  std::string out_path = sc.dir.sub("run.out"), err_path = sc.dir.sub("run.err");
  pid_t pid = spawn_cli({"run", "-c", cfg}, {}, out_path, err_path);
  // Wait until contacts are being written (the run then still has deals, notes and activities
  // ahead of it), then ask it to stop.
  bool started = false;
  for (int i = 0; i < 400 && !started; ++i) {
    auto st = run_cli({"status", "-c", cfg, "--json"}, {}, sc.dir.path());
    auto v = json::parse(st.out).as_object();
    started = v.at("objects").at("contacts").at("written").to_number<int>() > 0;
    if (!started) ::usleep(25000);
  }
  REQUIRE(started);
  ::kill(pid, SIGTERM);
  CHECK(wait_exit_code(pid) == 1);
  CHECK(slurp_file(out_path).find("stopped cleanly on request") != std::string::npos);
  auto mid = json_out(run_cli({"status", "-c", cfg, "--json"}, {}, sc.dir.path()));
  CHECK(mid.at("objects").at("notes").at("written").to_number<int>() < 5721);

  auto resumed = run_cli({"run", "-c", cfg, "--json"}, {}, sc.dir.path());
  CHECK(resumed.code == 1);
  auto rep = json_out(resumed);
  CHECK(rep.at("objects").at("contacts").at("written").to_number<int>() == 3716);
  CHECK(rep.at("objects").at("notes").at("written").to_number<int>() == 5721);
  CHECK(duplicates_in(sc.dir.sub("sandbox/destination")) == 0);
}
