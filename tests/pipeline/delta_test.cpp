#include <doctest/doctest.h>

#include <chrono>
#include <set>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "scenario_util.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json::object queue_item(Migration& m, const std::string& id) {
  QueueFilter f;
  f.id = id;
  f.status = "all";
  auto items = m.queue_list(f);
  REQUIRE(items.is_ok());
  REQUIRE(items->size() == 1);
  return items->front();
}

}  // namespace

TEST_CASE("the delta pass applies every source change made during the run, and queues what needs a person") {
  Scenario sc;
  auto src = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/source"));
  auto dst = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/destination"));
  REQUIRE(src.is_ok());
  REQUIRE(dst.is_ok());

  // Plain persons: written on their own (no duplicate, no pre-existing match, a provisioned owner).
  std::set<std::string> special(sc.manifest.unprovisioned_owner_person_ids.begin(),
                                sc.manifest.unprovisioned_owner_person_ids.end());
  for (const auto& p : sc.manifest.duplicate_pairs) special.insert({p.original_id, p.duplicate_id});
  for (const auto& p : sc.manifest.preexisting) special.insert(p.source_id);
  special.insert(sc.manifest.switchboard_person_ids.begin(), sc.manifest.switchboard_person_ids.end());
  special.insert(sc.manifest.script_person_id);
  std::vector<std::string> plain;
  {
    auto reader = (*src)->read("persons", ReadOptions{});
    REQUIRE(reader.is_ok());
    REQUIRE(for_each_batch(**reader, [&](RecordBatch& b) {
      for (const auto& r : b)
        if (!special.count(r.id) && plain.size() < 31) plain.push_back(r.id);
      return Status::ok();
    }).is_ok());
  }
  REQUIRE(plain.size() == 31);
  const std::string both_sides = plain[0];
  const std::string deleted = plain[30];
  std::vector<std::string> updated(plain.begin(), plain.begin() + 30);

  auto mig = Migration::open(sc.config(), *src, *dst);
  REQUIRE(mig.is_ok());
  Migration& m = **mig;
  REQUIRE(m.plan(true, "Avery").is_ok());

  // While contacts are being written (persons already extracted), the source keeps changing:
  // 30 updates and 5 new persons, all with the same timestamp, and one deletion.
  std::vector<std::string> created;
  bool changed = false;
  RunOptions ro;
  ro.progress = [&](const Progress& p) {
    if (changed || p.object != "contacts" || p.phase != "write") return;
    changed = true;
    std::int64_t t = wall_ms();
    for (const auto& id : updated)
      REQUIRE((*src)->update_fields("persons", id, json::object{{"first_name", "Renamed-" + id}}, t).is_ok());
    for (int i = 0; i < 5; ++i) {
      json::object f{{"name", "New Person " + std::to_string(i)}, {"first_name", "New"},
                     {"last_name", "Person" + std::to_string(i)},
                     {"email", json::array{json::object{{"value", "new.person" + std::to_string(i) + "@example.org"},
                                                        {"primary", true}, {"label", "work"}}}},
                     {"phone", json::array{}}, {"org_id", nullptr}, {"owner_id", 1}, {"label", nullptr},
                     {"visible_to", "3"}};
      auto id = (*src)->insert("persons", f, t);
      REQUIRE(id.is_ok());
      created.push_back(*id);
    }
    REQUIRE((*src)->remove("persons", deleted).is_ok());
  };
  auto r = m.run(ro);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  REQUIRE(changed);
  CHECK(counts_of(*r, "contacts").source == 4200);  // the main pass read the source before the changes

  // Someone edits one of the migrated contacts in the destination after our write.
  std::string both_dest_id;
  REQUIRE(m.audit("contacts/" + both_sides, [&](const json::object& e) {
    if (e.at("action").as_string() == "written") both_dest_id = std::string(e.at("destination_id").as_string());
    return true;
  }).is_ok());
  REQUIRE(!both_dest_id.empty());
  REQUIRE((*dst)->update_fields("contacts", both_dest_id, json::object{{"firstname", "Edited-In-HubSpot"}},
                                wall_ms() + 1000).is_ok());

  auto d = m.delta(RunOptions{});
  REQUIRE_MESSAGE(d.is_ok(), d.status().to_string());
  const auto& c = counts_of(*d, "contacts");
  CHECK(c.source == 4205);
  CHECK(c.pending == 0);
  CHECK(c.source == c.written + c.merged + c.queued + c.skipped);
  CHECK(c.written == 3716 + 5 - 2);  // 5 new; the both-sides and the deleted person wait for a person
  CHECK(c.queued == 34 + 2);

  // Every update reached the destination (29: one is held as both_sides_changed).
  for (std::size_t i = 1; i < updated.size(); ++i) {
    const auto& id = updated[i];
    auto recs = (*dst)->find("contacts", "crm_source_id", {id});
    REQUIRE(recs.is_ok());
    REQUIRE(recs->size() == 1);
    CAPTURE(id);
    CHECK(value_to_text(recs->front().fields.at("firstname")) == "Renamed-" + id);
  }
  for (const auto& id : created) {
    auto recs = (*dst)->find("contacts", "crm_source_id", {id});
    REQUIRE(recs.is_ok());
    CHECK(recs->size() == 1);
  }
  auto both = queue_item(m, "contacts/" + both_sides);
  CHECK(both.at("reason").as_string() == "both_sides_changed");
  CHECK(both.at("destination").at("firstname").as_string() == "Edited-In-HubSpot");
  const auto& prob = both.at("problems").at(0).as_object();
  CHECK(prob.at("field").as_string() == "firstname");
  CHECK(prob.at("value").as_string() == "Renamed-" + both_sides);
  auto gone = queue_item(m, "contacts/" + deleted);
  CHECK(gone.at("reason").as_string() == "deleted_in_source");
  // The destination keeps the record: nothing is deleted automatically.
  auto kept = (*dst)->find("contacts", "crm_source_id", {deleted});
  REQUIRE(kept.is_ok());
  CHECK(kept->size() == 1);

  // A second delta finds nothing new and changes nothing.
  auto d2 = m.delta(RunOptions{});
  REQUIRE(d2.is_ok());
  CHECK(counts_of(*d2, "contacts").written == c.written);
  CHECK(counts_of(*d2, "contacts").queued == c.queued);
  CHECK(d2->queue_open == d->queue_open);
}
