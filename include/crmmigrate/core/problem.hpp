// Problem: one field-level reason a record cannot be written as it is (DESIGN §1 queue).
#pragma once

#include <string>
#include <vector>

#include <boost/json/value.hpp>

namespace cmg {

/// The closed list of queue reasons (DESIGN §1).
enum class Reason {
  kUnmappedValue,
  kMissingRequired,
  kInvalidValue,
  kOwnerUnprovisioned,
  kOrphanReference,
  kParentQueued,
  kAmbiguousMatch,
  kMergeConflict,
  kRejectedByDestination,
  kRetriesExhausted,
  kBothSidesChanged,
  kDeletedInSource,
};

const char* reason_name(Reason r) noexcept;
/// Parses a reason name ("unmapped_value"); false when it is not in the closed list.
bool reason_from_name(std::string_view name, Reason& out) noexcept;
/// Every reason name, in the order above (for help texts and validation of filters).
std::vector<std::string> reason_names();

struct Problem {
  Reason reason = Reason::kInvalidValue;
  std::string field;       // destination field ("" when the problem is about the whole record)
  std::string value;       // offending value as text
  std::string rule;        // "required", "picklist", "type:number", "max_length:255", "email", "owner", ...
  std::string message;     // one human sentence
  std::string suggestion;  // e.g. the closest picklist value; "" when none
};

boost::json::object problem_to_json(const Problem& p);

/// The reason that names a record's queue entry: the first problem's reason, by the order of
/// DESIGN §1's pipeline (mapping before dedup before validation).
Reason primary_reason(const std::vector<Problem>& problems);

}  // namespace cmg
