#include <doctest/doctest.h>

#include <map>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "scenario_util.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

std::int64_t queued_with(Migration& m, const std::string& object, const std::string& reason) {
  QueueFilter f;
  f.object = object;
  f.reason = reason;
  auto items = m.queue_list(f);
  REQUIRE(items.is_ok());
  return static_cast<std::int64_t>(items->size());
}


}  // namespace

TEST_CASE("the reference scenario runs end to end: queue, fixes, reprocess, reconcile complete") {
  Scenario sc;
  auto mig = Migration::open(sc.config());
  REQUIRE_MESSAGE(mig.is_ok(), mig.status().to_string());
  Migration& m = **mig;

  // Plan: no blocking gaps; the untranslated stage and the unprovisioned owner are reported.
  auto plan = m.plan(false, "");
  REQUIRE(plan.is_ok());
  CHECK(plan->at("blocking").as_array().empty());
  const auto& deals_plan = plan->at("objects").at("deals").as_object();
  REQUIRE(deals_plan.at("untranslated_values").as_array().size() == 1);
  CHECK(deals_plan.at("untranslated_values").at(0).at("value").as_string() == "2/9");
  CHECK(deals_plan.at("untranslated_values").at(0).at("count").to_number<std::int64_t>() == 140);
  const auto& contacts_plan = plan->at("objects").at("contacts").as_object();
  REQUIRE(contacts_plan.at("unresolved_owners").as_array().size() == 1);
  CHECK(contacts_plan.at("unresolved_owners").at(0).at("records").to_number<std::int64_t>() == 34);

  // Run refuses without sign-off.
  RunOptions ro;
  auto refused = m.run(ro);
  CHECK(refused.status().code() == Code::kInvalidArgument);
  REQUIRE(m.plan(true, "Avery").is_ok());

  auto r = m.run(ro);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->state == "incomplete");
  check_against_manifest(*r, sc.manifest);
  CHECK(counts_of(*r, "contacts").written == 3716);
  CHECK(counts_of(*r, "contacts").merged == 450);
  CHECK(counts_of(*r, "companies").merged == 40);
  // The numbers the README pins.
  CHECK(counts_of(*r, "deals").written == 1640);
  CHECK(counts_of(*r, "notes").written == 5721);
  CHECK(counts_of(*r, "notes").queued == 279);
  CHECK(counts_of(*r, "activities").written == 370);
  CHECK(counts_of(*r, "activities").queued == 30);
  CHECK(queued_with(m, "deals", "unmapped_value") == 140);
  CHECK(queued_with(m, "deals", "parent_queued") == 20);
  CHECK(queued_with(m, "contacts", "owner_unprovisioned") == 34);
  CHECK(queued_with(m, "notes", "orphan_reference") == 12);
  CHECK(queued_with(m, "notes", "parent_queued") ==
        static_cast<std::int64_t>(sc.manifest.parent_queued_note_ids.size()));

  // A queued deal carries field-level detail and a suggestion.
  QueueFilter f;
  f.id = "deals/" + sc.manifest.unmapped_stage_deal_ids.front();
  auto item = m.queue_list(f);
  REQUIRE(item.is_ok());
  REQUIRE(item->size() == 1);
  const auto& prob = item->front().at("problems").at(0).as_object();
  CHECK(prob.at("field").as_string() == "dealstage");
  CHECK(prob.at("value").as_string() == "2/9 (On Hold)");
  CHECK(prob.at("rule").as_string() == "translation:stage");
  CHECK(prob.at("reason").as_string() == "unmapped_value");

  // Reviewer fixes: the stage translation goes into the config (a new version, signed off again),
  // the 34 contacts get a provisioned owner, the orphan notes are skipped.
  mig->reset();
  auto mig2 = Migration::open(sc.config(true));
  REQUIRE(mig2.is_ok());
  Migration& m2 = **mig2;
  CHECK(m2.run(ro).status().code() == Code::kInvalidArgument);  // config changed: sign-off needed again
  REQUIRE(m2.plan(true, "Avery").is_ok());
  QueueFilter owners;
  owners.reason = "owner_unprovisioned";
  owners.object = "contacts";
  auto fixed = m2.queue_fix(owners, json::object{{"hubspot_owner_id", sc.manifest.reassign_owner_id}}, "Sam", "reassigned");
  REQUIRE(fixed.is_ok());
  CHECK(*fixed == 34);
  QueueFilter orphans;
  orphans.reason = "orphan_reference";
  auto skipped = m2.queue_skip(orphans, "Sam", "person deleted in the source");
  REQUIRE(skipped.is_ok());
  CHECK(*skipped == 12);

  auto rr = m2.reprocess(ro);
  REQUIRE_MESSAGE(rr.is_ok(), rr.status().to_string());
  CHECK(rr->queue_open == 0);
  CHECK(counts_of(*rr, "deals").written == 1800);
  CHECK(counts_of(*rr, "contacts").written == 3716 + 34);
  CHECK(counts_of(*rr, "notes").skipped == 12);
  CHECK(counts_of(*rr, "notes").written == 6000 - 12);

  auto rec = m2.reconcile();
  REQUIRE(rec.is_ok());
  CHECK(rec->readback_mismatches == 0);
  CHECK(rec->complete);
  CHECK(rec->state == "complete");
  for (const auto& entry : rec->objects) {
    const auto& name = entry.first;  // not a structured binding: doctest's macros capture it
    const auto& c = entry.second;
    CAPTURE(name);
    CHECK(c.source == c.written + c.merged + c.queued + c.skipped);
    CHECK(c.pending == 0);
  }

  // 0 duplicates in the destination: every idempotency key appears once.
  auto dest = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/destination"));
  REQUIRE(dest.is_ok());
  for (const char* obj : {"contacts", "companies", "deals", "notes", "calls", "meetings", "tasks", "emails"}) {
    std::map<std::string, int> seen;
    ReadOptions rop;
    auto reader = (*dest)->list(obj, rop);
    REQUIRE(reader.is_ok());
    RecordBatch b;
    while (true) {
      auto more = (*reader)->next(b);
      REQUIRE(more.is_ok());
      if (!*more) break;
      for (const auto& rec2 : b)
        if (const auto* k = rec2.fields.if_contains("crm_source_id"); k && !value_is_blank(*k)) ++seen[value_to_text(*k)];
    }
    for (const auto& entry : seen) {
      const auto& k = entry.first;
      const auto& n = entry.second;
      CAPTURE(obj);
      CAPTURE(k);
      CHECK(n == 1);
    }
  }
}

TEST_CASE("the audit log explains each record's outcome with the key and rule used") {
  Scenario sc;
  auto mig = Migration::open(sc.config());
  REQUIRE(mig.is_ok());
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  RunOptions ro;
  REQUIRE((*mig)->run(ro).is_ok());
  // A duplicate pair inside the source: one is written, the other merged into it by the shared key.
  const auto& pair = sc.manifest.duplicate_pairs.front();
  std::map<std::string, json::object> last;
  for (const auto& id : {pair.original_id, pair.duplicate_id}) {
    REQUIRE((*mig)->audit("contacts/" + id, [&](const json::object& e) {
      last[id] = e;
      return true;
    }).is_ok());
  }
  REQUIRE(last.size() == 2);
  const auto& a = last[pair.original_id];
  const auto& b = last[pair.duplicate_id];
  const auto& merged = a.at("action").as_string() == "merged" ? a : b;
  const auto& written = a.at("action").as_string() == "merged" ? b : a;
  CHECK(written.at("action").as_string() == "written");
  CHECK(merged.at("action").as_string() == "merged");
  CHECK(merged.at("key").as_string() == pair.key);
  CHECK(merged.at("destination_id") == written.at("destination_id"));
  CHECK(written.contains("sent"));
}
