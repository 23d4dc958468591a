// crmmigrate: the command-line face of the library (DESIGN §5). Every command is a thin layer over
// cmg::Migration; human output is a short table, --json prints one machine-readable object.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "crmmigrate/connectors/files.hpp"
#include "crmmigrate/core/problem.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "crmmigrate/sandbox/reference.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"
#include "sandbox_serve.hpp"
#include "serve_cmd.hpp"

namespace json = boost::json;
using namespace cmg;

namespace {

// Exit codes of DESIGN §5.
enum Exit { kOk = 0, kIncomplete = 1, kUsage = 2, kHalted = 3, kLocked = 4, kPaused = 5, kUnreachable = 6 };

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

int exit_for(const Status& st) {
  switch (st.code()) {
    case Code::kLocked: return kLocked;
    case Code::kUnavailable:
    case Code::kPermissionDenied: return kUnreachable;
    default: return kUsage;
  }
}

int fail(const Status& st) {
  std::cerr << "crmmigrate: " << st.message() << "\n";
  return exit_for(st);
}

int exit_for_report(const Report& r) {
  if (r.state == "complete") return kOk;
  if (r.state == "halted") return kHalted;
  if (r.state == "paused") return kPaused;
  return kIncomplete;
}

void print_json(const json::value& v) { std::cout << json::serialize(v) << "\n"; }

void print_report(const Report& r, const std::string& title) {
  std::printf("%s: %s\n", title.c_str(), r.state.c_str());
  std::printf("  %-12s %8s %8s %8s %8s %8s %8s\n", "object", "source", "written", "merged", "queued", "skipped", "pending");
  for (const auto& [name, c] : r.objects)
    std::printf("  %-12s %8lld %8lld %8lld %8lld %8lld %8lld\n", name.c_str(), static_cast<long long>(c.source),
                static_cast<long long>(c.written), static_cast<long long>(c.merged), static_cast<long long>(c.queued),
                static_cast<long long>(c.skipped), static_cast<long long>(c.pending));
  std::printf("  queue open: %lld   read-back mismatches: %lld\n", static_cast<long long>(r.queue_open),
              static_cast<long long>(r.readback_mismatches));
  for (const auto& d : r.discrepancies) std::printf("  discrepancy: %s\n", json::serialize(d).c_str());
  if (!r.message.empty()) std::printf("  %s\n", r.message.c_str());
}

struct ProgressLine {
  bool tty = ::isatty(2) != 0;
  std::string last;
  void operator()(const cmg::Progress& p) {
    if (!tty) return;
    std::string line = "  " + p.object + " " + p.phase + " " + std::to_string(p.done) +
                       (p.total >= 0 ? "/" + std::to_string(p.total) : std::string());
    std::fprintf(stderr, "\r%-60s", line.c_str());
    last = line;
  }
  void done() {
    if (tty && !last.empty()) std::fprintf(stderr, "\r%-60s\r", "");
  }
};

Result<std::unique_ptr<Migration>> open_migration(const std::string& config_path) {
  CMG_ASSIGN_OR_RETURN(auto cfg, load_config(config_path));
  CMG_ASSIGN_OR_RETURN(auto m, Migration::open(std::move(cfg)));
  m->set_alert_callback([](const Alert& a) { std::cerr << "ALERT [" << a.kind << "] " << a.message << "\n"; });
  return m;
}

Result<json::object> parse_sets(const std::vector<std::string>& sets) {
  json::object o;
  for (const auto& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) return invalid_argument("--set expects field=value, got '" + s + "'");
    o[s.substr(0, eq)] = s.substr(eq + 1);
  }
  return o;
}

void print_plan(const json::object& p) {
  std::printf("plan for migration '%s'\n", json::value_to<std::string>(p.at("migration")).c_str());
  for (const auto& [name, ov] : p.at("objects").get_object()) {
    const auto& o = ov.get_object();
    std::printf("  %s (%s → %s): %lld source records\n", std::string(name).c_str(),
                json::value_to<std::string>(o.at("source_object")).c_str(),
                o.at("destination").is_string() ? std::string(o.at("destination").get_string()).c_str() : "routed",
                static_cast<long long>(o.at("source_count").to_number<std::int64_t>()));
    auto list = [&](const char* key, const char* label) {
      const auto& a = o.at(key).get_array();
      if (a.empty()) return;
      std::printf("    %s:", label);
      for (const auto& e : a) std::printf(" %s", value_to_text(e).c_str());
      std::printf("\n");
    };
    list("unmapped_fields", "UNMAPPED source fields (map or drop them)");
    list("unknown_destination_fields", "UNKNOWN destination fields");
    list("read_only_targets", "READ-ONLY destination fields mapped");
    list("required_uncovered", "REQUIRED destination fields not covered");
    for (const auto& u : o.at("untranslated_values").get_array())
      std::printf("    untranslated value: table '%s' value '%s' in %lld records → queue (unmapped_value)\n",
                  std::string(u.at("table").get_string()).c_str(), std::string(u.at("value").get_string()).c_str(),
                  static_cast<long long>(u.at("count").to_number<std::int64_t>()));
    for (const auto& u : o.at("unresolved_owners").get_array())
      std::printf("    unresolved owner: %s owns %lld records → queue (owner_unprovisioned)\n",
                  std::string(u.at("owner").get_string()).c_str(),
                  static_cast<long long>(u.at("records").to_number<std::int64_t>()));
  }
  const auto& pr = p.at("projected").get_object();
  std::printf("  projected: %lld write calls, about %.0f s under the destination's quota\n",
              static_cast<long long>(pr.at("write_calls").to_number<std::int64_t>()),
              pr.at("duration_seconds").to_number<double>());
  const auto& blocking = p.at("blocking").get_array();
  if (!blocking.empty()) {
    std::printf("  BLOCKING gaps (run refuses until fixed):\n");
    for (const auto& b : blocking) std::printf("    - %s\n", std::string(b.get_string()).c_str());
  }
  if (p.at("approved").as_bool()) {
    const auto& s = p.at("signoff").get_object();
    std::printf("  signed off by %s at %s\n", std::string(s.at("reviewer").get_string()).c_str(),
                std::string(s.at("at").get_string()).c_str());
  } else {
    std::printf("  not signed off: approve with `crmmigrate plan -c CONFIG --approve --reviewer NAME`\n");
  }
}

void print_queue_item_line(const json::object& item) {
  std::string detail;
  if (const auto* ps = item.if_contains("problems"); ps && ps->is_array() && !ps->get_array().empty()) {
    const auto& p = ps->get_array()[0].get_object();
    detail = std::string(p.at("field").get_string()) + "='" + std::string(p.at("value").get_string()) + "' " +
             std::string(p.at("message").get_string());
    if (const auto* s = p.if_contains("suggestion")) detail += " (suggestion: " + value_to_text(*s) + ")";
  }
  std::printf("%-22s %-20s %-7s %s\n", std::string(item.at("id").get_string()).c_str(),
              std::string(item.at("reason").get_string()).c_str(), std::string(item.at("status").get_string()).c_str(),
              detail.c_str());
}

void csv_cell(std::string& out, const std::string& s) {
  bool quote = s.find_first_of(",\"\r\n") != std::string::npos;
  if (!quote) {
    out += s;
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  CLI::App app{"crmmigrate — moves CRM data so that every record is written, merged, queued or skipped"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("crmmigrate ") + CMG_VERSION_STRING);
  std::string config;
  bool as_json = false;
  std::string reviewer, note;

  auto add_common = [&](CLI::App* c) {
    c->add_option("-c,--config", config, "migration config (migration.json)")->required()->check(CLI::ExistingFile);
    c->add_flag("--json", as_json, "print one machine-readable JSON object");
  };

  auto* plan = app.add_subcommand("plan", "coverage report (no writes); --approve records the sign-off run requires");
  add_common(plan);
  bool approve = false;
  plan->add_flag("--approve", approve, "sign off this plan");
  plan->add_option("--reviewer", reviewer, "who signs off");

  auto* run = app.add_subcommand("run", "run or resume the migration");
  add_common(run);
  RunOptions ro;
  std::int64_t limit = -1;
  run->add_flag("--dry-run", ro.dry_run, "extract, map, dedup and validate only (scratch state, no writes)");
  run->add_option("--object", ro.only_object, "only this object");
  run->add_option("--limit", limit, "write at most N records in this run")->check(CLI::PositiveNumber);
  auto* acc = run->add_flag("--accept-counts", ro.accept_counts, "continue after a count-mismatch pause");
  auto* ack = run->add_flag("--ack-halt", ro.ack_halt, "resume after an error-rate halt");
  acc->excludes(ack);
  run->add_option("--reviewer", ro.reviewer, "who accepts (recorded in the audit log)");

  auto* delta = app.add_subcommand("delta", "apply what changed in the source since the main extraction");
  add_common(delta);

  auto* status = app.add_subcommand("status", "counts per object from the state");
  add_common(status);
  auto* reconcile = app.add_subcommand("reconcile", "accounting equation and read-back of every confirmed record");
  add_common(reconcile);

  auto* queue = app.add_subcommand("queue", "the conflict queue");
  queue->require_subcommand(1);
  QueueFilter qf;
  std::vector<std::string> sets;
  std::string item_id;
  std::size_t offset = 0, qlimit = 0;
  auto add_filter = [&](CLI::App* c) {
    c->add_option("--reason", qf.reason, "reason code")->check(CLI::IsMember(reason_names()));
    c->add_option("--object", qf.object, "object name");
    c->add_option("--field", qf.field, "items with a problem on this field");
    c->add_option("--text", qf.text, "items whose content contains TEXT");
  };
  auto* qlist = queue->add_subcommand("list", "list queue items (open and fixed by default)");
  add_common(qlist);
  add_filter(qlist);
  qlist->add_option("--status", qf.status, "open, fixed, resolved, skipped or all")
      ->check(CLI::IsMember({"open", "fixed", "resolved", "skipped", "all"}));
  qlist->add_option("--offset", offset, "skip the first N");
  qlist->add_option("--limit", qlimit, "at most N items");
  auto* qshow = queue->add_subcommand("show", "one queue item with its field-level detail");
  add_common(qshow);
  qshow->add_option("id", item_id, "item id (object/source id)")->required();
  auto* qfix = queue->add_subcommand("fix", "record a correction on one item or on every item of a filter");
  add_common(qfix);
  qfix->add_option("id", item_id, "item id (object/source id)");
  add_filter(qfix);
  qfix->add_option("--set", sets, "field=value (destination field), repeatable");
  qfix->add_option("--reviewer", reviewer, "who fixes")->required();
  qfix->add_option("--note", note, "why");
  auto* qskip = queue->add_subcommand("skip", "skip one item or every item of a filter, with a reason");
  add_common(qskip);
  qskip->add_option("id", item_id, "item id (object/source id)");
  add_filter(qskip);
  qskip->add_option("--reviewer", reviewer, "who skips")->required();
  qskip->add_option("--note", note, "why the record is not migrated")->required();
  auto* qre = queue->add_subcommand("reprocess", "run fixed items (and released children) through the pipeline");
  add_common(qre);

  auto* audit = app.add_subcommand("audit", "the audit log");
  add_common(audit);
  std::string record, format = "jsonl";
  audit->add_option("--record", record, "one record: object/source id, or a source id");
  audit->add_option("--format", format, "jsonl or csv")->check(CLI::IsMember({"jsonl", "csv"}));

  auto* sandbox = app.add_subcommand("sandbox", "the built-in sandbox CRM");
  sandbox->require_subcommand(1);
  auto* seed = sandbox->add_subcommand("seed", "create sandbox CRMs for a scenario");
  std::string scenario = "reference", dir = "sandbox-data/reference";
  std::uint64_t seed_value = 42;
  bool force = false;
  seed->add_option("--scenario", scenario, "scenario name")->check(CLI::IsMember({"reference"}));
  seed->add_option("--dir", dir, "directory for source/ and destination/")->capture_default_str();
  seed->add_option("--seed", seed_value, "random seed")->capture_default_str();
  seed->add_flag("--force", force, "replace existing sandboxes in --dir");
  seed->add_flag("--json", as_json, "print the manifest as JSON");
  cli::SandboxServeArgs sandbox_serve;
  cli::add_sandbox_serve_command(*sandbox, sandbox_serve);

  cli::ServeArgs serve;
  cli::add_serve_command(app, serve);

  CLI11_PARSE(app, argc, argv);
  if (serve.command->parsed()) return cli::run_serve_command(serve);
  if (sandbox_serve.command->parsed()) return cli::run_sandbox_serve_command(sandbox_serve);
  ro.cancelled = [] { return g_stop.load(); };
  if (limit > 0) ro.limit = limit;

  try {
    if (seed->parsed()) {
      namespace fs = std::filesystem;
      if (fs::exists(dir) && !fs::is_empty(dir)) {
        if (!force) return fail(invalid_argument("--dir " + dir + " is not empty; pass --force to replace it"));
        fs::remove_all(dir);
      }
      auto m = sandbox::seed_reference(dir + "/source", dir + "/destination", seed_value);
      if (!m.is_ok()) return fail(m.status());
      if (as_json) {
        print_json(m->to_json());
      } else {
        std::printf("seeded scenario '%s' (seed %llu) in %s\n", scenario.c_str(),
                    static_cast<unsigned long long>(seed_value), dir.c_str());
        std::printf("  source (pipedrive preset): %s/source\n  destination (hubspot preset): %s/destination\n",
                    dir.c_str(), dir.c_str());
        std::printf("  manifest: %s/source/manifest.json\n", dir.c_str());
      }
      return kOk;
    }

    auto mig = open_migration(config);
    if (!mig.is_ok()) return fail(mig.status());
    Migration& m = **mig;
    ProgressLine progress;
    ro.progress = [&](const cmg::Progress& p) { progress(p); };

    if (plan->parsed()) {
      auto p = m.plan(approve, reviewer);
      if (!p.is_ok()) return fail(p.status());
      if (as_json) print_json(*p);
      else print_plan(*p);
      if (!p->at("blocking").get_array().empty()) return kIncomplete;
      return kOk;
    }
    if (run->parsed() || qre->parsed() || delta->parsed()) {
      auto r = qre->parsed() ? m.reprocess(ro) : delta->parsed() ? m.delta(ro) : m.run(ro);
      progress.done();
      if (!r.is_ok()) return fail(r.status());
      if (as_json) print_json(r->to_json());
      else print_report(*r, qre->parsed() ? "reprocess" : delta->parsed() ? "delta" : (ro.dry_run ? "dry run" : "run"));
      if (ro.dry_run && r->state != "halted" && r->state != "paused") return kOk;
      return exit_for_report(*r);
    }
    if (status->parsed()) {
      auto r = m.status();
      if (!r.is_ok()) return fail(r.status());
      if (as_json) print_json(r->to_json());
      else print_report(*r, "status");
      return exit_for_report(*r);
    }
    if (reconcile->parsed()) {
      auto r = m.reconcile(ro);
      progress.done();
      if (!r.is_ok()) return fail(r.status());
      if (as_json) print_json(r->to_json());
      else print_report(*r, "reconcile");
      return exit_for_report(*r);
    }
    if (qlist->parsed()) {
      auto items = m.queue_list(qf, offset, qlimit ? qlimit : SIZE_MAX);
      if (!items.is_ok()) return fail(items.status());
      if (as_json) {
        json::array a;
        for (auto& i : *items) a.push_back(std::move(i));
        print_json(json::object{{"items", std::move(a)}});
      } else {
        for (const auto& i : *items) print_queue_item_line(i);
        std::printf("%zu item(s)\n", items->size());
      }
      return kOk;
    }
    if (qshow->parsed()) {
      QueueFilter f;
      f.id = item_id;
      f.status = "all";
      auto items = m.queue_list(f, 0, 1);
      if (!items.is_ok()) return fail(items.status());
      if (items->empty()) return fail(not_found("no queue item '" + item_id + "'"));
      if (as_json) {
        print_json(items->front());
      } else {
        const auto& i = items->front();
        print_queue_item_line(i);
        for (const auto& p : i.at("problems").get_array()) {
          const auto& po = p.get_object();
          std::printf("  problem: field %s value '%s' rule %s: %s", std::string(po.at("field").get_string()).c_str(),
                      std::string(po.at("value").get_string()).c_str(), std::string(po.at("rule").get_string()).c_str(),
                      std::string(po.at("message").get_string()).c_str());
          if (const auto* s = po.if_contains("suggestion")) std::printf(" (suggestion: %s)", value_to_text(*s).c_str());
          std::printf("\n");
        }
        if (const auto* s = i.if_contains("source")) std::printf("  source: %s\n", json::serialize(*s).c_str());
        if (const auto* c = i.if_contains("corrections"); c && !c->get_object().empty())
          std::printf("  corrections: %s\n", json::serialize(*c).c_str());
        if (const auto* h = i.if_contains("history"))
          for (const auto& e : h->get_array()) std::printf("  history: %s\n", json::serialize(e).c_str());
      }
      return kOk;
    }
    if (qfix->parsed() || qskip->parsed()) {
      qf.id = item_id;
      auto set = parse_sets(sets);
      if (!set.is_ok()) return fail(set.status());
      auto n = qfix->parsed() ? m.queue_fix(qf, *set, reviewer, note) : m.queue_skip(qf, reviewer, note);
      if (!n.is_ok()) return fail(n.status());
      if (as_json) print_json(json::object{{qfix->parsed() ? "fixed" : "skipped", *n}});
      else std::printf("%s %lld item(s)%s\n", qfix->parsed() ? "fixed" : "skipped", static_cast<long long>(*n),
                       qfix->parsed() ? "; run `crmmigrate queue reprocess` to write them" : "");
      return *n > 0 ? kOk : kIncomplete;
    }
    if (audit->parsed()) {
      bool header = false;
      Status st = m.audit(record, [&](const json::object& e) {
        if (format == "jsonl") {
          std::cout << json::serialize(e) << "\n";
          return true;
        }
        static const char* cols[] = {"seq", "time", "action", "object", "source_id", "destination_id", "key",
                                     "rule", "reason", "reviewer", "note"};
        std::string line;
        if (!header) {
          for (const char* c : cols) line += std::string(line.empty() ? "" : ",") + c;
          std::cout << line << "\n";
          header = true;
          line.clear();
        }
        bool first = true;
        for (const char* c : cols) {
          if (!first) line += ',';
          first = false;
          const auto* v = e.if_contains(c);
          csv_cell(line, v ? value_to_text(*v) : "");
        }
        std::cout << line << "\n";
        return true;
      });
      if (!st.is_ok()) return fail(st);
      return kOk;
    }
  } catch (const std::exception& e) {
    std::cerr << "crmmigrate: internal error: " << e.what() << "\n";
    return kUsage;
  }
  return kUsage;
}
