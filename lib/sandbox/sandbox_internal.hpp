// Private pieces of the sandbox CRM: presets, timestamp text, platform-shaped validation.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/schema.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"

namespace cmg::sandbox::internal {

/// How a preset names and formats the fields the sandbox maintains itself.
struct PresetTraits {
  std::string name;
  std::string id_field;        // "id" (Pipedrive, integer value) or "hs_object_id" (HubSpot, string)
  bool numeric_id_value = false;
  std::string created_field;   // "add_time" / "createdate"
  std::string updated_field;   // "update_time" / "lastmodifieddate"
  bool iso_times = false;      // HubSpot ISO 8601 with millis; Pipedrive "YYYY-MM-DD HH:MM:SS"
  std::uint64_t first_id = 1;
};

struct Preset {
  PresetTraits traits;
  Schema schema;
  std::vector<Pipeline> pipelines;
  Quota quota;
};

/// The built-in preset `name`, or nullopt.
std::optional<Preset> make_preset(std::string_view name);
std::optional<PresetTraits> preset_traits(std::string_view name);

boost::json::value pipelines_to_json(const std::vector<Pipeline>& p);
std::vector<Pipeline> pipelines_from_json(const boost::json::value& v);
boost::json::value quota_to_json(const Quota& q);
Quota quota_from_json(const boost::json::value& v);

// ---- timestamps (UTC; ISO 8601 parsing and formatting live in crmmigrate/core/time.hpp) ----

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept;
/// Unix ms of a UTC calendar time.
std::int64_t civil_to_ms(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) noexcept;
/// "2024-05-01 10:00:00" (Pipedrive's UTC format).
std::string format_pipedrive_time(std::int64_t ms);
/// "2024-05-01".
std::string format_date(std::int64_t ms);
/// Strict "YYYY-MM-DD" with a real calendar day.
bool is_valid_date(std::string_view s) noexcept;

// ---- validation ----

/// Answers "does record `id` of `object` exist" for association checks; may fail on storage errors.
using ExistsFn = std::function<Result<bool>(std::string_view object, std::string_view id)>;

/// Checks the properties an op sends (`changes`) against `obj`, as the platform would.
/// `merged` is the record after the change (existing fields overlaid with `changes`), used for
/// controlled picklists and required fields. `creating` adds the required-on-create check.
/// Returns every problem found (empty = valid); kStorage/kIO only from `exists`.
Result<std::vector<FieldError>> validate_changes(const Schema& schema, const ObjectSchema& obj,
                                                 const boost::json::object& changes,
                                                 const boost::json::object& merged, bool creating,
                                                 const ExistsFn& exists);

/// The text a unique index stores for `v` in field `f` ("" = blank, not indexed).
std::string unique_key_text(const FieldSchema& f, const boost::json::value& v);

/// True when `v` equals `text` for find(): scalars by text (emails case-insensitively), lists of
/// {"value": …} when any element's value matches.
bool value_matches(const FieldSchema& f, const boost::json::value& v, std::string_view text);

std::string ascii_lower(std::string_view s);

}  // namespace cmg::sandbox::internal
