// Record: one CRM object instance as it travels through the pipeline.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/json.hpp>

namespace cmg {

/// One record of a CRM object type. Field values are JSON (strings, numbers, booleans, null,
/// arrays for multi-select and Pipedrive-style `[{value, primary}]` email/phone lists).
/// Values are owned by the record; a Record is a plain value type and not thread-safe to mutate
/// concurrently.
struct Record {
  std::string object;          ///< object type in the system it came from ("persons", "contacts")
  std::string id;              ///< the record's id in that system
  boost::json::object fields;  ///< field name → value, in the order the system gave them
  std::int64_t updated_at = 0; ///< last modification, Unix milliseconds; 0 when unknown
};

using RecordBatch = std::vector<Record>;

/// Text form of a scalar JSON value as a CRM would show it: strings unquoted, numbers without
/// trailing zeros, true/false, empty for null. Arrays/objects are serialised as JSON.
std::string value_to_text(const boost::json::value& v);

/// True when the value carries no information (null, "", whitespace only, empty array/object).
bool value_is_blank(const boost::json::value& v);

/// Record <-> JSON: {"object":..,"id":..,"updated_at":..,"fields":{..}}.
boost::json::object record_to_json(const Record& r);
/// Throws nothing; returns false and leaves `out` unspecified when `v` is not a record object.
bool record_from_json(const boost::json::value& v, Record& out);

}  // namespace cmg
