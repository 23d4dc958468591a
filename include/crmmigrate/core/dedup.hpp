// Dedup: the key cascade resolver (DESIGN §1 "dedup").
//
// Input: source entities (records of one object type) and destination entities, each with a set of
// already-normalised values per key level (keys strongest first, e.g. external_id, email, phone).
// Output: groups of source entities that are the same real-world thing, each with a decision
// against the destination (new / match / ambiguous) and the key that produced it.
//
// Rules, all order-independent (the result depends only on the set of entities added):
//  1. Two entities match at a level when they share a value at that level.
//  2. Veto: a match at level k does not count when, at some stronger level j < k, both sides have
//     non-empty value sets that are disjoint (both have emails and none is shared → a shared phone
//     is not evidence). For groups, the value sets are the unions over their members.
//  3. Levels with compare_within_source == false (the external id: each source record's own id,
//     always different within the source) are skipped entirely when source entities are compared
//     with each other — no links, no vetoes — and used only against the destination.
//  4. Within the source, clustering runs level by level, strongest first. At level k, groups that
//     share a value are "linked"; a link between incompatible groups (rule 2) is ignored. A group
//     whose compatible links reach two groups that are incompatible with each other is ambiguous:
//     it is not merged into either and is frozen for the remaining levels (queued as
//     ambiguous_match). The remaining compatible links form components; a component whose groups
//     are pairwise compatible is merged into one group. A component that still holds an
//     incompatible pair (a chain a–x–y–b) merges nothing at this level, and every group in it that
//     is compatible with all the others (it could belong to either side) is ambiguous.
//  5. Each final group is matched against the destination by the cascade again (all levels,
//     including those skipped in 3): at the strongest level that yields at least one non-vetoed
//     destination entity, one → kMatch, several → kAmbiguous. A destination entity claimed by two
//     or more (non-ambiguous) source groups makes each of those groups kAmbiguous, so that no
//     destination record is written twice. Groups that are ambiguous within the source still get
//     a destination decision (for the reviewer) but claim nothing.
//  6. Values shared by more than DedupOptions::max_shared_groups groups within the source at one
//     level are treated as placeholders ("n/a@n/a.com", a switchboard): they create no
//     within-source links (they still veto and still match the destination). Counted in
//     DedupStats::too_common_values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crmmigrate/core/status.hpp"

namespace cmg {

/// One level of the key cascade.
struct DedupKey {
  std::string name;                   ///< "external_id", "email", "phone", ... (used in outputs)
  bool compare_within_source = true;  ///< false: only compared against the destination (rule 3)
};

struct DedupOptions {
  /// Rule 6: a value shared by more distinct groups than this at one level links nothing within
  /// the source. Bounds the pairwise compatibility checks, which are quadratic per shared value.
  std::uint32_t max_shared_groups = 10000;
};

/// Intra-source outcome of a group.
enum class GroupKind {
  kSingle,     ///< one source entity, linked to no other
  kMerged,     ///< two or more source entities that are the same thing
  kAmbiguous,  ///< linked by a weak key to several incompatible groups: queue as ambiguous_match
};

/// Outcome against the destination.
enum class DestinationDecision {
  kNew,        ///< no destination entity matches: create
  kMatch,      ///< exactly one destination entity matches: merge into it
  kAmbiguous,  ///< several destination entities match, or the match is shared with another group
};

/// "single" / "merged" / "ambiguous" and "new" / "match" / "ambiguous".
const char* group_kind_name(GroupKind kind) noexcept;
const char* destination_decision_name(DestinationDecision decision) noexcept;

struct DedupMember {
  std::string id;
  std::int64_t updated_at = 0;
  /// Key at which this member became part of the primary's group (the primary itself and the
  /// members of single/ambiguous-single groups: empty).
  std::string linked_by;
};

struct DedupGroup {
  GroupKind kind = GroupKind::kSingle;
  /// Primary first: newest updated_at; ties broken by the smallest id (see id_less()).
  std::vector<DedupMember> members;
  /// kMerged: the weakest key used to join the members. kAmbiguous: the key at which the group
  /// became ambiguous. kSingle: empty.
  std::string link_key;
  /// kAmbiguous: primary ids of the source groups this group was linked to (sorted by id_less).
  std::vector<std::string> ambiguous_with;

  DestinationDecision decision = DestinationDecision::kNew;
  /// kMatch: the one destination id; kAmbiguous: every candidate (sorted by id_less).
  std::vector<std::string> destination_ids;
  /// Key that produced the destination decision (empty for kNew).
  std::string match_key;
  /// Human-readable explanation for ambiguous outcomes (empty otherwise).
  std::string detail;
};

struct DedupStats {
  std::size_t source_entities = 0;
  std::size_t destination_entities = 0;
  std::size_t groups = 0;
  std::size_t merged_groups = 0;
  std::size_t ambiguous_groups = 0;      ///< GroupKind::kAmbiguous
  std::size_t matched_groups = 0;        ///< DestinationDecision::kMatch
  std::size_t ambiguous_decisions = 0;   ///< DestinationDecision::kAmbiguous
  std::size_t too_common_values = 0;     ///< rule 6, summed over levels
};

/// Total order on record ids used for every tie-break: ids made only of ASCII digits come first,
/// ordered by numeric value (then bytewise, so "007" and "7" differ); other ids follow, bytewise.
/// Thread-safe.
bool id_less(std::string_view a, std::string_view b) noexcept;

/// Collects source and destination entities, then resolves groups and decisions.
///
/// Memory: values and ids are interned into an arena with a compact hash index; the algorithm works
/// on 32-bit indices. Roughly 60–70 bytes per source entity with two short values, plus the
/// strings themselves. At most 2^32 − 2 entities and distinct values.
///
/// Thread-safety: add_source()/add_destination() must not run concurrently with anything else on
/// the same object; resolve() is const and may run concurrently with other resolve() calls.
class Deduplicator {
 public:
  /// `keys`: the cascade, strongest first; 1 to 250 keys (otherwise every add_*() call fails).
  explicit Deduplicator(std::vector<DedupKey> keys, DedupOptions options = {});
  ~Deduplicator();
  Deduplicator(Deduplicator&&) noexcept;
  Deduplicator& operator=(Deduplicator&&) noexcept;
  Deduplicator(const Deduplicator&) = delete;
  Deduplicator& operator=(const Deduplicator&) = delete;

  /// The cascade given to the constructor (borrowed; valid for the object's lifetime).
  const std::vector<DedupKey>& keys() const noexcept;

  /// Adds a source entity. `values_per_level` has one entry per key (same order); each entry holds
  /// that entity's normalised values at the level (empty strings are ignored, duplicates are
  /// collapsed). Values are copied. Returns kInvalidArgument when the number of levels differs
  /// from keys().size(), the cascade is empty or longer than 250 keys, or the capacity is
  /// exhausted; ids are checked for uniqueness by resolve().
  Status add_source(std::string_view id, std::int64_t updated_at,
                    const std::vector<std::vector<std::string>>& values_per_level);

  /// A source entity for add_sources(): add_source()'s arguments (borrowed for the call).
  struct SourceEntity {
    std::string_view id;
    std::int64_t updated_at = 0;
    const std::vector<std::vector<std::string>>* values_per_level = nullptr;
  };
  /// Adds `entities` in order, exactly as add_source() would one by one (stopping at the first
  /// error, with the entities before it added). Faster for a batch: each entity's places in the
  /// value index start loading a few entities ahead, so the cache misses of a large index overlap.
  Status add_sources(const std::vector<SourceEntity>& entities);

  /// Speed hint: about `entities` entities (source and destination) will be added, most with one
  /// value per level. The value index is sized for them at once instead of growing (and copying
  /// itself) as they arrive; it changes nothing else.
  void reserve(std::size_t entities) noexcept;

  /// Speed hint: `values_per_level` (as for add_source()) will be added soon, so their places in
  /// the value index start loading now. Calling it a few entities ahead of add_source() overlaps
  /// the cache misses of a large index; it changes nothing else. (add_sources() does this itself
  /// for a batch.)
  void prefetch(const std::vector<std::vector<std::string>>& values_per_level) const noexcept;

  /// Adds a destination entity; same contract as add_source().
  Status add_destination(std::string_view id,
                         const std::vector<std::vector<std::string>>& values_per_level);

  /// Resolves every group and calls `sink` once per group, in increasing id_less() order of the
  /// groups' primary ids. The DedupGroup passed to `sink` is only valid during the call. A non-OK
  /// Status returned by `sink` stops the resolution and is returned unchanged. `stats` (optional,
  /// [out]) receives counts when the resolution completes.
  /// Returns kAlreadyExists when a source id or a destination id was added twice.
  Status resolve(const std::function<Status(const DedupGroup&)>& sink,
                 DedupStats* stats = nullptr) const;

  /// Convenience for small inputs: every group in a vector (same order as above).
  Result<std::vector<DedupGroup>> resolve() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cmg
