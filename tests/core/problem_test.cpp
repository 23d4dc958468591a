#include "crmmigrate/core/problem.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

using cmg::Reason;

namespace {

// DESIGN §1's closed list of queue reasons, in its order.
const std::vector<std::pair<Reason, std::string>> kClosedList = {
    {Reason::kUnmappedValue, "unmapped_value"},
    {Reason::kMissingRequired, "missing_required"},
    {Reason::kInvalidValue, "invalid_value"},
    {Reason::kOwnerUnprovisioned, "owner_unprovisioned"},
    {Reason::kOrphanReference, "orphan_reference"},
    {Reason::kParentQueued, "parent_queued"},
    {Reason::kAmbiguousMatch, "ambiguous_match"},
    {Reason::kMergeConflict, "merge_conflict"},
    {Reason::kRejectedByDestination, "rejected_by_destination"},
    {Reason::kRetriesExhausted, "retries_exhausted"},
    {Reason::kBothSidesChanged, "both_sides_changed"},
    {Reason::kDeletedInSource, "deleted_in_source"},
};

cmg::Problem problem(Reason r, const char* field = "f") { return cmg::Problem{r, field, "v", "rule", "message", ""}; }

}  // namespace

TEST_CASE("every reason of the closed list round-trips through its name") {
  std::set<std::string> seen;
  for (const auto& entry : kClosedList) {
    const auto& reason = entry.first;  // not a structured binding: doctest's macros capture it
    const auto& name = entry.second;
    CAPTURE(name);
    CHECK(cmg::reason_name(reason) == name);
    Reason parsed = Reason::kInvalidValue;
    CHECK(cmg::reason_from_name(name, parsed));
    CHECK(parsed == reason);
    seen.insert(cmg::reason_name(reason));
  }
  CHECK(seen.size() == 12);
}

TEST_CASE("reason_names lists exactly the closed list in order") {
  std::vector<std::string> want;
  for (const auto& [reason, name] : kClosedList) want.push_back(name);
  CHECK(cmg::reason_names() == want);
}

TEST_CASE("names outside the closed list are rejected and leave the output alone") {
  for (const char* bad : {"", "Unmapped_Value", "unmapped", "unmapped_value ", "dropped", "skipped"}) {
    CAPTURE(bad);
    Reason out = Reason::kMergeConflict;
    CHECK_FALSE(cmg::reason_from_name(bad, out));
    CHECK(out == Reason::kMergeConflict);
  }
}

TEST_CASE("primary_reason puts orphans, then queued parents, before every other problem") {
  CHECK(cmg::primary_reason({problem(Reason::kInvalidValue), problem(Reason::kParentQueued),
                             problem(Reason::kOrphanReference)}) == Reason::kOrphanReference);
  CHECK(cmg::primary_reason({problem(Reason::kUnmappedValue), problem(Reason::kParentQueued)}) ==
        Reason::kParentQueued);
  CHECK(cmg::primary_reason({problem(Reason::kParentQueued), problem(Reason::kOrphanReference)}) ==
        Reason::kOrphanReference);
}

TEST_CASE("primary_reason otherwise takes the first problem in pipeline order") {
  CHECK(cmg::primary_reason({problem(Reason::kUnmappedValue), problem(Reason::kMissingRequired)}) ==
        Reason::kUnmappedValue);
  CHECK(cmg::primary_reason({problem(Reason::kOwnerUnprovisioned), problem(Reason::kInvalidValue)}) ==
        Reason::kOwnerUnprovisioned);
  CHECK(cmg::primary_reason({problem(Reason::kMissingRequired)}) == Reason::kMissingRequired);
}

TEST_CASE("primary_reason of no problems is invalid_value") {
  CHECK(cmg::primary_reason({}) == Reason::kInvalidValue);
}

TEST_CASE("problem_to_json carries reason, field, value, rule, message and a suggestion only when there is one") {
  cmg::Problem p{Reason::kInvalidValue, "dealstage", "contractsnt", "picklist", "not an option", ""};
  auto o = cmg::problem_to_json(p);
  CHECK(o.at("reason").as_string() == "invalid_value");
  CHECK(o.at("field").as_string() == "dealstage");
  CHECK(o.at("value").as_string() == "contractsnt");
  CHECK(o.at("rule").as_string() == "picklist");
  CHECK(o.at("message").as_string() == "not an option");
  CHECK_FALSE(o.contains("suggestion"));
  p.suggestion = "contractsent (Contract Sent)";
  CHECK(cmg::problem_to_json(p).at("suggestion").as_string() == "contractsent (Contract Sent)");
}
