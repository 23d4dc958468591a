#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "test_util.hpp"

using namespace cmg;
using namespace cmg::sandbox;
namespace json = boost::json;

namespace {

std::shared_ptr<SandboxCrm> make_hubspot(const TempDir& dir, const std::string& name = "hubspot") {
  auto crm = SandboxCrm::create(dir.sub(name), "hubspot");
  REQUIRE(crm.is_ok());
  REQUIRE((*crm)->set_user(User{"70000001", "owner@example.com", "Owner One", true}).is_ok());
  return *crm;
}

WriteOp upsert(std::string key, json::object fields) {
  WriteOp op;
  op.kind = WriteOp::Kind::kUpsert;
  op.idempotency_key = std::move(key);
  op.fields = std::move(fields);
  return op;
}

std::vector<Record> drain(RecordReader& reader, std::size_t* batches = nullptr) {
  std::vector<Record> all;
  RecordBatch batch;
  for (;;) {
    auto more = reader.next(batch);
    REQUIRE(more.is_ok());
    if (!*more) break;
    if (batches) ++*batches;
    for (auto& r : batch) all.push_back(std::move(r));
  }
  return all;
}

}  // namespace

TEST_CASE("a sandbox keeps its preset, users, records and counters when reopened") {
  TempDir dir;
  std::string id;
  {
    auto crm = make_hubspot(dir);
    auto res = crm->write("contacts", {upsert("p-1", {{"email", "ann@example.com"}, {"firstname", "Ann"}})});
    REQUIRE(res.is_ok());
    REQUIRE(res->size() == 1);
    CHECK((*res)[0].outcome == WriteResult::Outcome::kCreated);
    id = (*res)[0].id;
    CHECK(id == "1000001");
  }
  auto crm = SandboxCrm::open(dir.sub("hubspot"));
  REQUIRE(crm.is_ok());
  CHECK((*crm)->preset() == "hubspot");
  auto schema = (*crm)->schema();
  REQUIRE(schema.is_ok());
  REQUIRE(schema->users.size() == 1);
  CHECK(schema->users[0].id == "70000001");
  auto rec = (*crm)->get("contacts", id);
  REQUIRE(rec.is_ok());
  REQUIRE(rec->has_value());
  CHECK((*rec)->fields.at("firstname") == "Ann");
  CHECK((*rec)->fields.at("crm_source_id") == "p-1");
  auto counters = (*crm)->counters();
  REQUIRE(counters.is_ok());
  CHECK(counters->write_calls == 1);
  CHECK(counters->records_created == 1);
  CHECK((*crm)->quota().max_batch == 100);
}

TEST_CASE("opening a directory without a sandbox fails with kNotFound naming the directory") {
  TempDir dir;
  auto crm = SandboxCrm::open(dir.sub("nothing-here"));
  REQUIRE_FALSE(crm.is_ok());
  CHECK(crm.status().code() == Code::kNotFound);
  CHECK(crm.status().message().find(dir.sub("nothing-here")) != std::string::npos);
}

TEST_CASE("creating a sandbox where one already exists fails") {
  TempDir dir;
  { make_hubspot(dir); }
  auto again = SandboxCrm::create(dir.sub("hubspot"), "pipedrive");
  REQUIRE_FALSE(again.is_ok());
  CHECK(again.status().code() == Code::kAlreadyExists);
  auto unknown = SandboxCrm::create(dir.sub("other"), "salesforce-ish");
  CHECK(unknown.status().code() == Code::kInvalidArgument);
}

TEST_CASE("the presets declare their objects, pipelines, system fields and quota") {
  TempDir dir;
  auto pd = SandboxCrm::create(dir.sub("pd"), "pipedrive");
  REQUIRE(pd.is_ok());
  auto s = (*pd)->schema();
  REQUIRE(s.is_ok());
  for (const char* o : {"organizations", "persons", "deals", "notes", "activities"}) CHECK(s->object(o) != nullptr);
  const FieldSchema* stage = s->object("deals")->field("stage_id");
  REQUIRE(stage != nullptr);
  CHECK(stage->options_by == "pipeline_id");
  const auto* on_hold = stage->allowed_options("2");
  REQUIRE(on_hold != nullptr);
  REQUIRE(on_hold->size() == 4);
  CHECK(on_hold->back().value == "9");
  CHECK(on_hold->back().label == "On Hold");
  CHECK(s->object("persons")->field("email")->type == FieldType::kJson);
  CHECK((*pd)->quota().max_batch == 1);
  CHECK((*pd)->quota().burst_requests == 80);
  REQUIRE((*pd)->pipelines().size() == 2);

  auto hs = SandboxCrm::create(dir.sub("hs"), "hubspot");
  REQUIRE(hs.is_ok());
  auto h = (*hs)->schema();
  REQUIRE(h.is_ok());
  for (const char* o : {"companies", "contacts", "deals", "notes", "calls", "meetings", "tasks", "emails"}) {
    REQUIRE(h->object(o) != nullptr);
    CHECK(h->object(o)->id_property == "crm_source_id");
    CHECK(h->object(o)->field("hs_object_id")->read_only);
    CHECK(h->object(o)->field("hubspot_owner_id")->references == "owners");
  }
  const FieldSchema* dealstage = h->object("deals")->field("dealstage");
  CHECK(dealstage->required);
  CHECK(dealstage->allowed_options("partnerships")->size() == 5);
  CHECK(h->object("contacts")->field("email")->unique);
  CHECK((*hs)->quota().burst_window_ms == 10000);
  CHECK((*hs)->quota().daily_requests == 500000);
}

TEST_CASE("upserting twice with the same idempotency key keeps one record and the second is an update") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  auto first = crm->write("companies", {upsert("org-7", {{"name", "Acme"}})});
  REQUIRE(first.is_ok());
  CHECK((*first)[0].status == 201);
  auto second = crm->write("companies", {upsert("org-7", {{"name", "Acme Inc"}})});
  REQUIRE(second.is_ok());
  CHECK((*second)[0].outcome == WriteResult::Outcome::kUpdated);
  CHECK((*second)[0].status == 200);
  CHECK((*second)[0].id == (*first)[0].id);
  CHECK(*crm->count("companies") == 1);
  auto rec = crm->get("companies", (*first)[0].id);
  REQUIRE(rec.is_ok());
  CHECK((*rec)->fields.at("name") == "Acme Inc");
  auto c = crm->counters();
  CHECK(c->records_created == 1);
  CHECK(c->records_updated == 1);
  CHECK(c->write_calls == 2);
}

TEST_CASE("an update of a record that does not exist fails with 404") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  WriteOp op;
  op.kind = WriteOp::Kind::kUpdate;
  op.id = "1000999";
  op.fields = {{"name", "Nobody"}};
  auto res = crm->write("companies", {op});
  REQUIRE(res.is_ok());
  CHECK((*res)[0].outcome == WriteResult::Outcome::kFailed);
  CHECK((*res)[0].status == 404);
  CHECK(*crm->count("companies") == 0);
}

TEST_CASE("an update merges into the existing record and refreshes lastmodifieddate") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  std::int64_t now = 1714557600000;  // 2024-05-01T10:00:00Z
  crm->set_clock([&] { return now; });
  auto created = crm->write("contacts", {upsert("p-1", {{"firstname", "Ann"}, {"lastname", "Lee"}})});
  REQUIRE(created.is_ok());
  now += 60000;
  WriteOp op;
  op.kind = WriteOp::Kind::kUpdate;
  op.id = (*created)[0].id;
  op.fields = {{"lastname", "Lee-Smith"}};
  auto updated = crm->write("contacts", {op});
  REQUIRE(updated.is_ok());
  CHECK((*updated)[0].outcome == WriteResult::Outcome::kUpdated);
  auto rec = crm->get("contacts", op.id);
  REQUIRE(rec->has_value());
  const auto& f = (*rec)->fields;
  CHECK(f.at("firstname") == "Ann");
  CHECK(f.at("lastname") == "Lee-Smith");
  CHECK(f.at("hs_object_id") == json::value(op.id));
  CHECK(f.at("createdate") == "2024-05-01T10:00:00.000Z");
  CHECK(f.at("lastmodifieddate") == "2024-05-01T10:01:00.000Z");
  CHECK((*rec)->updated_at == now);
}

TEST_CASE("find by crm_source_id returns the record that holds the key") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  auto res = crm->write("deals", {upsert("deal-1", {{"dealname", "One"}, {"pipeline", "default"},
                                                     {"dealstage", "qualifiedtobuy"}}),
                                  upsert("deal-2", {{"dealname", "Two"}, {"pipeline", "default"},
                                                     {"dealstage", "closedwon"}})});
  REQUIRE(res.is_ok());
  auto found = crm->find("deals", "crm_source_id", {"deal-2", "deal-404"});
  REQUIRE(found.is_ok());
  REQUIRE(found->size() == 1);
  CHECK((*found)[0].id == (*res)[1].id);
  CHECK((*found)[0].fields.at("dealname") == "Two");
  auto by_name = crm->find("deals", "dealname", {"One"});
  REQUIRE(by_name.is_ok());
  REQUIRE(by_name->size() == 1);
  CHECK((*by_name)[0].id == (*res)[0].id);
  CHECK(crm->find("deals", "no_such_field", {"x"}).status().code() == Code::kInvalidArgument);
}

TEST_CASE("find by email ignores letter case") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  auto res = crm->write("contacts", {upsert("p-1", {{"email", "Ann.Lee@Example.com"}})});
  REQUIRE(res.is_ok());
  auto found = crm->find("contacts", "email", {"ann.lee@example.COM"});
  REQUIRE(found.is_ok());
  REQUIRE(found->size() == 1);
  CHECK((*found)[0].fields.at("email") == "Ann.Lee@Example.com");
}

TEST_CASE("reading by ids returns nullopt for ids that do not exist") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  auto res = crm->write("companies", {upsert("o-1", {{"name", "A"}})});
  REQUIRE(res.is_ok());
  auto recs = crm->read("companies", std::vector<std::string>{(*res)[0].id, "1000042", "not-a-number"});
  REQUIRE(recs.is_ok());
  REQUIRE(recs->size() == 3);
  CHECK((*recs)[0].has_value());
  CHECK_FALSE((*recs)[1].has_value());
  CHECK_FALSE((*recs)[2].has_value());
  auto missing = crm->get("companies", "1000042");
  REQUIRE(missing.is_ok());
  CHECK_FALSE(missing->has_value());
}

TEST_CASE("read pages through every record exactly once in id order with batch_size 7") {
  TempDir dir;
  auto crm = SandboxCrm::create(dir.sub("pd"), "pipedrive");
  REQUIRE(crm.is_ok());
  std::vector<NewRecord> rows;
  for (int i = 0; i < 100; ++i) rows.push_back({{{"name", "Org " + std::to_string(i)}}, 1700000000000 + i, 0});
  auto ids = (*crm)->insert_many("organizations", rows);
  REQUIRE(ids.is_ok());
  CHECK(ids->front() == "1");
  CHECK(ids->back() == "100");
  ReadOptions opts;
  opts.batch_size = 7;
  auto reader = (*crm)->read("organizations", opts);
  REQUIRE(reader.is_ok());
  std::size_t batches = 0;
  auto all = drain(**reader, &batches);
  REQUIRE(all.size() == 100);
  CHECK(batches == 15);
  for (std::size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].id == std::to_string(i + 1));
    CHECK(all[i].fields.at("id") == static_cast<std::int64_t>(i + 1));
  }
  CHECK(all[0].fields.at("add_time") == "2023-11-14 22:13:20");
}

TEST_CASE("a since_updated_at read returns records in (updated_at, id) order from the cursor, inclusive") {
  TempDir dir;
  auto crm = SandboxCrm::create(dir.sub("pd"), "pipedrive");
  REQUIRE(crm.is_ok());
  // 60 records over only three distinct timestamps, inserted out of time order.
  std::vector<NewRecord> rows;
  const std::int64_t t[] = {3000, 1000, 2000};
  for (int i = 0; i < 60; ++i) rows.push_back({{{"name", "P" + std::to_string(i)}}, t[i % 3], 0});
  REQUIRE((*crm)->insert_many("persons", rows).is_ok());

  ReadOptions opts;
  opts.batch_size = 7;
  opts.since_updated_at = 2000;
  auto reader = (*crm)->read("persons", opts);
  REQUIRE(reader.is_ok());
  auto got = drain(**reader);
  REQUIRE(got.size() == 40);
  for (std::size_t i = 1; i < got.size(); ++i) {
    bool ordered = got[i - 1].updated_at < got[i].updated_at ||
                   (got[i - 1].updated_at == got[i].updated_at && std::stoull(got[i - 1].id) < std::stoull(got[i].id));
    CHECK(ordered);
  }
  CHECK(got.front().updated_at == 2000);
  CHECK(got.front().id == "3");

  // With a tie-breaking id the cursor record itself and everything after it are returned.
  opts.since_id = "30";
  reader = (*crm)->read("persons", opts);
  REQUIRE(reader.is_ok());
  got = drain(**reader);
  REQUIRE_FALSE(got.empty());
  CHECK(got.front().id == "30");
  CHECK(got.size() == 11 + 20);  // ids 30, 33, …, 60 at 2000 and all twenty at 3000
}

TEST_CASE("a write() batch is one transaction: a failed commit leaves nothing of it") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  int commits = 0;
  crm->set_commit_hook([&](std::uint64_t) {
    ++commits;
    return Status::ok();
  });
  std::vector<WriteOp> ops;
  for (int i = 0; i < 5; ++i) ops.push_back(upsert("c-" + std::to_string(i), {{"name", "C" + std::to_string(i)}}));
  REQUIRE(crm->write("companies", ops).is_ok());
  CHECK(commits == 1);
  CHECK(*crm->count("companies") == 5);

  crm->set_commit_hook([](std::uint64_t) { return Status(Code::kIO, "simulated crash before commit"); });
  std::vector<WriteOp> more;
  for (int i = 5; i < 10; ++i) more.push_back(upsert("c-" + std::to_string(i), {{"name", "C" + std::to_string(i)}}));
  more.push_back(upsert("c-0", {{"name", "renamed"}}));
  auto res = crm->write("companies", more);
  CHECK_FALSE(res.is_ok());
  crm->set_commit_hook(nullptr);
  CHECK(*crm->count("companies") == 5);
  auto c0 = crm->find("companies", "crm_source_id", {"c-0"});
  REQUIRE(c0->size() == 1);
  CHECK((*c0)[0].fields.at("name") == "C0");
  CHECK(crm->counters()->write_calls == 1);
}

TEST_CASE("admin insert, update_fields and remove keep the indexes in step") {
  TempDir dir;
  auto crm = make_hubspot(dir);
  auto id = crm->insert("contacts", {{"email", "zoe@example.com"}, {"crm_source_id", "p-9"}}, 1000);
  REQUIRE(id.is_ok());
  REQUIRE(crm->update_fields("contacts", *id, {{"email", "zoe@new.example.com"}}, 5000).is_ok());
  CHECK(crm->find("contacts", "email", {"zoe@example.com"})->empty());
  CHECK(crm->find("contacts", "email", {"zoe@new.example.com"})->size() == 1);
  ReadOptions opts;
  opts.since_updated_at = 2000;
  auto reader = crm->read("contacts", opts);
  REQUIRE(reader.is_ok());
  auto changed = drain(**reader);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].updated_at == 5000);

  CHECK(*crm->remove("contacts", *id));
  CHECK_FALSE(*crm->remove("contacts", *id));
  CHECK(crm->find("contacts", "crm_source_id", {"p-9"})->empty());
  CHECK(*crm->count("contacts") == 0);
  CHECK(crm->update_fields("contacts", *id, {{"email", "x@y.com"}}, 6000).code() == Code::kNotFound);
  // A removed record's unique values can be taken again through the API.
  auto res = crm->write("contacts", {upsert("p-9", {{"email", "zoe@new.example.com"}})});
  REQUIRE(res.is_ok());
  CHECK((*res)[0].outcome == WriteResult::Outcome::kCreated);
}
