#include "crmmigrate/core/problem.hpp"

#include <boost/json.hpp>

namespace cmg {

namespace {
constexpr std::pair<Reason, const char*> kReasons[] = {
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
}  // namespace

const char* reason_name(Reason r) noexcept {
  for (auto& [reason, name] : kReasons)
    if (reason == r) return name;
  return "invalid_value";
}

bool reason_from_name(std::string_view name, Reason& out) noexcept {
  for (auto& [reason, n] : kReasons)
    if (name == n) {
      out = reason;
      return true;
    }
  return false;
}

std::vector<std::string> reason_names() {
  std::vector<std::string> out;
  for (auto& [reason, n] : kReasons) out.emplace_back(n);
  return out;
}

boost::json::object problem_to_json(const Problem& p) {
  boost::json::object o;
  o["reason"] = reason_name(p.reason);
  o["field"] = p.field;
  o["value"] = p.value;
  o["rule"] = p.rule;
  o["message"] = p.message;
  if (!p.suggestion.empty()) o["suggestion"] = p.suggestion;
  return o;
}

Reason primary_reason(const std::vector<Problem>& problems) {
  // Orphans and queued parents first: fixing anything else cannot make such a record writable.
  for (Reason r : {Reason::kOrphanReference, Reason::kParentQueued})
    for (const auto& p : problems)
      if (p.reason == r) return r;
  return problems.empty() ? Reason::kInvalidValue : problems.front().reason;
}

}  // namespace cmg
