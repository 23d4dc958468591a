#include "crmmigrate/core/merge.hpp"

#include <doctest/doctest.h>

namespace json = boost::json;

namespace {

cmg::Record rec(const char* id, std::int64_t updated_at, json::object fields) {
  return cmg::Record{"contacts", id, std::move(fields), updated_at};
}

cmg::MergeOutcome merge(const cmg::MergeRule& rule, const cmg::Record& s, const cmg::Record& d) {
  cmg::MergeOutcome out;
  REQUIRE(rule.merge({s, d}, &out).is_ok());
  return out;
}

}  // namespace

TEST_CASE("strategy names round-trip") {
  for (auto s : {cmg::MergeStrategy::kKeepDestination, cmg::MergeStrategy::kPreferSource, cmg::MergeStrategy::kFillBlanks,
                 cmg::MergeStrategy::kNewestWins, cmg::MergeStrategy::kManual}) {
    CHECK(cmg::merge_strategy_from_name(cmg::merge_strategy_name(s)) == s);
  }
  CHECK(std::string(cmg::merge_strategy_name(cmg::MergeStrategy::kFillBlanks)) == "fill_blanks");
  CHECK_FALSE(cmg::merge_strategy_from_name("newest").has_value());
}

TEST_CASE("keep_destination never changes the destination") {
  cmg::FieldMergeRule rule(cmg::MergeStrategy::kKeepDestination);
  auto out = merge(rule, rec("1", 5, {{"name", "New"}, {"city", "Paris"}}), rec("D", 1, {{"name", "Old"}}));
  CHECK(out.kind == cmg::MergeOutcome::Kind::kMerged);
  CHECK(out.changes.empty());
}

TEST_CASE("prefer_source overwrites differing values but never erases with a blank") {
  cmg::FieldMergeRule rule(cmg::MergeStrategy::kPreferSource);
  auto out = merge(rule, rec("1", 0, {{"name", "New"}, {"city", "  "}, {"age", 42}, {"tags", json::array{}}}),
                   rec("D", 0, {{"name", "Old"}, {"city", "Paris"}, {"age", " 42 "}, {"tags", json::array{"x"}}}));
  CHECK(out.kind == cmg::MergeOutcome::Kind::kMerged);
  CHECK(out.changes == json::object{{"name", "New"}});
  CHECK(out.rules_applied == std::vector<std::string>{"name:prefer_source"});
}

TEST_CASE("fill_blanks writes only where the destination is blank or missing") {
  cmg::FieldMergeRule rule(cmg::MergeStrategy::kFillBlanks);
  auto out = merge(rule, rec("1", 0, {{"name", "New"}, {"city", "Paris"}, {"phone", "+1"}}),
                   rec("D", 0, {{"name", "Old"}, {"city", nullptr}}));
  CHECK(out.changes == json::object{{"city", "Paris"}, {"phone", "+1"}});
}

TEST_CASE("newest_wins follows updated_at and conflicts when a timestamp is unknown or equal") {
  cmg::FieldMergeRule rule(cmg::MergeStrategy::kNewestWins);
  auto newer = merge(rule, rec("1", 200, {{"name", "New"}}), rec("D", 100, {{"name", "Old"}}));
  CHECK(newer.changes == json::object{{"name", "New"}});
  auto older = merge(rule, rec("1", 50, {{"name", "New"}}), rec("D", 100, {{"name", "Old"}}));
  CHECK(older.kind == cmg::MergeOutcome::Kind::kMerged);
  CHECK(older.changes.empty());
  auto unknown = merge(rule, rec("1", 0, {{"name", "New"}, {"city", "Paris"}}), rec("D", 100, {{"name", "Old"}}));
  CHECK(unknown.kind == cmg::MergeOutcome::Kind::kConflict);
  REQUIRE(unknown.conflicts.size() == 1);
  CHECK(unknown.conflicts[0].field == "name");
  CHECK(unknown.conflicts[0].source_value == "New");
  CHECK(unknown.conflicts[0].destination_value == "Old");
  CHECK(unknown.changes == json::object{{"city", "Paris"}});
  CHECK(unknown.reason.find("name") != std::string::npos);
  auto same = merge(rule, rec("1", 0, {{"name", "Old"}}), rec("D", 100, {{"name", "Old "}}));
  CHECK(same.kind == cmg::MergeOutcome::Kind::kMerged);
}

TEST_CASE("manual takes the non-blank side and conflicts on differing values") {
  cmg::FieldMergeRule rule(cmg::MergeStrategy::kManual);
  auto fill = merge(rule, rec("1", 0, {{"a", "x"}, {"b", ""}}), rec("D", 0, {{"a", ""}, {"b", "y"}}));
  CHECK(fill.kind == cmg::MergeOutcome::Kind::kMerged);
  CHECK(fill.changes == json::object{{"a", "x"}});
  auto clash = merge(rule, rec("1", 0, {{"a", "x"}}), rec("D", 0, {{"a", "y"}}));
  CHECK(clash.kind == cmg::MergeOutcome::Kind::kConflict);
  CHECK(clash.rules_applied == std::vector<std::string>{"a:manual"});
}

TEST_CASE("per-field strategies override the default") {
  cmg::FieldMergeRule rule(cmg::MergeStrategy::kKeepDestination, {{"phone", cmg::MergeStrategy::kPreferSource}});
  CHECK(rule.strategy_for("phone") == cmg::MergeStrategy::kPreferSource);
  CHECK(rule.strategy_for("name") == cmg::MergeStrategy::kKeepDestination);
  auto out = merge(rule, rec("1", 0, {{"name", "N"}, {"phone", "+2"}}), rec("D", 0, {{"name", "M"}, {"phone", "+1"}}));
  CHECK(out.changes == json::object{{"phone", "+2"}});
}

TEST_CASE("an unchanged record is merged with no changes or skipped on request") {
  cmg::Record s = rec("1", 0, {{"name", "Ann"}});
  cmg::Record d = rec("D", 0, {{"name", "ann"}, {"x", 1}});
  auto merged = merge(cmg::FieldMergeRule(cmg::MergeStrategy::kPreferSource), rec("1", 0, {{"name", "Ann"}}),
                      rec("D", 0, {{"name", "Ann"}}));
  CHECK(merged.kind == cmg::MergeOutcome::Kind::kMerged);
  CHECK(merged.changes.empty());
  auto skipped = merge(cmg::FieldMergeRule(cmg::MergeStrategy::kPreferSource, {}, true), rec("1", 0, {{"name", "Ann"}}),
                       rec("D", 0, {{"name", "Ann"}}));
  CHECK(skipped.kind == cmg::MergeOutcome::Kind::kSkip);
  CHECK(skipped.reason == "no changes");
  // Text comparison is case-sensitive: "Ann" and "ann" differ.
  CHECK(merge(cmg::FieldMergeRule(cmg::MergeStrategy::kPreferSource), s, d).changes.size() == 1);
}

TEST_CASE("a user-defined rule plugs into the interface") {
  struct AlwaysSkip : cmg::MergeRule {
    std::string name() const override { return "always_skip"; }
    cmg::Status merge(const cmg::MergeInput&, cmg::MergeOutcome* out) const override {
      out->kind = cmg::MergeOutcome::Kind::kSkip;
      out->reason = "policy";
      return cmg::Status::ok();
    }
  };
  AlwaysSkip rule;
  const cmg::MergeRule& base = rule;
  auto out = merge(base, rec("1", 0, {}), rec("D", 0, {}));
  CHECK(out.kind == cmg::MergeOutcome::Kind::kSkip);
  CHECK(std::string(cmg::merge_outcome_kind_name(out.kind)) == "skip");
}

TEST_CASE("a null output is an invalid argument") {
  cmg::FieldMergeRule rule(cmg::MergeStrategy::kManual);
  cmg::Record r = rec("1", 0, {});
  CHECK(rule.merge({r, r}, nullptr).code() == cmg::Code::kInvalidArgument);
}

TEST_CASE("fold_group takes the first non-blank value in member order") {
  cmg::Record primary = rec("2", 300, {{"name", "Ann"}, {"phone", ""}, {"city", nullptr}});
  cmg::Record second = rec("1", 200, {{"name", "Anne"}, {"phone", "+1"}, {"email", "a@x.com"}});
  cmg::Record third = rec("3", 100, {{"city", "Paris"}, {"fax", ""}});
  cmg::Record folded = cmg::fold_group({&primary, &second, &third});
  CHECK(folded.id == "2");
  CHECK(folded.updated_at == 300);
  CHECK(folded.object == "contacts");
  CHECK(folded.fields == json::object{{"name", "Ann"}, {"phone", "+1"}, {"city", "Paris"}, {"email", "a@x.com"}, {"fax", ""}});
  std::vector<std::string> order;
  for (const auto& f : folded.fields) order.emplace_back(f.key());
  CHECK(order == std::vector<std::string>{"name", "phone", "city", "email", "fax"});
  CHECK(cmg::fold_group({}).id.empty());
}
