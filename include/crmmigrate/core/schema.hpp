// Schema: what a CRM declares about its objects, fields and users. Destinations' schemas drive
// validation and plan; sources' schemas drive the coverage check (every field mapped or dropped).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>
#include <boost/json/value.hpp>

namespace cmg {

enum class FieldType {
  kString,     // single-line text
  kText,       // multi-line text
  kNumber,     // decimal
  kInteger,
  kBool,
  kDate,       // YYYY-MM-DD
  kDateTime,   // ISO 8601 with zone, or Unix ms
  kEnum,       // picklist: value must be one of `options` (or of `options_by` for the controlling value)
  kEmail,
  kPhone,
  kReference,  // destination ID of a record of object `references` (an association)
  kJson,       // anything (source-side structured values)
};

const char* field_type_name(FieldType t) noexcept;
std::optional<FieldType> field_type_from_name(std::string_view name) noexcept;

/// A picklist option: `value` is what the API takes (e.g. a HubSpot stage id), `label` what people see.
struct Option {
  std::string value;
  std::string label;
};

struct FieldSchema {
  std::string name;
  std::string label;
  FieldType type = FieldType::kString;
  bool required = false;
  bool unique = false;
  bool read_only = false;          // calculated or system-managed: writes are rejected
  std::size_t max_length = 0;      // 0 = unlimited (counted in Unicode code points)
  std::vector<Option> options;     // kEnum options when they do not depend on another field
  std::string options_by;          // controlling field (e.g. "pipeline" for "dealstage")
  std::map<std::string, std::vector<Option>> options_by_value;  // controlling value → options
  std::string references;          // kReference: the destination object type referenced

  /// The options allowed when the controlling field has `controlling_value` (or `options`).
  const std::vector<Option>* allowed_options(std::string_view controlling_value) const;
};

struct ObjectSchema {
  std::string name;
  std::vector<FieldSchema> fields;
  /// Unique property used for idempotent upsert (HubSpot idProperty, Salesforce external ID,
  /// a Pipedrive custom field); empty when the object has none.
  std::string id_property;

  const FieldSchema* field(std::string_view name) const;
};

struct User {
  std::string id;
  std::string email;
  std::string name;
  bool active = true;
};

struct Schema {
  std::map<std::string, ObjectSchema, std::less<>> objects;
  std::vector<User> users;

  const ObjectSchema* object(std::string_view name) const;
};

boost::json::value schema_to_json(const Schema& s);
/// Parses what schema_to_json wrote; errors name the JSON path.
bool schema_from_json(const boost::json::value& v, Schema& out, std::string& error);

}  // namespace cmg
