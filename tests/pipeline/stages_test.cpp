// The stages composed by hand (include/crmmigrate/pipeline/stages.hpp): outcomes per record, the
// exactly-once Writer (lost replies, intents left by an interrupted Writer, re-runs), the count check
// and the read-back.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "crmmigrate/pipeline/stages.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"
#include "test_util.hpp"

namespace json = boost::json;
using namespace cmg;

namespace {

// People held in memory; `claimed` is the count it reports (-2 = the true one).
class PeopleSource final : public Source {
 public:
  explicit PeopleSource(std::vector<Record> people, std::int64_t claimed = -2)
      : people_(std::move(people)), claimed_(claimed) {}
  Result<Schema> schema() override {
    Schema s;
    ObjectSchema o;
    o.name = "people";
    for (const char* name : {"email", "first", "last", "phone"}) {
      FieldSchema f;
      f.name = name;
      o.fields.push_back(f);
    }
    s.objects.emplace("people", std::move(o));
    return s;
  }
  Result<std::int64_t> count(std::string_view) override {
    return claimed_ == -2 ? static_cast<std::int64_t>(people_.size()) : claimed_;
  }
  Result<std::unique_ptr<RecordReader>> read(std::string_view, const ReadOptions& opts) override {
    struct Reader final : RecordReader {
      const std::vector<Record>* all;
      std::size_t batch, pos = 0;
      Reader(const std::vector<Record>* a, std::size_t b) : all(a), batch(b) {}
      Result<bool> next(RecordBatch& out) override {
        out.clear();
        for (; pos < all->size() && out.size() < batch; ++pos) out.push_back((*all)[pos]);
        return !out.empty();
      }
    };
    return std::unique_ptr<RecordReader>(std::make_unique<Reader>(&people_, opts.batch_size));
  }

 private:
  std::vector<Record> people_;
  std::int64_t claimed_;
};

Record person(const std::string& id, const std::string& email, const std::string& first, const std::string& last,
              std::int64_t updated_at = 0) {
  return Record{"people", id, json::object{{"email", email}, {"first", first}, {"last", last}, {"phone", ""}}, updated_at};
}

ObjectConfig contacts_config(MergeStrategy merge = MergeStrategy::kFillBlanks) {
  ObjectConfig oc;
  oc.name = "contacts";
  oc.source = "people";
  oc.destination = "contacts";
  const std::pair<const char*, const char*> mapping[] = {
      {"email", "email"}, {"first", "firstname"}, {"last", "lastname"}, {"phone", "phone"}};
  for (const auto& [from, to] : mapping) {
    FieldMapping m;
    m.source = from;
    m.to = to;
    oc.fields.push_back(m);
  }
  oc.dedup = {{"external_id", DedupKeyKind::kExternalId, ""}, {"email", DedupKeyKind::kEmail, "email"}};
  oc.merge_default = merge;
  return oc;
}

// A destination that forwards to the sandbox and can misbehave on demand.
class Flaky final : public Destination {
 public:
  explicit Flaky(std::shared_ptr<sandbox::SandboxCrm> inner) : inner_(std::move(inner)) {}
  int lose_replies = 0;        // write(): apply, then report a failed call (no reply)
  bool fail_find = false;      // find(): refused
  int writes = 0;
  Result<Schema> schema() override { return inner_->schema(); }
  Result<std::int64_t> count(std::string_view o) override { return inner_->count(o); }
  Result<std::unique_ptr<RecordReader>> list(std::string_view o, const ReadOptions& r) override { return inner_->list(o, r); }
  Result<std::vector<Record>> find(std::string_view o, std::string_view f, const std::vector<std::string>& v) override {
    if (fail_find) return Status(Code::kPermissionDenied, "find refused");
    return inner_->find(o, f, v);
  }
  Result<std::vector<WriteResult>> write(std::string_view o, const std::vector<WriteOp>& ops) override {
    ++writes;
    auto r = inner_->write(o, ops);
    if (lose_replies > 0) {
      --lose_replies;
      return Status(Code::kUnavailable, "connection reset after the request was sent");
    }
    return r;
  }
  Result<std::vector<std::optional<Record>>> read(std::string_view o, const std::vector<std::string>& ids) override {
    return inner_->read(o, ids);
  }

 private:
  std::shared_ptr<sandbox::SandboxCrm> inner_;
};

struct Fixture {
  TempDir tmp;
  std::shared_ptr<sandbox::SandboxCrm> crm;
  Schema dst, src;
  Fixture() {
    auto c = sandbox::SandboxCrm::create(tmp.sub("crm"), "hubspot");
    REQUIRE(c.is_ok());
    crm = *c;
    dst = *crm->schema();
    src = *PeopleSource({}).schema();
  }
  // Extract → map → dedup → validate.
  std::vector<stages::Item> decide(std::shared_ptr<Source> source, const ObjectConfig& oc) {
    stages::Extractor ex(std::move(source), "people", {2, std::nullopt});
    stages::Mapper mapper(oc, dst, src);
    stages::Deduplicator dd(oc);
    RecordBatch b;
    for (;;) {
      auto more = ex.next(b);
      REQUIRE(more.is_ok());
      if (!*more) break;
      REQUIRE(dd.add(mapper.map(b)).is_ok());
    }
    REQUIRE(ex.check_count().is_ok());
    REQUIRE(dd.index_destination(*crm, dst).is_ok());
    auto items = dd.resolve(*crm);
    REQUIRE(items.is_ok());
    stages::Validator(dst).validate(*items);
    return std::move(*items);
  }
};

const stages::Item& item(const std::vector<stages::Item>& items, const std::string& id) {
  for (const auto& it : items)
    if (it.source.id == id) return it;
  FAIL("no item " << id);
  return items.front();
}

}  // namespace

TEST_CASE("stages composed by hand create, fold, merge and queue every source record exactly once") {
  Fixture f;
  REQUIRE(f.crm->insert("contacts", json::object{{"email", "grace@example.com"}, {"firstname", "Grace"}}, 1).is_ok());
  auto source = std::make_shared<PeopleSource>(std::vector<Record>{
      person("1", "ada@example.com", "Ada", "Lovelace"), person("2", "grace@example.com", "Grace", "Hopper"),
      person("3", " ADA@example.com", "Ada", ""), person("4", "alan@example.com", "Alan", "Turing"),
      person("5", "edsger(at)example.com", "Edsger", "Dijkstra")});
  auto items = f.decide(source, contacts_config());
  REQUIRE(items.size() == 5);
  CHECK(item(items, "1").action == stages::Action::kCreate);
  CHECK(item(items, "3").action == stages::Action::kFolded);
  CHECK(item(items, "3").merged_into == "1");
  CHECK(item(items, "3").match_key == "email");
  CHECK(item(items, "2").action == stages::Action::kMerge);
  CHECK(item(items, "2").fields == json::object{{"lastname", "Hopper"}});  // fill_blanks: only the blank field
  CHECK(item(items, "5").action == stages::Action::kQueue);
  REQUIRE(!item(items, "5").problems.empty());
  CHECK(item(items, "5").problems[0].field == "email");

  auto writer = stages::Writer::open(f.crm, f.tmp.sub("state"));
  REQUIRE(writer.is_ok());
  auto counts = (*writer)->write("contacts", items);
  REQUIRE(counts.is_ok());
  CHECK(counts->written == 2);
  CHECK(counts->merged == 2);
  CHECK(counts->queued == 1);
  CHECK(counts->sent == 3);
  CHECK(*f.crm->count("contacts") == 3);
  CHECK(item(items, "3").destination_id == item(items, "1").destination_id);
  auto did = (*writer)->destination_id("contacts", "1");
  REQUIRE(did.is_ok());
  CHECK(*did == std::optional<std::string>(item(items, "1").destination_id));
  // The created record carries its idempotency key.
  auto found = f.crm->find("contacts", "crm_source_id", {"1"});
  REQUIRE(found.is_ok());
  CHECK(found->size() == 1);

  // Writing the same items again sends nothing and reports the stored outcomes.
  auto again = (*writer)->write("contacts", items);
  REQUIRE(again.is_ok());
  CHECK(again->sent == 0);
  CHECK(again->written == 2);
  CHECK(again->merged == 2);
  CHECK(*f.crm->count("contacts") == 3);

  stages::Reconciler rec(f.crm, **writer);
  auto r = rec.reconcile("contacts", 5);
  REQUIRE(r.is_ok());
  CHECK(r->counts.source == 5);
  CHECK(r->counts.written == 2);
  CHECK(r->counts.merged == 2);
  CHECK(r->counts.queued == 1);
  CHECK(r->counts.pending == 0);
  CHECK(r->queue_open == 1);
  CHECK(r->readback_mismatches == 0);
  CHECK_FALSE(r->complete);
}

TEST_CASE("stages Writer confirms a write whose reply was lost through the idempotency key, without a duplicate") {
  Fixture f;
  auto source = std::make_shared<PeopleSource>(
      std::vector<Record>{person("1", "ada@example.com", "Ada", "Lovelace"), person("2", "alan@example.com", "Alan", "Turing")});
  auto items = f.decide(source, contacts_config());
  auto flaky = std::make_shared<Flaky>(f.crm);
  flaky->lose_replies = 1;
  stages::WriterOptions wo;
  wo.backoff_ms = 1;
  auto writer = stages::Writer::open(flaky, f.tmp.sub("state"), wo);
  REQUIRE(writer.is_ok());
  auto counts = (*writer)->write("contacts", items);
  REQUIRE(counts.is_ok());
  CHECK(counts->written == 2);
  CHECK(counts->queued == 0);
  CHECK(flaky->writes == 1);  // settled by lookup, never sent again
  CHECK(*f.crm->count("contacts") == 2);
}

TEST_CASE("stages Writer settles intents left by an interrupted Writer when the next one opens") {
  Fixture f;
  auto source = std::make_shared<PeopleSource>(
      std::vector<Record>{person("1", "ada@example.com", "Ada", "Lovelace"), person("2", "alan@example.com", "Alan", "Turing")});
  auto items = f.decide(source, contacts_config());
  {
    // The batch is applied, the reply lost, and the lookup refused: write() fails with the intents
    // still in the state, as if the process had died after sending.
    auto flaky = std::make_shared<Flaky>(f.crm);
    flaky->lose_replies = 1;
    flaky->fail_find = true;
    auto writer = stages::Writer::open(flaky, f.tmp.sub("state"));
    REQUIRE(writer.is_ok());
    auto counts = (*writer)->write("contacts", items);
    REQUIRE_FALSE(counts.is_ok());
    CHECK(counts.status().code() == Code::kPermissionDenied);
  }
  auto writer = stages::Writer::open(f.crm, f.tmp.sub("state"));
  REQUIRE(writer.is_ok());
  auto did = (*writer)->destination_id("contacts", "2");
  REQUIRE(did.is_ok());
  REQUIRE(did->has_value());  // confirmed at open, from the destination
  auto counts = (*writer)->write("contacts", items);
  REQUIRE(counts.is_ok());
  CHECK(counts->sent == 0);
  CHECK(counts->written == 2);
  CHECK(*f.crm->count("contacts") == 2);
  auto second = stages::Writer::open(f.crm, f.tmp.sub("state"));
  REQUIRE_FALSE(second.is_ok());
  CHECK(second.status().code() == Code::kLocked);
}

TEST_CASE("stages Extractor reports a count that differs from what the source said it holds") {
  PeopleSource src({person("1", "a@example.com", "A", "B"), person("2", "c@example.com", "C", "D")}, 3);
  stages::Extractor ex(std::make_shared<PeopleSource>(src), "people");
  RecordBatch b;
  std::int64_t got = 0;
  for (;;) {
    auto more = ex.next(b);
    REQUIRE(more.is_ok());
    if (!*more) break;
    got += static_cast<std::int64_t>(b.size());
  }
  CHECK(got == 2);
  CHECK(ex.read() == 2);
  CHECK(ex.reported() == 3);
  Status st = ex.check_count();
  CHECK(st.code() == Code::kInvalidArgument);
  CHECK(st.message() == "people: read 2 records, expected 3 (reported by the source)");
  stages::Extractor fixed(std::make_shared<PeopleSource>(src), "people", {500, 2});
  while (*fixed.next(b)) {
  }
  CHECK(fixed.check_count().is_ok());
}

TEST_CASE("stages Deduplicator queues a merge conflict and its folded duplicate for a person") {
  Fixture f;
  REQUIRE(f.crm->insert("contacts", json::object{{"email", "grace@example.com"}, {"firstname", "Gracie"}}, 1).is_ok());
  auto source = std::make_shared<PeopleSource>(std::vector<Record>{person("1", "grace@example.com", "Grace", "Hopper", 5),
                                                                   person("2", "GRACE@example.com", "", "Hopper", 4)});
  auto items = f.decide(source, contacts_config(MergeStrategy::kManual));
  REQUIRE(items.size() == 2);
  for (const auto& it : items) {
    CHECK(it.action == stages::Action::kQueue);
    REQUIRE(!it.problems.empty());
    CHECK(it.problems[0].reason == Reason::kMergeConflict);
    CHECK(it.problems[0].field == "firstname");
  }
  auto writer = stages::Writer::open(f.crm, f.tmp.sub("state"));
  REQUIRE(writer.is_ok());
  auto counts = (*writer)->write("contacts", items);
  REQUIRE(counts.is_ok());
  CHECK(counts->queued == 2);
  CHECK(counts->sent == 0);
}

TEST_CASE("stages Reconciler reports a confirmed record changed in the destination after the write") {
  Fixture f;
  auto source = std::make_shared<PeopleSource>(std::vector<Record>{person("1", "ada@example.com", "Ada", "Lovelace")});
  auto items = f.decide(source, contacts_config());
  auto writer = stages::Writer::open(f.crm, f.tmp.sub("state"));
  REQUIRE(writer.is_ok());
  REQUIRE((*writer)->write("contacts", items).is_ok());
  stages::Reconciler rec(f.crm, **writer);
  auto clean = rec.reconcile("contacts", 1);
  REQUIRE(clean.is_ok());
  CHECK(clean->complete);
  REQUIRE(f.crm->update_fields("contacts", items[0].destination_id, json::object{{"lastname", "Byron"}}, 99).is_ok());
  auto r = rec.reconcile("contacts", 1);
  REQUIRE(r.is_ok());
  CHECK_FALSE(r->complete);
  REQUIRE(r->readback_mismatches == 1);
  CHECK(r->discrepancies[0].at("kind").as_string() == "field_differs");
  CHECK(r->discrepancies[0].at("fields").as_array()[0].as_object().at("field").as_string() == "lastname");
  auto short_count = rec.reconcile("contacts", 2);
  REQUIRE(short_count.is_ok());
  CHECK(short_count->counts.pending == 1);
}
