// Mapper: turns one source record into destination fields (DESIGN §1 "map"): field mapping, value
// translation tables, default rules for required fields, type coercion, owner resolution and parent
// references rewritten to destination ids. Everything that cannot be mapped becomes a Problem.
//
// Thread-safety: a Mapper is immutable after construction; `map` may be called concurrently.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crmmigrate/core/config.hpp"
#include "crmmigrate/core/problem.hpp"
#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/schema.hpp"

namespace cmg {

/// Resolves source owners (user id, email or name) to destination user ids. Owners are never
/// created: an owner without a destination account is reported unresolved.
class OwnerResolver {
 public:
  OwnerResolver(const std::vector<User>& source_users, const std::vector<User>& destination_users,
                const OwnersConfig& config);
  struct Resolution {
    std::optional<std::string> user_id;  // destination user id when resolved
    std::string source_label;            // "Morgan Blake <morgan@…>" for messages
    std::string matched_by;              // "override", "email", "name", "id"
  };
  /// Resolves a source owner value (a source user id, an email or a name).
  Resolution resolve(const std::string& value) const;
  /// resolve(value).user_id into `user_id` (true) without copying the rest of the resolution;
  /// false when unresolved (resolve() then says why). For the per-record path.
  bool resolve_user_id(std::string_view value, std::string& user_id) const;
  /// Every source user with its resolution (for plan).
  std::vector<std::pair<User, Resolution>> all() const;

 private:
  std::vector<User> source_users_;
  std::vector<User> destination_users_;
  OwnersConfig config_;
  std::map<std::string, std::size_t> dest_by_email_, dest_by_name_, dest_by_id_;
  // Every source user's id, email and name resolved once: records name few distinct owners.
  std::unordered_map<std::string, Resolution> known_;
  // Other values (a file source has no user list: every record names its owner by email or
  // name) are resolved once each, up to a bound, under a lock; shared by copies.
  struct Cache;
  std::shared_ptr<Cache> cache_;
  Resolution resolve_uncached(const std::string& value) const;
};

/// Where a parent record stands, as the pipeline state knows it.
struct ParentState {
  enum class Kind {
    kConfirmed,  // written or merged: `destination_id` is valid
    kQueued,     // in the conflict queue (or itself waiting for its parent)
    kAbsent,     // not in the source at all → orphan_reference
    kPending,    // extracted but not processed yet
  };
  Kind kind = Kind::kAbsent;
  std::string destination_id;
};
/// (config object name, source id) → state. Supplied by the pipeline (ID map lookups).
using ParentLookup = std::function<ParentState(const std::string& object, const std::string& source_id)>;

struct MappedRecord {
  std::string destination_object;
  boost::json::object fields;
  std::vector<Problem> problems;
  std::vector<std::string> translations;  // "stage: 1/3 → default/presentationscheduled"
  std::vector<std::string> defaults;      // "lifecyclestage = \"lead\""
  std::vector<std::string> dropped;       // source fields deliberately dropped
  std::vector<std::pair<std::string, std::string>> queued_parents;  // (object, source id)
  bool waits_for_parent = false;          // a parent is extracted but not processed yet
};

class Mapper {
 public:
  /// `object` must outlive the Mapper. `destination` is the destination schema; `source_object`
  /// the source object's schema (for option labels in suggestions; may be null).
  Mapper(const ObjectConfig& object, const Schema& destination, const ObjectSchema* source_object,
         const OwnerResolver& owners);

  /// Maps `source`. `corrections` (destination field → value, from queue fixes) override the mapped
  /// values. Never fails: problems are reported in the result.
  MappedRecord map(const Record& source, const boost::json::object& corrections, const ParentLookup& parents) const;
  /// The same, with the mapped fields (MappedRecord::fields) allocated from `storage`, which
  /// must outlive them (a caller mapping many records can hand in a per-record arena).
  MappedRecord map(const Record& source, const boost::json::object& corrections, const ParentLookup& parents,
                   boost::json::storage_ptr storage) const;

  /// The destination object a source record goes to ("" when the routing value is unknown).
  std::string route(const Record& source) const;

 private:
  struct Targets;  // per destination object: what map() would otherwise look up per record
  const Targets* targets_for(const std::string& destination_object) const;

  const ObjectConfig& object_;
  const Schema& destination_;
  const ObjectSchema* source_object_;
  const OwnerResolver& owners_;
  std::shared_ptr<const std::map<std::string, Targets, std::less<>>> targets_;
};

/// The key of `record` in translation table `t`: its `from` values as text joined with "/";
/// nullopt when they are all blank (nothing to translate).
std::optional<std::string> translation_key(const Translation& t, const Record& record);

class PhoneNormalizer;
class Normalizer;

/// The normalised dedup key values of one record, per level of `object`'s cascade (strongest
/// first), into `out` (resized to the cascade's length; each level without repeats or empty
/// values). `fields` are the record's destination fields; the external-id level takes
/// `external_id` (the source id for source records, the id property's value for destination
/// records). `custom`: null, or one entry per level: that key's plugin normalizer, or null for the
/// built-in one of its kind. Source and destination records go through this one function, so
/// both sides of a match are normalised alike.
void dedup_key_values(const ObjectConfig& object, const PhoneNormalizer& phones, const Normalizer* const* custom,
                      const boost::json::object& fields, std::string_view external_id,
                      std::vector<std::vector<std::string>>& out);

/// Converts `v` to the JSON a destination field of type `t` takes. Returns nullopt when it cannot
/// (e.g. "abc" for a number); blank values become null.
std::optional<boost::json::value> coerce_value(const boost::json::value& v, FieldType t);
/// The same, with the result allocated from `storage`.
std::optional<boost::json::value> coerce_value(const boost::json::value& v, FieldType t, boost::json::storage_ptr storage);

/// The candidate closest to `value` (case-insensitive edit distance), or "" when none is close
/// enough to be a useful suggestion.
std::string closest_match(const std::string& value, const std::vector<std::string>& candidates);

}  // namespace cmg
