// Merge rules (DESIGN §3 `MergeRule`): when dedup matched a source record to exactly one
// destination record, a merge rule decides field by field what changes on the destination, or
// that the record is skipped, or that it goes to the conflict queue (merge_conflict).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/status.hpp"

namespace cmg {

/// How one field is merged. "Blank" means value_is_blank() (null, "", whitespace, empty array or
/// object); a blank source value never erases a destination value, whatever the strategy. Values
/// are compared as text after trimming (value_to_text()), so 42 and "42" are equal.
enum class MergeStrategy {
  kKeepDestination,  ///< never change the destination field
  kPreferSource,     ///< a non-blank source value replaces a differing destination value
  kFillBlanks,       ///< the source value is written only where the destination is blank
  kNewestWins,       ///< differing non-blank values: the record with the newer updated_at wins;
                     ///< unknown (0) or equal timestamps → conflict. Blank destination → filled.
  kManual,           ///< equal, or one side blank → the non-blank value; differing → conflict
};

/// "keep_destination", "prefer_source", "fill_blanks", "newest_wins", "manual". Never null.
const char* merge_strategy_name(MergeStrategy strategy) noexcept;
/// Inverse of merge_strategy_name(); std::nullopt for an unknown name. Thread-safe.
std::optional<MergeStrategy> merge_strategy_from_name(std::string_view name) noexcept;

/// The two records being merged; borrowed for the duration of MergeRule::merge(). The source
/// record is already mapped (its field names are destination field names).
struct MergeInput {
  const Record& source;
  const Record& destination;
};

struct MergeFieldConflict {
  std::string field;
  boost::json::value source_value;
  boost::json::value destination_value;
};

struct MergeOutcome {
  enum class Kind {
    kMerged,    ///< write `changes` to the destination record (possibly none)
    kSkip,      ///< counted as skipped, with `reason`
    kConflict,  ///< queue as merge_conflict with `conflicts`; nothing is written
  };
  Kind kind = Kind::kMerged;
  /// Only the fields whose value must change on the destination, with their new values. For
  /// kConflict it holds what the undisputed fields would have become (for the reviewer).
  boost::json::object changes;
  std::string reason;                        ///< why (always set for kSkip and kConflict)
  std::vector<MergeFieldConflict> conflicts;  ///< kConflict: one entry per disputed field
  /// Audit trail, one "field:strategy" entry per field that changed or conflicted.
  std::vector<std::string> rules_applied;
};

/// "merged", "skip", "conflict".
const char* merge_outcome_kind_name(MergeOutcome::Kind kind) noexcept;

/// Reads a merge outcome written as JSON — the shape C and Python merge rules return:
/// `{"kind": "merged"|"skip"|"conflict", "changes": {...}, "reason": "...",
///   "conflicts": [{"field", "source", "destination"}], "rules_applied": ["field:strategy"]}`
/// (every member optional; a missing kind means "merged"). A skip or conflict without a reason gets
/// "decided by merge rule 'RULE_NAME'"; a conflict without conflicts gets one naming that reason.
/// Errors: Code::kPlugin, "merge rule 'RULE_NAME': outcome: <what is wrong>". `out` is filled as far
/// as it was read when an error is returned.
Status merge_outcome_from_json(const boost::json::value& v, std::string_view rule_name, MergeOutcome* out);

/// Interface for merge rules; users implement it (C and Python rules are adapted to it).
/// Implementations must be thread-safe for concurrent merge() calls: the pipeline may call one
/// rule from several threads.
class MergeRule {
 public:
  virtual ~MergeRule();

  /// Short name recorded in the audit log with each decision.
  virtual std::string name() const = 0;

  /// Decides how `input.source` merges into `input.destination` and fills `*output` (which the
  /// caller owns and passes default-constructed). A kSkip or kConflict outcome is a decision, not
  /// an error: return OK with it. Return a non-OK Status (kPlugin for user code) only when the
  /// rule could not decide; the record is then queued and the Status message recorded.
  virtual Status merge(const MergeInput& input, MergeOutcome* output) const = 0;
};

/// Built-in rule: one strategy per field (`per_field`), `default_strategy` for the others. Only
/// fields present in the source record are considered (a field absent from the source is blank
/// and never changes the destination). Any conflicting field makes the outcome kConflict. When no
/// field changes, the outcome is kMerged with empty `changes`, or kSkip with reason "no changes"
/// if `skip_when_unchanged`. Immutable after construction; merge() is thread-safe.
class FieldMergeRule final : public MergeRule {
 public:
  explicit FieldMergeRule(MergeStrategy default_strategy,
                          std::map<std::string, MergeStrategy> per_field = {},
                          bool skip_when_unchanged = false);

  /// "field:<default strategy name>".
  std::string name() const override;
  /// See MergeRule::merge(). Always OK unless `output` is null (kInvalidArgument).
  Status merge(const MergeInput& input, MergeOutcome* output) const override;

  /// The strategy applied to `field`: its per-field entry, else the default.
  MergeStrategy strategy_for(std::string_view field) const;

 private:
  MergeStrategy default_strategy_;
  std::map<std::string, MergeStrategy, std::less<>> per_field_;
  bool skip_when_unchanged_;
};

/// Folds a group of duplicate source records into one record. `members_primary_first` is in the
/// order given by dedup (primary first; none may be null). The result has the primary's object,
/// id and updated_at; each field takes the first non-blank value in member order (if every
/// member's value is blank, the first member's value having the field), fields in order of first
/// appearance. Deterministic; an empty input gives an empty Record. The result is a copy owned by
/// the caller. Thread-safe.
Record fold_group(const std::vector<const Record*>& members_primary_first);

}  // namespace cmg
