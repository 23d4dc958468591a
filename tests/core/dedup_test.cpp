#include "crmmigrate/core/dedup.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Values = std::vector<std::vector<std::string>>;

struct Src {
  std::string id;
  std::int64_t updated_at;
  Values values;
};
struct Dst {
  std::string id;
  Values values;
};

std::vector<cmg::DedupKey> email_phone() { return {{"email", true}, {"phone", true}}; }
std::vector<cmg::DedupKey> ext_email_phone() { return {{"external_id", false}, {"email", true}, {"phone", true}}; }

std::vector<cmg::DedupGroup> run(const std::vector<cmg::DedupKey>& keys, const std::vector<Src>& src,
                                 const std::vector<Dst>& dst = {}, cmg::DedupOptions options = {},
                                 std::size_t reserve = 0) {
  cmg::Deduplicator d(keys, options);
  if (reserve) d.reserve(reserve);
  for (const auto& s : src) REQUIRE(d.add_source(s.id, s.updated_at, s.values).is_ok());
  for (const auto& x : dst) REQUIRE(d.add_destination(x.id, x.values).is_ok());
  auto groups = d.resolve();
  REQUIRE(groups.is_ok());
  return std::move(groups).value();
}

const cmg::DedupGroup& group_of(const std::vector<cmg::DedupGroup>& groups, const std::string& id) {
  for (const auto& g : groups)
    for (const auto& m : g.members)
      if (m.id == id) return g;
  FAIL("no group holds " << id);
  return groups.front();
}

std::vector<std::string> ids(const cmg::DedupGroup& g) {
  std::vector<std::string> out;
  for (const auto& m : g.members) out.push_back(m.id);
  return out;
}

std::string dump(const std::vector<cmg::DedupGroup>& groups) {
  std::ostringstream os;
  for (const auto& g : groups) {
    os << cmg::group_kind_name(g.kind) << " [";
    for (const auto& m : g.members) os << m.id << ":" << m.updated_at << ":" << m.linked_by << " ";
    os << "] link=" << g.link_key << " amb=[";
    for (const auto& a : g.ambiguous_with) os << a << " ";
    os << "] " << cmg::destination_decision_name(g.decision) << " [";
    for (const auto& d : g.destination_ids) os << d << " ";
    os << "] key=" << g.match_key << " detail=" << g.detail << "\n";
  }
  return os.str();
}

// Sources with their id as external id, an email (3 in 4) from a pool of `emails` and a phone (1
// in 2) from a pool of `phones`, updated_at 0..6; destinations holding one email from the same
// pool. `empty_values`: one source in 9 also holds an empty email (which add_* ignore).
struct Sample {
  std::vector<Src> src;
  std::vector<Dst> dst;
};
Sample external_email_phone_sample(unsigned seed, int sources, int destinations, int emails, int phones,
                                   bool empty_values) {
  std::mt19937 gen(seed);
  Sample out;
  for (int i = 0; i < sources; ++i) {
    Values v(3);
    v[0].push_back(std::to_string(i));
    if (gen() % 4) v[1].push_back("e" + std::to_string(gen() % emails));
    if (empty_values && gen() % 9 == 0) v[1].push_back("");
    if (gen() % 2) v[2].push_back("p" + std::to_string(gen() % phones));
    out.src.push_back({std::to_string(i), static_cast<std::int64_t>(gen() % 7), v});
  }
  for (int i = 0; i < destinations; ++i)
    out.dst.push_back({"D" + std::to_string(i), {{}, {"e" + std::to_string(gen() % emails)}, {}}});
  return out;
}

}  // namespace

TEST_CASE("records sharing an email merge with the newest as primary") {
  auto groups = run(email_phone(), {{"1", 100, {{"a@x.com"}, {}}},
                                    {"2", 300, {{"a@x.com"}, {"+14155550001"}}},
                                    {"3", 200, {{"b@x.com"}, {}}}});
  REQUIRE(groups.size() == 2);
  const auto& g = group_of(groups, "1");
  CHECK(g.kind == cmg::GroupKind::kMerged);
  CHECK(ids(g) == std::vector<std::string>{"2", "1"});
  CHECK(g.link_key == "email");
  CHECK(g.members[0].linked_by.empty());
  CHECK(g.members[1].linked_by == "email");
  CHECK(group_of(groups, "3").kind == cmg::GroupKind::kSingle);
  CHECK(g.decision == cmg::DestinationDecision::kNew);
}

TEST_CASE("primary ties are broken by the numerically smallest id") {
  auto groups = run(email_phone(), {{"10", 5, {{"a@x.com"}, {}}}, {"9", 5, {{"a@x.com"}, {}}},
                                    {"x1", 5, {{"a@x.com"}, {}}}});
  REQUIRE(groups.size() == 1);
  CHECK(ids(groups[0]) == std::vector<std::string>{"9", "10", "x1"});
}

TEST_CASE("id_less orders numeric ids by value before other ids") {
  CHECK(cmg::id_less("9", "10"));
  CHECK_FALSE(cmg::id_less("10", "9"));
  CHECK(cmg::id_less("7", "007") != cmg::id_less("007", "7"));
  CHECK(cmg::id_less("10", "1a"));
  CHECK(cmg::id_less("1a", "2a"));
  CHECK_FALSE(cmg::id_less("abc", "abc"));
}

TEST_CASE("groups come out in id_less order whatever the ids look like") {
  // Numeric ids of every length (leading zeros, past 18 digits), ids sharing an 8-byte prefix,
  // short and empty-padded ones: the resolver sorts on integer keys and must agree with id_less.
  std::vector<std::string> ids_in = {"10", "9", "007", "7", "0", "abc", "abcdefgh1", "abcdefgh0", "abcdefgh",
                                     "12345678901234567890", "9999999999999999999", "999999999999999999",
                                     "1a", "A", "a", "abcdefg", "abcdefgi", "\xff", "ab\x01", "100000000000000000000"};
  std::vector<Src> src;
  for (const auto& id : ids_in) src.push_back({id, 1, {{"mail-" + id + "@x.com"}, {}}});
  std::shuffle(src.begin(), src.end(), std::mt19937(7));
  auto groups = run(email_phone(), src);
  std::vector<std::string> got;
  for (const auto& g : groups) got.push_back(g.members.front().id);
  std::vector<std::string> want = ids_in;
  std::sort(want.begin(), want.end(), [](const std::string& a, const std::string& b) { return cmg::id_less(a, b); });
  CHECK(got == want);
}

TEST_CASE("a shared phone does not merge records whose emails differ") {
  auto groups = run(email_phone(), {{"1", 1, {{"a@x.com"}, {"+14155550000"}}},
                                    {"2", 1, {{"b@x.com"}, {"+14155550000"}}}});
  REQUIRE(groups.size() == 2);
  for (const auto& g : groups) CHECK(g.kind == cmg::GroupKind::kSingle);
}

TEST_CASE("a phone-only record linked to two incompatible groups is ambiguous") {
  auto groups = run(email_phone(), {{"1", 1, {{"a@x.com"}, {"+14155550000"}}},
                                    {"2", 1, {{"b@x.com"}, {"+14155550000"}}},
                                    {"3", 1, {{}, {"+14155550000"}}}});
  REQUIRE(groups.size() == 3);
  const auto& g3 = group_of(groups, "3");
  CHECK(g3.kind == cmg::GroupKind::kAmbiguous);
  CHECK(g3.link_key == "phone");
  CHECK(g3.ambiguous_with == std::vector<std::string>{"1", "2"});
  CHECK(group_of(groups, "1").kind == cmg::GroupKind::kSingle);
  CHECK(group_of(groups, "2").kind == cmg::GroupKind::kSingle);
}

TEST_CASE("a phone-only record linked to one group merges even if that group shares another phone") {
  auto groups = run(email_phone(), {{"1", 1, {{"a@x.com"}, {"+1p", "+1q"}}},
                                    {"2", 1, {{"b@x.com"}, {"+1q"}}},
                                    {"3", 2, {{}, {"+1p"}}}});
  REQUIRE(groups.size() == 2);
  const auto& g = group_of(groups, "1");
  CHECK(ids(g) == std::vector<std::string>{"3", "1"});
  CHECK(g.members[1].linked_by == "phone");
  CHECK(group_of(groups, "2").kind == cmg::GroupKind::kSingle);
}

TEST_CASE("a chain of compatible links between conflicting groups merges nothing") {
  // 1 (email a) – 3 – 4 – 2 (email b): 3 and 4 could belong to either side.
  auto groups = run(email_phone(), {{"1", 1, {{"a@x.com"}, {"p"}}},
                                    {"3", 1, {{}, {"p", "q"}}},
                                    {"4", 1, {{}, {"q", "r"}}},
                                    {"2", 1, {{"b@x.com"}, {"r"}}}});
  REQUIRE(groups.size() == 4);
  CHECK(group_of(groups, "3").kind == cmg::GroupKind::kAmbiguous);
  CHECK(group_of(groups, "4").kind == cmg::GroupKind::kAmbiguous);
  CHECK(group_of(groups, "1").kind == cmg::GroupKind::kSingle);
  CHECK(group_of(groups, "2").kind == cmg::GroupKind::kSingle);
}

TEST_CASE("records without a stronger key merge through a weak key") {
  auto groups = run(email_phone(), {{"1", 1, {{}, {"p"}}}, {"2", 2, {{}, {"p", "q"}}}, {"3", 3, {{}, {"q"}}}});
  REQUIRE(groups.size() == 1);
  CHECK(ids(groups[0]) == std::vector<std::string>{"3", "2", "1"});
  CHECK(groups[0].link_key == "phone");
}

TEST_CASE("external ids are ignored within the source and matched against the destination") {
  auto groups = run(ext_email_phone(),
                    {{"1", 2, {{"1"}, {"a@x.com"}, {}}}, {"2", 1, {{"2"}, {"a@x.com"}, {}}}},
                    {{"D7", {{"2"}, {}, {}}}});
  REQUIRE(groups.size() == 1);
  CHECK(ids(groups[0]) == std::vector<std::string>{"1", "2"});
  CHECK(groups[0].members[1].linked_by == "email");
  CHECK(groups[0].decision == cmg::DestinationDecision::kMatch);
  CHECK(groups[0].destination_ids == std::vector<std::string>{"D7"});
  CHECK(groups[0].match_key == "external_id");
}

TEST_CASE("a destination whose external id differs is not matched by email") {
  auto groups = run(ext_email_phone(), {{"1", 1, {{"1"}, {"a@x.com"}, {}}}},
                    {{"D1", {{"99"}, {"a@x.com"}, {}}}, {"D2", {{}, {"a@x.com"}, {}}}});
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].decision == cmg::DestinationDecision::kMatch);
  CHECK(groups[0].destination_ids == std::vector<std::string>{"D2"});
  CHECK(groups[0].match_key == "email");
}

TEST_CASE("a destination with a different email is not matched by phone") {
  auto groups = run(email_phone(), {{"1", 1, {{"a@x.com"}, {"p"}}}, {"2", 1, {{}, {"q"}}}},
                    {{"D1", {{"b@x.com"}, {"p"}}}, {"D2", {{"b@x.com"}, {"q"}}}});
  CHECK(group_of(groups, "1").decision == cmg::DestinationDecision::kNew);
  CHECK(group_of(groups, "2").decision == cmg::DestinationDecision::kMatch);
  CHECK(group_of(groups, "2").match_key == "phone");
}

TEST_CASE("several destination matches at the deciding level are ambiguous") {
  auto groups = run(email_phone(), {{"1", 1, {{"a@x.com"}, {"p"}}}},
                    {{"D2", {{"a@x.com"}, {}}}, {"D10", {{"a@x.com"}, {"zz"}}}, {"D3", {{}, {"p"}}}});
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].decision == cmg::DestinationDecision::kAmbiguous);
  CHECK(groups[0].destination_ids == std::vector<std::string>{"D10", "D2"});
  CHECK(groups[0].match_key == "email");
}

TEST_CASE("the strongest matching level decides even when a weaker level matches another record") {
  auto groups = run(email_phone(), {{"1", 1, {{"a@x.com"}, {"p"}}}},
                    {{"D1", {{"a@x.com"}, {}}}, {"D2", {{}, {"p"}}}});
  CHECK(groups[0].decision == cmg::DestinationDecision::kMatch);
  CHECK(groups[0].destination_ids == std::vector<std::string>{"D1"});
}

TEST_CASE("a destination claimed by two source groups makes both ambiguous") {
  auto groups = run(email_phone(), {{"1", 1, {{"a@x.com"}, {}}}, {"2", 1, {{"b@x.com"}, {}}}},
                    {{"D1", {{"a@x.com", "b@x.com"}, {}}}});
  REQUIRE(groups.size() == 2);
  for (const auto& g : groups) {
    CHECK(g.decision == cmg::DestinationDecision::kAmbiguous);
    CHECK(g.destination_ids == std::vector<std::string>{"D1"});
  }
  CHECK(group_of(groups, "1").detail.find("source group 2") != std::string::npos);
}

TEST_CASE("values shared by too many groups link nothing") {
  std::vector<Src> src;
  for (int i = 0; i < 5; ++i) src.push_back({std::to_string(i), 1, {{"n/a@n.a"}, {}}});
  cmg::DedupOptions options;
  options.max_shared_groups = 4;
  cmg::Deduplicator d(email_phone(), options);
  for (const auto& s : src) REQUIRE(d.add_source(s.id, s.updated_at, s.values).is_ok());
  cmg::DedupStats stats;
  std::size_t groups = 0;
  REQUIRE(d.resolve([&](const cmg::DedupGroup&) { ++groups; return cmg::Status::ok(); }, &stats).is_ok());
  CHECK(groups == 5);
  CHECK(stats.too_common_values == 1);
  CHECK(stats.groups == 5);
}

TEST_CASE("bad calls are reported as errors") {
  cmg::Deduplicator d(email_phone());
  CHECK(d.add_source("1", 0, {{"a@x.com"}}).code() == cmg::Code::kInvalidArgument);
  REQUIRE(d.add_source("1", 0, {{"a@x.com"}, {}}).is_ok());
  REQUIRE(d.add_source("01", 0, {{"a@x.com"}, {}}).is_ok());
  REQUIRE(d.add_source("1", 0, {{}, {}}).is_ok());
  CHECK(d.resolve().status().code() == cmg::Code::kAlreadyExists);

  cmg::Deduplicator empty({});
  CHECK(empty.add_source("1", 0, {}).code() == cmg::Code::kInvalidArgument);
}

TEST_CASE("a sink error stops the resolution and is returned unchanged") {
  cmg::Deduplicator d(email_phone());
  REQUIRE(d.add_source("1", 0, {{"a@x.com"}, {}}).is_ok());
  REQUIRE(d.add_source("2", 0, {{"b@x.com"}, {}}).is_ok());
  int calls = 0;
  cmg::Status s = d.resolve([&](const cmg::DedupGroup&) {
    ++calls;
    return cmg::Status(cmg::Code::kCancelled, "stop");
  });
  CHECK(s.code() == cmg::Code::kCancelled);
  CHECK(calls == 1);
}

TEST_CASE("results are identical under any permutation of the input") {
  std::mt19937 gen(1234);
  auto pick = [&](const char* prefix, int pool) { return std::string(prefix) + std::to_string(gen() % pool); };
  std::vector<Src> src;
  for (int i = 0; i < 400; ++i) {
    Values v(3);
    v[0].push_back(std::to_string(i));
    if (gen() % 3) v[1].push_back(pick("e", 250));
    if (gen() % 8 == 0) v[1].push_back(pick("e", 250));
    if (gen() % 2) v[2].push_back(pick("p", 200));
    if (gen() % 6 == 0) v[2].push_back(pick("p", 200));
    src.push_back({gen() % 2 ? std::to_string(i) : "s" + std::to_string(i), static_cast<std::int64_t>(gen() % 5), v});
  }
  std::vector<Dst> dst;
  for (int i = 0; i < 150; ++i) {
    Values v(3);
    if (gen() % 4 == 0) v[0].push_back(std::to_string(gen() % 400));
    if (gen() % 2) v[1].push_back(pick("e", 250));
    if (gen() % 2) v[2].push_back(pick("p", 200));
    dst.push_back({"D" + std::to_string(i), v});
  }
  std::vector<cmg::DedupGroup> reference = run(ext_email_phone(), src, dst);
  std::string expected = dump(reference);
  std::size_t merged = 0, ambiguous = 0, matched = 0;
  for (const auto& g : reference) {
    merged += g.kind == cmg::GroupKind::kMerged;
    ambiguous += g.kind == cmg::GroupKind::kAmbiguous;
    matched += g.decision == cmg::DestinationDecision::kMatch;
  }
  // The data must exercise every outcome for the comparison to mean something.
  CHECK(merged > 10);
  CHECK(ambiguous > 3);
  CHECK(matched > 10);
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 shuffle_rng(seed);
    std::vector<Src> s = src;
    std::vector<Dst> d = dst;
    std::shuffle(s.begin(), s.end(), shuffle_rng);
    std::shuffle(d.begin(), d.end(), shuffle_rng);
    for (auto& x : s)
      for (auto& level : x.values) std::shuffle(level.begin(), level.end(), shuffle_rng);
    CAPTURE(seed);
    CHECK(dump(run(ext_email_phone(), s, d)) == expected);
  }
}

TEST_CASE("sizing the value index in advance changes no decision") {
  const auto [src, dst] = external_email_phone_sample(77, 3000, 300, 2000, 1500, false);
  const std::string expected = dump(run(ext_email_phone(), src, dst));
  CHECK(expected.find("merged") != std::string::npos);
  CHECK(expected.find(" match ") != std::string::npos);
  // Too small, about right, and far too large (a source may misreport its count).
  for (std::size_t hint : {std::size_t{10}, std::size_t{3300}, std::size_t{1} << 40}) {
    CAPTURE(hint);
    CHECK(dump(run(ext_email_phone(), src, dst, {}, hint)) == expected);
  }
}

TEST_CASE("sources added as batches decide as sources added one by one") {
  const auto [src, dst] = external_email_phone_sample(4242, 2500, 200, 1500, 1000, true);
  const std::string expected = dump(run(ext_email_phone(), src, dst));
  CHECK(expected.find("merged") != std::string::npos);
  CHECK(expected.find(" match ") != std::string::npos);
  for (std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{500}, std::size_t{5000}}) {
    CAPTURE(batch);
    cmg::Deduplicator d(ext_email_phone());
    std::vector<cmg::Deduplicator::SourceEntity> entities;
    for (std::size_t i = 0; i < src.size(); i += batch) {
      entities.clear();
      for (std::size_t j = i; j < std::min(src.size(), i + batch); ++j)
        entities.push_back({src[j].id, src[j].updated_at, &src[j].values});
      REQUIRE(d.add_sources(entities).is_ok());
    }
    for (const auto& x : dst) REQUIRE(d.add_destination(x.id, x.values).is_ok());
    auto groups = d.resolve();
    REQUIRE(groups.is_ok());
    CHECK(dump(*groups) == expected);
  }
}

TEST_CASE("a batch stops at its first bad entity, the ones before it added") {
  cmg::Deduplicator d(email_phone());
  const Values good1{{"a@x.com"}, {}}, bad{{"b@x.com"}}, good2{{"a@x.com"}, {"555"}};
  std::vector<cmg::Deduplicator::SourceEntity> entities{{"1", 0, &good1}, {"2", 0, &bad}, {"3", 0, &good2}};
  CHECK(d.add_sources(entities).code() == cmg::Code::kInvalidArgument);
  auto groups = d.resolve();
  REQUIRE(groups.is_ok());
  REQUIRE(groups->size() == 1);  // "1" alone: "2" was refused and "3" never added
  CHECK(ids(groups->front()) == std::vector<std::string>{"1"});
}

TEST_CASE("every source entity appears in exactly one group") {
  std::mt19937 gen(99);
  std::vector<Src> src;
  for (int i = 0; i < 2000; ++i)
    src.push_back({std::to_string(i), 0, {{"e" + std::to_string(gen() % 900)}, {"p" + std::to_string(gen() % 900)}}});
  auto groups = run(email_phone(), src);
  std::vector<std::string> all;
  for (const auto& g : groups)
    for (const auto& m : g.members) all.push_back(m.id);
  std::sort(all.begin(), all.end());
  CHECK(all.size() == src.size());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
}

TEST_CASE("results are identical under any permutation with three within-source levels") {
  std::mt19937 gen(77);
  auto pick = [&](const char* prefix, int pool) { return std::string(prefix) + std::to_string(gen() % pool); };
  const std::vector<cmg::DedupKey> keys{{"email", true}, {"phone", true}, {"name", true}};
  std::vector<Src> src;
  for (int i = 0; i < 300; ++i) {
    Values v(3);
    if (gen() % 3 == 0) v[0].push_back(pick("e", 120));
    if (gen() % 2) v[1].push_back(pick("p", 120));
    if (gen() % 2) v[2].push_back(pick("n", 60));
    src.push_back({std::to_string(i), static_cast<std::int64_t>(gen() % 3), v});
  }
  std::vector<Dst> dst;
  for (int i = 0; i < 80; ++i) dst.push_back({"D" + std::to_string(i), {{pick("e", 120)}, {pick("p", 120)}, {}}});
  std::string expected = dump(run(keys, src, dst));
  CHECK(expected.find("ambiguous [") != std::string::npos);
  CHECK(expected.find("merged [") != std::string::npos);
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 shuffle_rng(seed);
    std::vector<Src> s = src;
    std::vector<Dst> d = dst;
    std::shuffle(s.begin(), s.end(), shuffle_rng);
    std::shuffle(d.begin(), d.end(), shuffle_rng);
    CAPTURE(seed);
    CHECK(dump(run(keys, s, d)) == expected);
  }
}
