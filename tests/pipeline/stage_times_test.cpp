// When each step of the pipeline handled a record: the "stages" of plans and of the written and
// queued audit events (the review console's per-record timeline).
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/core/config.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"
#include "crmmigrate/store/lmdb_env.hpp"
#include "pipeline/state_internal.hpp"
#include "web/records.hpp"
#include "test_util.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

// A CSV of contacts → the HubSpot-preset sandbox holding one owner.
std::string stage_times_config(const std::string& csv, const std::string& state, const std::string& dest) {
  json::object fields{{"first_name", "firstname"}, {"email", "email"},
                      {"owner", json::object{{"to", "hubspot_owner_id"}, {"owner", true}}}};
  json::object contacts{{"name", "contacts"},
                        {"source", "contacts"},
                        {"destination", "contacts"},
                        {"fields", std::move(fields)},
                        {"drop", json::array{"updated_at"}},
                        {"dedup", json::object{{"keys", json::array{"external_id", "email"}}}}};
  json::object files{{"objects", json::object{{"contacts", json::object{{"path", csv},
                                                                        {"format", "csv"},
                                                                        {"id", "id"},
                                                                        {"updated_at", "updated_at"}}}}}};
  json::object cfg{{"name", "stage_times"},
                   {"state", state},
                   {"source", json::object{{"connector", "files"}, {"options", std::move(files)}}},
                   {"destination", json::object{{"connector", "sandbox"}, {"options", json::object{{"path", dest}}}}},
                   {"owners", json::object{{"match", json::array{"email"}}}},
                   {"objects", json::array{std::move(contacts)}}};
  return json::serialize(cfg);
}

// The "stages" of the last audit event of `record` whose action is `action` (null when none).
json::value stages_of(Migration& mig, const std::string& record, const std::string& action) {
  json::value out;
  REQUIRE(mig.audit(record, [&](const json::object& e) {
    if (e.at("action").as_string() == action) out = e.contains("stages") ? e.at("stages") : json::value();
    return true;
  }).is_ok());
  return out;
}

// Checks that `stages` holds exactly `names`, each an ISO-8601 UTC ms time, non-decreasing in
// that order (the fixed-width text orders like the times).
void check_stages(const json::value& stages, const std::vector<std::string>& names) {
  REQUIRE(stages.is_object());
  const auto& o = stages.get_object();
  CHECK(o.size() == names.size());
  std::string prev;
  for (const auto& n : names) {
    CAPTURE(n);
    REQUIRE(o.contains(n));
    REQUIRE(o.at(n).is_string());
    std::string t(o.at(n).get_string());
    CHECK(t.size() == 24);  // 2026-01-02T03:04:05.678Z
    CHECK(t.back() == 'Z');
    CHECK(t[10] == 'T');
    CHECK(prev <= t);
    prev = t;
  }
}

// `rows` (below the header) as a CSV of contacts, the HubSpot-preset sandbox holding one owner,
// and a Migration over them whose plan is signed off.
std::unique_ptr<Migration> open_contacts_migration(TempDir& dir, const std::string& rows,
                                                   const std::vector<sandbox::NewRecord>& destination_contacts = {}) {
  const std::string csv = dir.sub("contacts.csv");
  {
    std::ofstream out(csv);
    out << "id,first_name,email,owner,updated_at\n" << rows;
  }
  const std::string dest = dir.sub("destination");
  {
    auto sb = sandbox::SandboxCrm::create(dest, "hubspot");
    REQUIRE_MESSAGE(sb.is_ok(), sb.status().to_string());
    REQUIRE((*sb)->set_user(User{"9001", "owner@example.com", "Owner One", true}).is_ok());
    if (!destination_contacts.empty()) REQUIRE((*sb)->insert_many("contacts", destination_contacts).is_ok());
  }
  auto cfg = parse_config(stage_times_config(csv, dir.sub("state"), dest), "stage_times.json", dir.path());
  REQUIRE_MESSAGE(cfg.is_ok(), cfg.status().to_string());
  auto mig = Migration::open(std::move(*cfg));
  REQUIRE_MESSAGE(mig.is_ok(), mig.status().to_string());
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  return std::move(*mig);
}

// A dry run, then a run, of `mig` pause on the count check: `kept` records read of `expected`,
// the message naming the repeats as `repeats` says. Every record kept is counted (as pending),
// though neither run planned any.
void check_paused_on_repeats(Migration& mig, std::int64_t kept, std::int64_t expected, const std::string& repeats) {
  for (bool dry : {true, false}) {
    CAPTURE(dry);
    RunOptions ro;
    ro.dry_run = dry;
    auto r = mig.run(ro);
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    CHECK(r->state == "paused");
    CHECK(r->message.find("read " + std::to_string(kept) + " records, expected " + std::to_string(expected)) !=
          std::string::npos);
    CHECK(r->message.find(repeats) != std::string::npos);
    CHECK(r->objects.at(0).second.written == 0);
    CHECK(r->objects.at(0).second.source == kept);
    CHECK(r->objects.at(0).second.pending == kept);
  }
}

}  // namespace

TEST_CASE("plans and the written and queued audit events carry when each step handled the record") {
  TempDir dir;
  auto mig = open_contacts_migration(
      dir, std::string("1,Ada,ada@example.com,owner@example.com,2024-05-01T10:00:00Z\n")  // written
          + "2,Bob,bob@example.com,nobody@example.com,2024-05-01T10:00:00Z\n"     // owner unknown: queued by map
          + "3,Cy,not-an-email,owner@example.com,2024-05-01T10:00:00Z\n"          // invalid email: queued by validate
          + "4,Di,di@example.com,owner@example.com,2024-05-01T10:00:00Z\n"        // merged with 5 (same email)
          + "5,Di,DI@example.com,owner@example.com,2024-05-02T10:00:00Z\n"
          // Quotes and backslashes in a value: the plan is assembled from the stored JSON text.
          + "6,\"Ed \"\"the\\\"\" \\\\x\",ed@example.com,owner@example.com,2024-05-01T10:00:00Z\n");

  const std::vector<std::string> all = {"extracted", "mapped", "deduplicated", "validated"};
  SUBCASE("a real run") {
    auto r = mig->run(RunOptions{});
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    const auto& c = r->objects.at(0).second;
    CHECK(c.written == 3);
    CHECK(c.merged == 1);
    CHECK(c.queued == 2);

    check_stages(stages_of(*mig, "contacts/1", "written"), all);
    // A group written under its primary (5, the newest): both members carry the group's times.
    check_stages(stages_of(*mig, "contacts/5", "written"), all);
    check_stages(stages_of(*mig, "contacts/4", "merged"), all);
    // A mapping problem: the record got through extraction and mapping only.
    check_stages(stages_of(*mig, "contacts/2", "queued"), {"extracted", "mapped"});
    // A validation problem: every step up to validation.
    check_stages(stages_of(*mig, "contacts/3", "queued"), all);
    // The written event carries the plan's stages.
    json::value plan;
    REQUIRE(mig->state_env().read([&](store::Txn& t) -> Status {
      CMG_ASSIGN_OR_RETURN(auto v, t.get("plans", store::key_of({"contacts", "1"})));
      if (v) plan = json::parse(*v);
      return Status::ok();
    }).is_ok());
    REQUIRE(plan.is_object());
    CHECK(plan.at("stages") == stages_of(*mig, "contacts/1", "written"));
    json::value sent;
    REQUIRE(mig->audit("contacts/6", [&](const json::object& e) {
      if (e.at("action").as_string() == "written") sent = e.at("sent");
      return true;
    }).is_ok());
    REQUIRE(sent.is_object());
    CHECK(sent.at("firstname").as_string() == "Ed \"the\\\" \\\\x");
    check_stages(stages_of(*mig, "contacts/6", "written"), all);
  }
  SUBCASE("a dry run decides the same records with the same steps") {
    RunOptions dry;
    dry.dry_run = true;
    auto r = mig->run(dry);
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    const auto& c = r->objects.at(0).second;
    CHECK(c.queued == 2);
    CHECK(c.pending == 4);  // 1, 6 and the group 4+5 are planned, not written
    // The scratch state holds the plans with their stages: the group 4+5 stored, the records
    // created as mapped (1, 6) derived from their mapped values.
    auto env = store::Env::open(dir.sub("state") + "/dry-run");
    REQUIRE(env.is_ok());
    std::map<std::string, json::value> plans;
    std::size_t stored = 0;
    REQUIRE((*env)->read([&](store::Txn& t) -> Status {
      CMG_RETURN_IF_ERROR(t.scan("plans", "", [&](std::string_view, std::string_view) {
        ++stored;
        return true;
      }));
      for (const char* id : {"1", "5", "6"}) {
        CMG_ASSIGN_OR_RETURN(auto p, state::load_plan(t, "contacts", id));
        if (p) plans[id] = std::move(*p);
      }
      return Status::ok();
    }).is_ok());
    CHECK(stored == 1);
    REQUIRE(plans.size() == 3);
    CHECK(plans.at("1").at("action").as_string() == "create");
    CHECK(plans.at("1").at("members") == json::array{"1"});
    CHECK(plans.at("1").at("idempotency_key").as_string() == "1");
    CHECK(plans.at("5").at("members").as_array().size() == 2);
    check_stages(plans.at("1").at("stages"), all);
    check_stages(plans.at("5").at("stages"), all);
    CHECK(plans.at("6").at("fields").at("firstname").as_string() == "Ed \"the\\\" \\\\x");
    // The console's timeline shows a derived plan's dedup decision like a stored one.
    auto tl = web::record_timeline(**env, mig->config(), "contacts", "6");
    REQUIRE_MESSAGE(tl.is_ok(), tl.status().to_string());
    const json::object* dedup = nullptr;
    for (const auto& step : tl->at("timeline").as_array())
      if (step.at("step") == "dedup") dedup = &step.as_object();
    REQUIRE(dedup);
    CHECK(dedup->at("decision").as_string() == "create");
    CHECK(dedup->at("sent").at("firstname").as_string() == "Ed \"the\\\" \\\\x");
    CHECK(dedup->at("sent").at("crm_source_id").as_string() == "6");
  }
}

TEST_CASE("a source row that repeats an id is never dropped silently: the count check pauses") {
  // Extract keeps the first row of an id (a resumed extract meets its own records again); the
  // second row with that id is caught by the count check, in a dry run and in a run alike.
  // The pause names the repeated ids (the first five).
  TempDir dir;
  std::string rows = "1,Ada,ada@example.com,owner@example.com,2024-05-01T10:00:00Z\n"
                     "2,Bob,bob@example.com,owner@example.com,2024-05-01T10:00:00Z\n"
                     "2,Bea,bea@example.com,owner@example.com,2024-05-02T10:00:00Z\n";
  for (int i = 10; i < 16; ++i) rows += std::to_string(i) + ",R,r" + std::to_string(i) + "@example.com,owner@example.com,2024-05-01T10:00:00Z\n";
  for (int i = 10; i < 16; ++i) rows += std::to_string(i) + ",S,s" + std::to_string(i) + "@example.com,owner@example.com,2024-05-01T10:00:00Z\n";
  auto mig = open_contacts_migration(dir, rows);
  check_paused_on_repeats(*mig, 8, 15,
                          "7 rows repeat the id of an earlier row (only the first row of an id is kept): 2, 10, 11, 12, 13, ...");
}

TEST_CASE("a repeated id is caught whether the row kept or the repeat could be mapped") {
  // A dry run's extract maps what it can at once and leaves the rest (here: an owner with no
  // destination account) for later; both kinds of row must see the other's id.
  TempDir dir;
  std::string rows = "1,Ada,ada@example.com,owner@example.com,2024-05-01T10:00:00Z\n"
                     "3,Cy,cy@example.com,nobody@example.com,2024-05-01T10:00:00Z\n"
                     "3,Cy,cy@example.com,owner@example.com,2024-05-01T10:00:00Z\n"
                     "4,Di,di@example.com,owner@example.com,2024-05-01T10:00:00Z\n"
                     "4,Di,di@example.com,nobody@example.com,2024-05-01T10:00:00Z\n";
  auto mig = open_contacts_migration(dir, rows);
  check_paused_on_repeats(*mig, 3, 5, "2 rows repeat the id of an earlier row (only the first row of an id is kept): 3, 4;");
  // Accepted, the dry run plans the rows kept: 1 and 4 as creates, 3 queued for its owner.
  RunOptions accept;
  accept.dry_run = true;
  accept.accept_counts = true;
  accept.reviewer = "Avery";
  auto r = mig->run(accept);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->objects.at(0).second.source == 3);
  CHECK(r->objects.at(0).second.queued == 1);
  CHECK(r->objects.at(0).second.pending == 2);
}

TEST_CASE("a dry run stopped during its extract reports the records it read") {
  TempDir dir;
  std::string rows;
  for (int i = 1; i <= 1500; ++i) rows += std::to_string(i) + ",P,p" + std::to_string(i) + "@example.com,owner@example.com,2024-05-01T10:00:00Z\n";
  auto mig = open_contacts_migration(dir, rows);
  RunOptions ro;
  ro.dry_run = true;
  int batches = 0;
  ro.cancelled = [&] { return ++batches >= 1; };
  auto r = mig->run(ro);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  const auto& c = r->objects.at(0).second;
  CHECK(c.source > 0);
  CHECK(c.source < 1500);
  CHECK(c.pending == c.source);
  CHECK(r->message.find("stopped cleanly") != std::string::npos);
}

TEST_CASE("a resumed extract meeting the rows it stored before names no repeated id") {
  // An extract stopped after its first batch and run again reads those rows a second time:
  // they were kept by the earlier attempt, so they are not repeats of this pass.
  TempDir dir;
  std::string rows;
  for (int i = 1; i <= 1500; ++i) rows += std::to_string(i) + ",P,p" + std::to_string(i) + "@example.com,owner@example.com,2024-05-01T10:00:00Z\n";
  // One real repeat, of a row past the first attempt's batch (a repeat of a row kept by the earlier
  // attempt still pauses the run, but cannot be told from a row read again, so is not named).
  rows += "1400,Q,q1400@example.com,owner@example.com,2024-05-01T10:00:00Z\n";
  auto mig = open_contacts_migration(dir, rows);
  RunOptions stop_early;
  int batches = 0;
  stop_early.cancelled = [&] { return ++batches >= 1; };
  auto first = mig->run(stop_early);
  REQUIRE_MESSAGE(first.is_ok(), first.status().to_string());
  REQUIRE(first->objects.at(0).second.source < 1500);  // stopped part-way through the extract
  auto r = mig->run(RunOptions{});
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->state == "paused");
  CHECK(r->message.find("read 1500 records, expected 1501") != std::string::npos);
  CHECK(r->message.find("1 row repeats the id of an earlier row (only the first row of an id is kept): 1400;") !=
        std::string::npos);
}

// The external-id key (the destination's crm_source_id) in the dry run and the real run: a
// destination record holding the source id is matched by it; one holding another id is a
// different record, so a shared email must not merge into it (veto); one holding none merges by
// email. The dry run gives the deduplicator one stand-in value for every external id no
// destination holds (run.cpp, kStandIn): its decisions must be the real run's.
TEST_CASE("external ids match, veto and stay out of the way alike in the dry run and the real run") {
  TempDir dir;
  const std::vector<sandbox::NewRecord> existing = {
      {{{"email", "ada@example.com"}, {"crm_source_id", "99"}}, 1714557600000},   // another record's id
      {{{"email", "bob@example.com"}}, 1714557600000},                             // no external id
      {{{"email", "cy.old@example.com"}, {"crm_source_id", "3"}}, 1714557600000},  // source record 3
  };
  auto mig = open_contacts_migration(dir,
                                     std::string("1,Ada,ada@example.com,owner@example.com,2024-05-01T10:00:00Z\n") +
                                         "2,Bob,bob@example.com,owner@example.com,2024-05-01T10:00:00Z\n" +
                                         "3,Cy,cy@example.com,owner@example.com,2024-05-01T10:00:00Z\n" +
                                         "4,Di,di@example.com,owner@example.com,2024-05-01T10:00:00Z\n",
                                     existing);
  // Each record's plan as dedup decided it: its action, and the destination record it merges into.
  auto decisions = [&](const std::string& state_dir) {
    std::map<std::string, std::string> out;
    auto env = store::Env::open(state_dir);
    REQUIRE(env.is_ok());
    REQUIRE((*env)->read([&](store::Txn& t) -> Status {
      for (const char* id : {"1", "2", "3", "4"}) {
        CMG_ASSIGN_OR_RETURN(auto plan, state::load_plan(t, "contacts", id));
        REQUIRE(plan.has_value());
        std::string d = plan->contains("idempotency_key") ? "create" : std::string(plan->at("action").as_string());
        if (plan->contains("key")) d += " by " + std::string(plan->at("key").as_string());
        if (plan->contains("rerouted")) d += ", rerouted by the destination";
        out[id] = d;
      }
      return Status::ok();
    }).is_ok());
    return out;
  };
  RunOptions dry;
  dry.dry_run = true;
  auto dr = mig->run(dry);
  REQUIRE_MESSAGE(dr.is_ok(), dr.status().to_string());
  const std::map<std::string, std::string> expected = {
      {"1", "create by "},  // vetoed: the destination record with this email holds id 99
      {"2", "update by email"},
      {"3", "update by external_id"},  // its email differs: the id decides
      {"4", "create by "}};
  CHECK(decisions(dir.sub("state") + "/dry-run") == expected);

  auto rr = mig->run(RunOptions{});
  REQUIRE_MESSAGE(rr.is_ok(), rr.status().to_string());
  const auto& c = rr->objects.at(0).second;
  CHECK(c.written == 1);
  CHECK(c.merged == 2);
  // HubSpot keeps emails unique: record 1, planned as a create, is refused with a 409 naming the
  // record that holds the email. That record carries another source record's id, so it is not
  // merged into (as dedup decided): the record waits for a reviewer.
  CHECK(c.queued == 1);
  QueueFilter one;
  one.id = "contacts/1";
  auto items = mig->queue_list(one);
  REQUIRE_MESSAGE(items.is_ok(), items.status().to_string());
  REQUIRE(items->size() == 1);
  CHECK(items->front().at("reason").as_string() == "merge_conflict");
  const std::string text = json::serialize(items->front());
  CHECK(text.find("has crm_source_id '99' (another source record): not merged") != std::string::npos);
  mig.reset();
  CHECK(decisions(dir.sub("state")) == expected);
}
