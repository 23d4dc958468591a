// custom_source.cpp: the stages composed by hand, without a config file (README "Embedding").
//
//   example_cpp_custom_source <work dir>
//
// A Source implemented in C++ (five people held in memory, two of them the same person, one with
// a broken email address) → Extractor → Mapper → Deduplicator → Validator → Writer into a sandbox
// CRM shaped like HubSpot (which already holds one of the people) → Reconciler. Then a person fixes
// the broken address and the same items are written again: only the fixed record is sent.
// Exits 0 when every count is as expected.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/pipeline/stages.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"

namespace json = boost::json;
using namespace cmg;

namespace {

// A source holding its records in memory: one object, "people".
class MemorySource final : public Source {
 public:
  explicit MemorySource(std::vector<Record> people) : people_(std::move(people)) {}

  Result<Schema> schema() override {
    Schema s;
    ObjectSchema people{"people", {}, ""};
    for (const char* name : {"email", "first", "last", "phone"}) {
      FieldSchema f;
      f.name = name;
      people.fields.push_back(f);
    }
    s.objects.emplace("people", std::move(people));
    return s;
  }
  Result<std::int64_t> count(std::string_view object) override {
    if (object != "people") return invalid_argument("no object '" + std::string(object) + "'");
    return static_cast<std::int64_t>(people_.size());
  }
  Result<std::unique_ptr<RecordReader>> read(std::string_view object, const ReadOptions& opts) override {
    if (object != "people") return invalid_argument("no object '" + std::string(object) + "'");
    return std::unique_ptr<RecordReader>(std::make_unique<Reader>(people_, opts.batch_size));
  }

 private:
  class Reader final : public RecordReader {
   public:
    Reader(const std::vector<Record>& all, std::size_t batch) : all_(all), batch_(batch) {}
    Result<bool> next(RecordBatch& out) override {
      out.clear();
      for (; pos_ < all_.size() && out.size() < batch_; ++pos_) out.push_back(all_[pos_]);
      return !out.empty();
    }

   private:
    const std::vector<Record>& all_;
    std::size_t batch_;
    std::size_t pos_ = 0;
  };
  std::vector<Record> people_;
};

Record person(const char* id, const char* email, const char* first, const char* last, const char* phone) {
  return Record{"people", id, json::object{{"email", email}, {"first", first}, {"last", last}, {"phone", phone}}, 0};
}

int check(bool ok, const char* what) {
  std::printf("%-58s %s\n", what, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

#define OR_DIE(expr)                                                  \
  do {                                                                \
    Status st_ = (expr);                                              \
    if (!st_.is_ok()) {                                               \
      std::fprintf(stderr, "%s: %s\n", #expr, st_.to_string().c_str()); \
      return 1;                                                       \
    }                                                                 \
  } while (0)

int run(const std::string& dir) {
  // The destination: a HubSpot-shaped sandbox that already holds Grace (first name only).
  auto crm = sandbox::SandboxCrm::create(dir + "/hubspot", "hubspot");
  OR_DIE(crm.status());
  std::shared_ptr<sandbox::SandboxCrm> hubspot = *crm;
  OR_DIE(hubspot->insert("contacts", json::object{{"email", "grace@example.com"}, {"firstname", "Grace"}}, 1).status());

  auto source = std::make_shared<MemorySource>(std::vector<Record>{
      person("1", "ada@example.com", "Ada", "Lovelace", "+1 415 555 0101"),
      person("2", "grace@example.com", "Grace", "Hopper", ""),
      person("3", " ADA@Example.com", "Ada", "", "(415) 555-0101"),  // the same person as 1
      person("4", "alan@example.com", "Alan", "Turing", ""),
      person("5", "edsger(at)example.com", "Edsger", "Dijkstra", ""),  // not an email address
  });

  // The object, described in code as a config file would describe it.
  ObjectConfig contacts;
  contacts.name = "contacts";
  contacts.source = "people";
  contacts.destination = "contacts";
  const std::pair<const char*, const char*> mapping[] = {
      {"email", "email"}, {"first", "firstname"}, {"last", "lastname"}, {"phone", "phone"}};
  for (const auto& [from, to] : mapping) {
    FieldMapping m;
    m.source = from;
    m.to = to;
    contacts.fields.push_back(m);
  }
  contacts.dedup = {{"external_id", DedupKeyKind::kExternalId, ""},
                    {"email", DedupKeyKind::kEmail, "email"},
                    {"phone", DedupKeyKind::kPhone, "phone"}};
  contacts.merge_default = MergeStrategy::kFillBlanks;

  auto dst_schema = hubspot->schema();
  auto src_schema = source->schema();
  OR_DIE(dst_schema.status());
  OR_DIE(src_schema.status());

  stages::Extractor extractor(source, "people", {2, std::nullopt});
  stages::Mapper mapper(contacts, *dst_schema, *src_schema);
  stages::Deduplicator dedup(contacts);
  stages::Validator validator(*dst_schema);
  auto writer = stages::Writer::open(hubspot, dir + "/state");
  OR_DIE(writer.status());

  RecordBatch batch;
  for (;;) {
    auto more = extractor.next(batch);
    OR_DIE(more.status());
    if (!*more) break;
    OR_DIE(dedup.add(mapper.map(batch, (*writer)->parents())));
  }
  OR_DIE(extractor.check_count());
  OR_DIE(dedup.index_destination(*hubspot, *dst_schema));
  auto items = dedup.resolve(*hubspot);
  OR_DIE(items.status());
  validator.validate(*items);
  for (const auto& it : *items)
    std::printf("  %s/%s → %s%s%s\n", it.object.c_str(), it.source.id.c_str(), stages::action_name(it.action),
                it.merged_into.empty() ? "" : " into ", it.merged_into.c_str());

  auto counts = (*writer)->write("contacts", *items);
  OR_DIE(counts.status());
  stages::Reconciler reconciler(hubspot, **writer);
  auto rec = reconciler.reconcile("contacts", extractor.read());
  OR_DIE(rec.status());
  std::printf("first write: written %lld, merged %lld, queued %lld, sent %lld; complete: %s\n",
              static_cast<long long>(counts->written), static_cast<long long>(counts->merged),
              static_cast<long long>(counts->queued), static_cast<long long>(counts->sent),
              rec->complete ? "yes" : "no");

  int failures = 0;
  failures += check(extractor.read() == 5 && extractor.reported() == 5, "extracted 5 of 5");
  failures += check(counts->written == 2 && counts->merged == 2 && counts->queued == 1 && counts->skipped == 0,
                    "2 written (1, 4), 2 merged (3 into 1, 2 into Grace), 1 queued");
  failures += check(rec->counts.source == 5 && rec->counts.pending == 0 && rec->readback_mismatches == 0 &&
                        rec->queue_open == 1 && !rec->complete,
                    "reconcile: 5 = 2 + 2 + 1 + 0, read-back clean, 1 open");

  // A person fixes the address of record 5; everything is written again, only 5 is sent.
  for (auto& it : *items) {
    if (it.source.id != "5") continue;
    it.source.fields["email"] = "edsger@example.com";
    it = mapper.map(it.source, (*writer)->parents());
    validator.validate(it);
  }
  auto again = (*writer)->write("contacts", *items);
  OR_DIE(again.status());
  rec = reconciler.reconcile("contacts", extractor.read());
  OR_DIE(rec.status());
  auto in_crm = hubspot->count("contacts");
  OR_DIE(in_crm.status());
  std::printf("after the fix: written %lld, merged %lld, sent %lld; contacts in the CRM: %lld; complete: %s\n",
              static_cast<long long>(again->written), static_cast<long long>(again->merged),
              static_cast<long long>(again->sent), static_cast<long long>(*in_crm), rec->complete ? "yes" : "no");
  failures += check(again->sent == 1 && again->written == 3 && again->merged == 2, "second write sends only the fix");
  failures += check(rec->complete && rec->counts.written == 3 && rec->counts.merged == 2, "reconcile: complete");
  failures += check(*in_crm == 4, "4 contacts in the CRM (Grace once, Ada once)");
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <work dir>\n", argv[0]);
    return 2;
  }
  std::error_code ec;
  std::filesystem::remove_all(argv[1], ec);
  std::filesystem::create_directories(argv[1], ec);
  if (ec) {
    std::fprintf(stderr, "%s: %s\n", argv[1], ec.message().c_str());
    return 2;
  }
  return run(argv[1]);
}
