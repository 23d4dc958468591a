#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/sandbox/reference.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"
#include "test_util.hpp"

using namespace cmg;
using namespace cmg::sandbox;
namespace json = boost::json;

namespace {

// The seed-42 scenario, generated once for all test cases of this file.
struct Scenario {
  TempDir dir;
  ReferenceManifest manifest;
  std::shared_ptr<SandboxCrm> src, dst;
  std::map<std::string, std::vector<Record>> source;       // object → records in id order
  std::map<std::string, std::vector<Record>> destination;  // object → records in id order
};

std::vector<Record> all_records(SandboxCrm& crm, const std::string& object) {
  ReadOptions opts;
  opts.batch_size = 1000;
  auto reader = crm.read(object, opts);
  REQUIRE(reader.is_ok());
  std::vector<Record> out;
  RecordBatch batch;
  for (;;) {
    auto more = (*reader)->next(batch);
    REQUIRE(more.is_ok());
    if (!*more) break;
    for (auto& r : batch) out.push_back(std::move(r));
  }
  return out;
}

const Scenario& scenario() {
  static std::unique_ptr<Scenario> s = [] {
    auto sc = std::make_unique<Scenario>();
    auto m = seed_reference(sc->dir.sub("pipedrive"), sc->dir.sub("hubspot"), 42);
    REQUIRE(m.is_ok());
    sc->manifest = *m;
    sc->src = *SandboxCrm::open(sc->dir.sub("pipedrive"));
    sc->dst = *SandboxCrm::open(sc->dir.sub("hubspot"));
    for (const char* o : {"organizations", "persons", "deals", "notes", "activities"})
      sc->source[o] = all_records(*sc->src, o);
    for (const char* o : {"companies", "contacts", "deals", "notes"}) sc->destination[o] = all_records(*sc->dst, o);
    return sc;
  }();
  return *s;
}

// Every record of both sandboxes as JSON lines, plus their users.
std::string dump(const std::string& dir) {
  auto crm = SandboxCrm::open(dir);
  REQUIRE(crm.is_ok());
  auto schema = (*crm)->schema();
  REQUIRE(schema.is_ok());
  std::ostringstream out;
  out << json::serialize(schema_to_json(*schema)) << "\n";
  for (const auto& [name, obj] : schema->objects)
    for (const auto& r : all_records(**crm, name)) out << json::serialize(record_to_json(r)) << "\n";
  return out.str();
}

std::string text(const json::object& f, const char* k) {
  const auto* v = f.if_contains(k);
  return v ? value_to_text(*v) : std::string();
}

// The primary value of a Pipedrive [{value, primary}] list.
std::string primary(const json::object& f, const char* k) {
  const auto* v = f.if_contains(k);
  if (!v || !v->is_array() || v->get_array().empty()) return {};
  return value_to_text(v->get_array()[0].get_object().at("value"));
}

std::string norm_email(std::string e) {
  auto b = e.find_first_not_of(' ');
  auto end = e.find_last_not_of(' ');
  e = b == std::string::npos ? std::string() : e.substr(b, end - b + 1);
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

// Ten NANP digits, extension dropped.
std::string norm_phone(const std::string& p) {
  std::string head = p.substr(0, p.find_first_of("xe#"));
  std::string d;
  for (char c : head)
    if (c >= '0' && c <= '9') d += c;
  if (d.size() == 11 && d[0] == '1') d.erase(0, 1);
  return d.size() == 10 ? d : std::string();
}

std::string norm_name(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ' ') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::map<std::string, const Record*> by_id(const std::vector<Record>& v) {
  std::map<std::string, const Record*> m;
  for (const auto& r : v) m[r.id] = &r;
  return m;
}

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("the reference scenario has the exact record counts of the seed scenario") {
  const auto& s = scenario();
  const auto& m = s.manifest;
  CHECK(s.source.at("organizations").size() == 600);
  CHECK(s.source.at("persons").size() == 4200);
  CHECK(s.source.at("deals").size() == 1800);
  CHECK(s.source.at("notes").size() == 6000);
  CHECK(s.source.at("activities").size() == 400);
  CHECK(m.source_counts.at("persons") == 4200);
  CHECK(m.destination_counts.at("companies") == 70);
  CHECK(m.destination_counts.at("contacts") == 500);
  CHECK(s.destination.at("companies").size() == 70);
  CHECK(s.destination.at("contacts").size() == 500);
  std::map<std::string, int> types;
  for (const auto& r : s.source.at("activities")) ++types[text(r.fields, "type")];
  CHECK(types == std::map<std::string, int>{{"call", 100}, {"email", 100}, {"meeting", 100}, {"task", 100}});
  auto users = s.src->schema()->users;
  CHECK(users.size() == 8);
  CHECK(s.dst->schema()->users.size() == 9);
}

TEST_CASE("the manifest's expected outcomes are the seed scenario's numbers") {
  const auto& e = scenario().manifest.expected;
  const auto& contacts = e.at("persons");
  CHECK(contacts.destination == "contacts");
  CHECK(contacts.written == 3716);
  CHECK(contacts.merged == 450);
  CHECK(contacts.queued == 34);
  CHECK(contacts.queued_by_reason.at("owner_unprovisioned") == 34);
  CHECK(e.at("organizations").written == 560);
  CHECK(e.at("organizations").merged == 40);
  CHECK(e.at("deals").written == 1640);
  CHECK(e.at("deals").queued == 160);
  CHECK(e.at("deals").queued_by_reason.at("unmapped_value") == 140);
  CHECK(e.at("deals").queued_by_reason.at("parent_queued") == 20);
  for (const auto& entry : e)
    CHECK_MESSAGE(entry.second.written + entry.second.merged + entry.second.queued + entry.second.skipped == entry.second.source,
                  entry.first);
  CHECK(e.at("notes").queued_by_reason.at("orphan_reference") == 12);
  CHECK(e.at("notes").queued_by_reason.at("parent_queued") ==
        static_cast<std::int64_t>(scenario().manifest.parent_queued_note_ids.size()));
  std::int64_t activity_queued = 0;
  for (const auto& [type, o] : scenario().manifest.expected_activities) {
    CHECK(o.source == 100);
    activity_queued += o.queued;
  }
  CHECK(activity_queued == e.at("activities").queued);
  CHECK(activity_queued > 0);
  CHECK(e.at("notes").queued > 12);
}

TEST_CASE("140 deals are on hold in stage 9 and 20 others belong to persons of the unprovisioned user") {
  const auto& s = scenario();
  const auto& m = s.manifest;
  std::set<std::string> stage9;
  for (const auto& r : s.source.at("deals"))
    if (text(r.fields, "stage_id") == "9") {
      CHECK(text(r.fields, "pipeline_id") == "2");
      stage9.insert(r.id);
    }
  CHECK(stage9.size() == 140);
  CHECK(stage9 == as_set(m.unmapped_stage_deal_ids));

  const auto unprovisioned = as_set(m.unprovisioned_owner_person_ids);
  std::set<std::string> on_their_persons;
  for (const auto& r : s.source.at("deals")) {
    if (unprovisioned.count(text(r.fields, "person_id"))) on_their_persons.insert(r.id);
    CHECK(text(r.fields, "user_id") != "8");
  }
  CHECK(on_their_persons.size() == 20);
  CHECK(on_their_persons == as_set(m.parent_queued_deal_ids));
  for (const auto& id : on_their_persons) CHECK(stage9.count(id) == 0);
}

TEST_CASE("34 persons are owned by the unprovisioned user and are neither duplicates nor pre-existing") {
  const auto& s = scenario();
  const auto& m = s.manifest;
  std::set<std::string> owned;
  for (const auto& r : s.source.at("persons"))
    if (text(r.fields, "owner_id") == "8") owned.insert(r.id);
  CHECK(owned.size() == 34);
  CHECK(owned == as_set(m.unprovisioned_owner_person_ids));
  for (const auto& p : m.duplicate_pairs) {
    CHECK(owned.count(p.original_id) == 0);
    CHECK(owned.count(p.duplicate_id) == 0);
  }
  for (const auto& p : m.preexisting)
    if (p.source_object == "persons") CHECK(owned.count(p.source_id) == 0);
  for (const auto& r : s.source.at("organizations")) CHECK(text(r.fields, "owner_id") != "8");
}

TEST_CASE("the owners map by email, by email in another case, by name, or not at all") {
  const auto& m = scenario().manifest;
  REQUIRE(m.owners.size() == 8);
  std::map<std::string, int> by_match;
  for (const auto& o : m.owners) ++by_match[o.match];
  CHECK(by_match["email"] == 5);
  CHECK(by_match["email_case"] == 1);
  CHECK(by_match["name"] == 1);
  CHECK(m.owners[7].destination_owner_id.empty());
  CHECK(m.unprovisioned_user_id == "8");
  auto owners = scenario().dst->schema()->users;
  bool found = false;
  for (const auto& u : owners)
    if (u.id == m.reassign_owner_id) found = u.name == "Riley Ortiz";
  CHECK(found);
}

TEST_CASE("the 12 orphan notes point to person ids that do not exist, and no other reference dangles") {
  const auto& s = scenario();
  const auto& m = s.manifest;
  const auto persons = by_id(s.source.at("persons"));
  const auto deals = by_id(s.source.at("deals"));
  const auto orgs = by_id(s.source.at("organizations"));
  REQUIRE(m.orphan_note_ids.size() == 12);
  const auto orphans = as_set(m.orphan_note_ids);
  const auto deleted = as_set(m.deleted_person_ids);
  CHECK(deleted.size() == 12);
  for (const auto& id : deleted) {
    CHECK(persons.count(id) == 0);
    auto rec = s.src->get("persons", id);
    REQUIRE(rec.is_ok());
    CHECK_FALSE(rec->has_value());
  }
  int dangling = 0;
  for (const auto& r : s.source.at("notes")) {
    std::string person = text(r.fields, "person_id");
    bool missing = !person.empty() && persons.count(person) == 0;
    if (missing) {
      ++dangling;
      CHECK(orphans.count(r.id) == 1);
      CHECK(deleted.count(person) == 1);
    }
    std::string deal = text(r.fields, "deal_id"), org = text(r.fields, "org_id");
    CHECK((deal.empty() || deals.count(deal) == 1));
    CHECK((org.empty() || orgs.count(org) == 1));
  }
  CHECK(dangling == 12);
  for (const char* object : {"deals", "activities"}) {
    for (const auto& r : s.source.at(object)) {
      std::string person = text(r.fields, "person_id");
      CHECK((person.empty() || persons.count(person) == 1));
    }
  }
}

TEST_CASE("notes and activities marked parent-queued are exactly those on queued persons or deals") {
  const auto& s = scenario();
  const auto& m = s.manifest;
  std::set<std::string> queued_persons = as_set(m.unprovisioned_owner_person_ids);
  std::set<std::string> queued_deals = as_set(m.unmapped_stage_deal_ids);
  for (const auto& id : m.parent_queued_deal_ids) queued_deals.insert(id);
  for (const auto& entry :
       {std::pair{"notes", &m.parent_queued_note_ids}, std::pair{"activities", &m.parent_queued_activity_ids}}) {
    const auto& object = entry.first;  // not a structured binding: doctest's macros capture it
    const auto& expected = entry.second;
    std::set<std::string> got;
    for (const auto& r : s.source.at(object))
      if (queued_persons.count(text(r.fields, "person_id")) || queued_deals.count(text(r.fields, "deal_id")))
        got.insert(r.id);
    CHECK_MESSAGE(got == as_set(*expected), object);
    CHECK_FALSE(got.empty());
  }
  for (const auto& id : m.orphan_note_ids) CHECK(as_set(m.parent_queued_note_ids).count(id) == 0);
}

TEST_CASE("duplicate pairs really normalise to the same email or phone") {
  const auto& s = scenario();
  const auto& m = s.manifest;
  const auto persons = by_id(s.source.at("persons"));
  int by_email = 0, by_phone = 0;
  std::set<std::string> seen;
  for (const auto& p : m.duplicate_pairs) {
    CHECK(seen.insert(p.original_id).second);
    CHECK(seen.insert(p.duplicate_id).second);
    const auto& o = persons.at(p.original_id)->fields;
    const auto& d = persons.at(p.duplicate_id)->fields;
    CHECK(text(o, "name") == text(d, "name"));
    if (p.key == "email") {
      ++by_email;
      CHECK(primary(o, "email") != primary(d, "email"));
      CHECK(norm_email(primary(o, "email")) == norm_email(primary(d, "email")));
      CHECK_FALSE(norm_email(primary(o, "email")).empty());
      if (!primary(d, "phone").empty()) CHECK(norm_phone(primary(o, "phone")) == norm_phone(primary(d, "phone")));
    } else {
      ++by_phone;
      CHECK(primary(d, "email").empty());
      CHECK_FALSE(primary(o, "email").empty());
      CHECK(primary(o, "phone") != primary(d, "phone"));
      CHECK(norm_phone(primary(o, "phone")) == norm_phone(primary(d, "phone")));
      CHECK_FALSE(norm_phone(primary(o, "phone")).empty());
    }
  }
  CHECK(by_email == 120);
  CHECK(by_phone == 30);

  // Apart from the pairs and the switchboard, no two persons share a normalised email or phone.
  const auto switchboard = as_set(m.switchboard_person_ids);
  std::set<std::string> duplicates;
  for (const auto& p : m.duplicate_pairs) duplicates.insert(p.duplicate_id);
  std::map<std::string, int> emails, phones;
  for (const auto& r : s.source.at("persons")) {
    if (duplicates.count(r.id)) continue;
    std::string e = norm_email(primary(r.fields, "email"));
    if (!e.empty()) CHECK_MESSAGE(++emails[e] == 1, e);
    std::string ph = norm_phone(primary(r.fields, "phone"));
    if (!ph.empty() && !switchboard.count(r.id)) CHECK_MESSAGE(++phones[ph] == 1, ph);
  }
}

TEST_CASE("pre-existing HubSpot records match their source record by email, phone or name") {
  const auto& s = scenario();
  const auto& m = s.manifest;
  const auto persons = by_id(s.source.at("persons"));
  const auto orgs = by_id(s.source.at("organizations"));
  const auto contacts = by_id(s.destination.at("contacts"));
  const auto companies = by_id(s.destination.at("companies"));
  std::map<std::string, int> kinds;
  for (const auto& p : m.preexisting) {
    ++kinds[p.source_object + "/" + p.key];
    if (p.source_object == "organizations") {
      const auto& o = orgs.at(p.source_id)->fields;
      const auto& c = companies.at(p.destination_id)->fields;
      CHECK(text(o, "name") != text(c, "name"));
      CHECK(norm_name(text(o, "name")) == norm_name(text(c, "name")));
      continue;
    }
    const auto& src = persons.at(p.source_id)->fields;
    const auto& dst = contacts.at(p.destination_id)->fields;
    if (p.key == "email") {
      CHECK(primary(src, "email") != text(dst, "email"));
      CHECK(norm_email(primary(src, "email")) == norm_email(text(dst, "email")));
    } else {
      CHECK(text(dst, "email").empty());
      CHECK(norm_phone(primary(src, "phone")) == norm_phone(text(dst, "phone")));
    }
  }
  CHECK(kinds["organizations/name"] == 40);
  CHECK(kinds["persons/email"] == 250);
  CHECK(kinds["persons/phone"] == 50);

  // The unrelated HubSpot contacts and companies match nothing in the source.
  std::set<std::string> source_emails, source_phones, source_names;
  for (const auto& r : s.source.at("persons")) {
    source_emails.insert(norm_email(primary(r.fields, "email")));
    source_phones.insert(norm_phone(primary(r.fields, "phone")));
  }
  for (const auto& r : s.source.at("organizations")) source_names.insert(norm_name(text(r.fields, "name")));
  std::set<std::string> matched;
  for (const auto& p : m.preexisting) matched.insert(p.destination_object + "/" + p.destination_id);
  for (const auto& r : s.destination.at("contacts")) {
    if (matched.count("contacts/" + r.id)) continue;
    CHECK(source_emails.count(norm_email(text(r.fields, "email"))) == 0);
    std::string ph = norm_phone(text(r.fields, "phone"));
    CHECK((ph.empty() || source_phones.count(ph) == 0));
  }
  for (const auto& r : s.destination.at("companies"))
    if (!matched.count("companies/" + r.id)) CHECK(source_names.count(norm_name(text(r.fields, "name"))) == 0);
}

TEST_CASE("switchboard persons share their organisation's phone but each has a different email") {
  const auto& s = scenario();
  const auto& m = s.manifest;
  REQUIRE(m.switchboard_person_ids.size() == 10);
  const auto persons = by_id(s.source.at("persons"));
  std::set<std::string> phones, emails;
  for (const auto& id : m.switchboard_person_ids) {
    const auto& f = persons.at(id)->fields;
    CHECK(text(f, "org_id") == m.switchboard_org_id);
    phones.insert(norm_phone(primary(f, "phone")));
    emails.insert(norm_email(primary(f, "email")));
  }
  CHECK(phones.size() == 1);
  CHECK(emails.size() == 10);
}

TEST_CASE("the scenario carries hostile text: HTML in an organisation name and a script tag in a last name") {
  const auto& s = scenario();
  const auto orgs = by_id(s.source.at("organizations"));
  const auto persons = by_id(s.source.at("persons"));
  CHECK(text(orgs.at(s.manifest.html_org_id)->fields, "name") == "Acme <b>Bold</b> & Co");
  CHECK(text(persons.at(s.manifest.script_person_id)->fields, "last_name").find("<script>alert('x')</script>") !=
        std::string::npos);
}

TEST_CASE("every generated timestamp lies in 2023-01-01..2025-06-30 and updates follow creation") {
  const auto& s = scenario();
  const std::string lo = "2023-01-01 00:00:00", hi = "2025-06-30 23:59:59";
  for (const auto& [object, records] : s.source) {
    for (const auto& r : records) {
      std::string add = text(r.fields, "add_time"), upd = text(r.fields, "update_time");
      CHECK((add >= lo && upd <= hi && add <= upd));
      CHECK(r.updated_at >= 1672531200000);
    }
  }
  for (const auto& r : s.source.at("deals")) {
    std::string close = text(r.fields, "expected_close_date");
    CHECK((close.empty() || (close >= "2023-01-01" && close <= "2025-06-30")));
  }
}

TEST_CASE("the manifest is written as JSON to the source directory") {
  const auto& s = scenario();
  std::ifstream in(s.dir.sub("pipedrive") + "/manifest.json");
  REQUIRE(in.good());
  std::stringstream buf;
  buf << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(buf.str(), ec);
  REQUIRE_FALSE(ec);
  CHECK(v == json::value(s.manifest.to_json()));
  CHECK(v.at("expected").at("persons").at("written") == 3716);
  CHECK(v.at("reassign_owner_id") == "70000008");
}

TEST_CASE("the reference scenario is deterministic for a seed and differs between seeds") {
  TempDir dir;
  const auto& s = scenario();
  auto again = seed_reference(dir.sub("a-src"), dir.sub("a-dst"), 42);
  REQUIRE(again.is_ok());
  CHECK(dump(dir.sub("a-src")) == dump(s.dir.sub("pipedrive")));
  CHECK(dump(dir.sub("a-dst")) == dump(s.dir.sub("hubspot")));
  CHECK(json::serialize(again->to_json()) == json::serialize(s.manifest.to_json()));

  auto other = seed_reference(dir.sub("b-src"), dir.sub("b-dst"), 7);
  REQUIRE(other.is_ok());
  CHECK(dump(dir.sub("b-src")) != dump(s.dir.sub("pipedrive")));
  CHECK(dump(dir.sub("b-dst")) != dump(s.dir.sub("hubspot")));
  CHECK(other->expected.at("persons").written == 3716);
  CHECK(other->source_counts.at("notes") == 6000);

  auto taken = seed_reference(dir.sub("a-src"), dir.sub("c-dst"), 1);
  CHECK(taken.status().code() == Code::kAlreadyExists);
}
