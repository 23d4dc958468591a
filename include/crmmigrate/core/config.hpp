// MigrationConfig: the parsed form of migration.json (DESIGN §5). Parsing rejects unknown keys and
// bad values with an error naming the JSON path ("$.objects[2].fields.stage_id.to: ...") and a hint.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "crmmigrate/core/merge.hpp"
#include "crmmigrate/core/status.hpp"

namespace cmg {

/// A connector and its options, e.g. {"connector": "sandbox", "options": {"path": "..."}}.
/// Secrets are never inline: options name environment variables (`*_env` keys).
struct ConnectorConfig {
  std::string connector;          // "sandbox", "files", ...
  boost::json::object options;    // connector-specific; validated by the connector factory
  std::string json_path;          // "$.source" — for the connector's own error messages
};

/// One source field's mapping.
struct FieldMapping {
  std::string source;                             // source field name
  std::string to;                                 // destination field (when not routed)
  std::map<std::string, std::string> to_by_object;  // routed objects: destination object → field
  std::string pick;          // "primary": take the primary (or first) `value` of a [{value, primary}] list
  std::string translate;     // name of a translation table applied to this field
  bool owner = false;        // the value is a source user id/email/name resolved to a destination user
  std::string parent;        // the value is a source id of config object `parent` → its destination id
  bool parent_required = false;
  std::optional<boost::json::value> default_value;  // used when the source value is blank
};

/// A value translation table: source values (one or more fields, joined with "/") → destination
/// values (one or more fields). Stage tables key on pipeline + stage.
struct Translation {
  std::string name;
  std::vector<std::string> from;   // source fields
  std::vector<std::string> to;     // destination fields (routed objects: same name in each)
  std::map<std::string, std::vector<std::string>> table;  // "1/9" → {"partnerships", "partner_paused"}
  /// When no row matches: "queue" (unmapped_value), or "default" (use `fallback`).
  std::string otherwise = "queue";
  std::vector<std::string> fallback;
};

enum class DedupKeyKind { kExternalId, kEmail, kPhone, kText, kExact };

struct DedupKeyConfig {
  std::string name;    // level name shown in audit ("email")
  DedupKeyKind kind = DedupKeyKind::kEmail;
  std::string field;   // destination field holding the value (after mapping)
};

struct ObjectConfig {
  std::string name;                 // object name in reports ("contacts")
  std::string source;               // source object type ("persons")
  std::string destination;          // destination object type, unless routed
  std::string route_by;             // routed: source field choosing the destination object
  std::map<std::string, std::string> route;  // source value → destination object
  std::vector<FieldMapping> fields;
  std::vector<std::string> drop;    // source fields deliberately not migrated
  std::vector<Translation> translations;
  std::map<std::string, boost::json::value> defaults;  // destination field → value when blank/absent
  bool dedup_none = false;
  std::vector<DedupKeyConfig> dedup;
  MergeStrategy merge_default = MergeStrategy::kFillBlanks;
  std::map<std::string, MergeStrategy> merge_fields;
  bool skip_unchanged = false;      // a match whose merge changes nothing is counted as skipped
  std::optional<std::int64_t> expected_count;

  /// Destination objects this config object writes to.
  std::vector<std::string> destination_objects() const;
  /// The destination field for `m` when the record goes to `dest_object` ("" = not mapped there).
  std::string target_field(const FieldMapping& m, const std::string& dest_object) const;
  /// Config objects this one references as parents.
  std::vector<std::string> parents() const;
};

struct OwnersConfig {
  std::vector<std::string> match = {"email", "name"};   // in order
  std::map<std::string, std::string> overrides;          // source user id/email/name → destination user id
};

struct MigrationConfig {
  std::string name;
  std::string state_dir;            // resolved against the config file's directory
  std::string base_dir;             // the config file's directory
  ConnectorConfig source;
  ConnectorConfig destination;
  OwnersConfig owners;
  std::string phone_region = "US";
  std::size_t batch_size = 100;
  std::size_t halt_window = 200;
  double halt_max_error_rate = 0.05;
  std::string alert_command;
  std::int64_t delta_lookback_ms = 5 * 60 * 1000;  // the delta pass re-reads this far before its cursor
  std::vector<ObjectConfig> objects;  // in dependency order (parents before children)
  std::string raw_json;             // the text it was parsed from (stored as a config version)
  std::string hash;                 // json_hash of the parsed document


  const ObjectConfig* object(const std::string& name) const;
};

/// Parses and validates migration JSON text. `base_dir` resolves relative paths; `origin` names the
/// file in messages. Errors: kConfig with "<origin>: $.path: reason" (or line:column for syntax).
Result<MigrationConfig> parse_config(std::string_view json_text, const std::string& origin,
                                     const std::string& base_dir);
/// Reads and parses a config file. Errors: kNotFound/kIO for the file, kConfig for its content.
Result<MigrationConfig> load_config(const std::string& path);

/// Stable hash (hex) of a JSON value, used to detect config and schema changes.
std::string json_hash(const boost::json::value& v);

}  // namespace cmg
