// Dedup quality on public sample data (../shared/data): pairwise precision/recall against ground
// truth, and "no false merge" checks on data known to contain no duplicates.
#include "crmmigrate/core/dedup.hpp"
#include "crmmigrate/core/normalize.hpp"

#include <doctest/doctest.h>

#include <boost/json.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/csv_fixture.hpp"

namespace json = boost::json;

namespace {

using cmg_test::split_csv_line;

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::size_t column(const std::string& name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    FAIL("no column " << name);
    return 0;
  }
};

Table read_csv(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), path);
  Table t;
  std::string line;
  REQUIRE(std::getline(in, line));
  t.header = split_csv_line(line);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    t.rows.push_back(split_csv_line(line));
    REQUIRE(t.rows.back().size() == t.header.size());
  }
  return t;
}

std::vector<std::string> email_values(const std::string& raw) {
  std::optional<std::string> e = cmg::normalize_email(raw);
  return e ? std::vector<std::string>{*e} : std::vector<std::string>{};
}

std::vector<cmg::DedupGroup> resolve(cmg::Deduplicator& d) {
  auto groups = d.resolve();
  REQUIRE(groups.is_ok());
  return std::move(groups).value();
}

struct PairScore {
  double precision, recall, f1;
};

PairScore pairwise(const std::vector<cmg::DedupGroup>& groups, const std::map<std::string, std::string>& truth) {
  auto pairs = [](std::size_t n) { return static_cast<double>(n) * static_cast<double>(n - (n > 0)) / 2.0; };
  std::map<std::string, std::size_t> truth_sizes;
  for (const auto& [id, cluster] : truth) ++truth_sizes[cluster];
  double predicted = 0, actual = 0, hits = 0;
  for (const auto& [cluster, n] : truth_sizes) actual += pairs(n);
  for (const auto& g : groups) {
    // Ambiguous groups are not merges: they go to the queue on their own.
    if (g.kind != cmg::GroupKind::kMerged) continue;
    predicted += pairs(g.members.size());
    std::map<std::string, std::size_t> cells;
    for (const auto& m : g.members) ++cells[truth.at(m.id)];
    for (const auto& [cluster, n] : cells) hits += pairs(n);
  }
  PairScore s{};
  s.precision = predicted > 0 ? hits / predicted : 1.0;
  s.recall = actual > 0 ? hits / actual : 1.0;
  s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0;
  return s;
}

PairScore splink_email_only(const std::string& file, const std::string& truth_column) {
  Table t = read_csv(std::string(CMG_SHARED_DATA_DIR) + "/splink-fake/" + file);
  std::size_t id_col = t.column("unique_id"), email_col = t.column("email"), truth_col = t.column(truth_column);
  cmg::Deduplicator d({{"email", true}});
  std::map<std::string, std::string> truth;
  for (const auto& row : t.rows) {
    REQUIRE(d.add_source(row[id_col], 0, {email_values(row[email_col])}).is_ok());
    truth[row[id_col]] = row[truth_col];
  }
  std::vector<cmg::DedupGroup> groups = resolve(d);
  PairScore s = pairwise(groups, truth);
  MESSAGE(file << " exact email: precision " << s.precision << " recall " << s.recall << " F1 " << s.f1);
  return s;
}

json::value read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), path);
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(ss.str(), ec);
  REQUIRE_MESSAGE(!ec, path << ": " << ec.message());
  return v;
}

std::string text(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

struct SfPerson {
  std::string id;
  std::string email;
  std::vector<std::string> phones;
};

std::vector<SfPerson> sobject_tree(const std::string& path, const char* email_field,
                                   std::vector<const char*> phone_fields, const std::string& prefix) {
  std::vector<SfPerson> out;
  const json::value doc = read_json(path);
  for (const json::value& r : doc.as_object().at("records").as_array()) {
    const json::object& o = r.as_object();
    SfPerson p;
    p.id = prefix + text(o.at("attributes").as_object(), "referenceId");
    p.email = text(o, email_field);
    for (const char* f : phone_fields) p.phones.push_back(text(o, f));
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<std::vector<std::string>> person_values(const SfPerson& p, const cmg::PhoneNormalizer& phones) {
  std::vector<std::vector<std::string>> values(2);
  values[0] = email_values(p.email);
  for (const std::string& raw : p.phones)
    if (auto e164 = phones.to_e164(raw)) values[1].push_back(*e164);
  return values;
}

}  // namespace

TEST_CASE("exact email dedup on splink fake_1000 matches the published baseline") {
  // The README's 0.336 is the rounded 0.33580 that the same method gives exactly.
  PairScore s = splink_email_only("fake_1000.csv", "cluster");
  CHECK(s.precision >= 0.999);
  CHECK(s.recall >= 0.3355);
}

TEST_CASE("exact email dedup on splink fake_20000 matches the published baseline") {
  // Slightly below the README's 0.360 (0.3596): normalize_email rejects the malformed addresses
  // ("a@b@c.com", "x@com") the baseline keeps, and some duplicates share only such a value.
  PairScore s = splink_email_only("fake_20000.csv", "group");
  CHECK(s.precision >= 0.999);
  CHECK(s.recall >= 0.336);
}

TEST_CASE("Atomic CRM contacts produce no merged groups on email and phone") {
  Table t = read_csv(std::string(CMG_SHARED_DATA_DIR) + "/atomic-crm-samples/contacts.csv");
  cmg::PhoneNormalizer phones("US");
  cmg::Deduplicator d({{"email", true}, {"phone", true}});
  std::size_t id_col = t.column("id");
  std::vector<std::size_t> email_cols{t.column("email_work"), t.column("email_home"), t.column("email_other")};
  std::vector<std::size_t> phone_cols{t.column("phone_work"), t.column("phone_home"), t.column("phone_other")};
  std::size_t with_email = 0, phone_values = 0;
  for (const auto& row : t.rows) {
    std::vector<std::vector<std::string>> values(2);
    for (std::size_t c : email_cols)
      for (auto& e : email_values(row[c])) values[0].push_back(e);
    for (std::size_t c : phone_cols)
      if (auto p = phones.to_e164(row[c])) values[1].push_back(*p);
    with_email += !values[0].empty();
    phone_values += values[1].size();
    REQUIRE(d.add_source(row[id_col], 0, values).is_ok());
  }
  CHECK(t.rows.size() == 500);
  CHECK(with_email == 500);
  CHECK(phone_values == 830);
  cmg::DedupStats stats;
  REQUIRE(d.resolve([](const cmg::DedupGroup&) { return cmg::Status::ok(); }, &stats).is_ok());
  MESSAGE("atomic contacts: " << stats.groups << " groups, " << stats.merged_groups << " merged, "
                              << stats.ambiguous_groups << " ambiguous");
  CHECK(stats.groups == 500);
  CHECK(stats.merged_groups == 0);
  CHECK(stats.ambiguous_groups == 0);
}

TEST_CASE("Salesforce brokers sharing a switchboard stay separate and nothing is falsely merged") {
  const std::string dir = CMG_SHARED_DATA_DIR;
  std::vector<SfPerson> people =
      sobject_tree(dir + "/salesforce-dreamhouse-lwc/brokers-data.json", "Email__c", {"Phone__c", "Mobile_Phone__c"}, "broker/");
  REQUIRE(people.size() == 8);
  for (auto& p : sobject_tree(dir + "/salesforce-dreamhouse-lwc/contacts-data.json", "Email", {"Phone"}, "dh/"))
    people.push_back(std::move(p));
  for (auto& p : sobject_tree(dir + "/salesforce-lwc-recipes/Contacts.json", "Email", {"Phone"}, "recipes/"))
    people.push_back(std::move(p));
  REQUIRE(people.size() == 19);

  cmg::PhoneNormalizer phones("US");
  std::set<std::string> broker_phones;
  cmg::Deduplicator d({{"email", true}, {"phone", true}});
  std::map<std::string, std::string> email_of;
  for (const auto& p : people) {
    auto values = person_values(p, phones);
    REQUIRE(values[0].size() == 1);
    REQUIRE(!values[1].empty());
    if (p.id.rfind("broker/", 0) == 0) broker_phones.insert(values[1].begin(), values[1].end());
    email_of[p.id] = values[0][0];
    REQUIRE(d.add_source(p.id, 0, values).is_ok());
  }
  CHECK(broker_phones == std::set<std::string>{"+16172443672"});
  std::vector<cmg::DedupGroup> groups = resolve(d);
  CHECK(groups.size() == people.size());
  for (const auto& g : groups) {
    std::set<std::string> emails;
    for (const auto& m : g.members) emails.insert(email_of[m.id]);
    CHECK_MESSAGE(emails.size() == 1, "false merge around " << g.members[0].id);
    CHECK(g.kind == cmg::GroupKind::kSingle);
  }

  // A phone-only record on the switchboard could be any broker: queued, never merged.
  std::vector<std::vector<std::string>> switchboard_only{{}, {"+16172443672"}};
  REQUIRE(d.add_source("walk-in", 0, switchboard_only).is_ok());
  groups = resolve(d);
  std::size_t ambiguous = 0;
  for (const auto& g : groups) {
    CHECK(g.members.size() == 1);
    if (g.kind == cmg::GroupKind::kAmbiguous) {
      ++ambiguous;
      CHECK(g.members[0].id == "walk-in");
      CHECK(g.ambiguous_with.size() == 8);
    }
  }
  CHECK(ambiguous == 1);
}

TEST_CASE("same-name Salesforce contacts with different identifiers do not match brokers in the destination") {
  const std::string dir = CMG_SHARED_DATA_DIR;
  cmg::PhoneNormalizer phones("US");
  cmg::Deduplicator d({{"email", true}, {"phone", true}});
  for (const auto& p : sobject_tree(dir + "/salesforce-lwc-recipes/Contacts.json", "Email", {"Phone"}, "recipes/"))
    REQUIRE(d.add_source(p.id, 0, person_values(p, phones)).is_ok());
  for (const auto& p :
       sobject_tree(dir + "/salesforce-dreamhouse-lwc/brokers-data.json", "Email__c", {"Phone__c", "Mobile_Phone__c"}, "broker/"))
    REQUIRE(d.add_destination(p.id, person_values(p, phones)).is_ok());
  for (const auto& g : resolve(d)) {
    CAPTURE(g.members[0].id);
    CHECK(g.decision == cmg::DestinationDecision::kNew);
  }
}
