// Pure parsers of HubSpot CRM v3/v4 response bodies (no I/O, no state), so a libFuzzer target can
// call them on arbitrary bytes. Each never throws and never crashes: malformed input gives a
// kParse Status naming `what` (method and path of the call) and the JSON path.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/schema.hpp"
#include "crmmigrate/core/status.hpp"

namespace cmg::hubspot {

/// One page of `GET /crm/v3/objects/{o}` or `POST .../search`: records (properties with a null
/// value are left out; updated_at from "updatedAt"), the `paging.next.after` cursor ("" at the end)
/// and `total` (search only; -1 when absent).
struct ObjectPage {
  std::vector<Record> records;
  std::string after;
  std::int64_t total = -1;
};
Result<ObjectPage> parse_object_page(std::string_view body, const std::string& object, const std::string& what);

/// One problem reported for some inputs of a batch call (or for the whole call).
struct BatchError {
  std::string category;              // "VALIDATION_ERROR", "OBJECT_NOT_FOUND", "CONFLICT", "RATE_LIMITS"...
  std::string message;
  std::vector<std::string> ids;      // context.ids / context.id: the input ids (or idProperty values) it concerns
  std::vector<FieldError> fields;    // per-property detail (code, field, message)
  std::string existing_id;           // a conflict's existing record ("Existing ID: 123" or context.existingId)
  int status = 0;                    // numeric status when given (409 for conflicts, 0 otherwise)
};

/// One record a batch call created, updated or read.
struct BatchResult {
  std::string id;
  bool created = false;              // "new": true
  boost::json::object properties;    // as returned (null values kept out)
  std::int64_t updated_at = 0;
};

struct BatchResponse {
  std::vector<BatchResult> results;
  std::vector<BatchError> errors;
};

/// Body of a batch create/update/upsert/read reply (200, 201, 207) — results and per-input errors.
Result<BatchResponse> parse_batch_response(std::string_view body, const std::string& what);

/// Body of an error reply (4xx/5xx, or a 207 `errors[]` element): category, message, field errors
/// (from `errors[]` and from the `[{"name","error","message"}]` list some messages embed) and a
/// conflict's existing id. Never fails: unreadable bodies give a BatchError with a short message.
BatchError parse_error_body(std::string_view body);

/// `GET /crm/v3/properties/{object}`: fields (type, options, unique, read-only/calculated). Owner
/// properties (referencedObjectType OWNER, or hubspot_owner_id) become kReference to "owners".
Result<std::vector<FieldSchema>> parse_properties(std::string_view body, const std::string& what);

/// `GET /crm/v3/owners`: users (id, email, "first last", active = !archived) and the next cursor.
Result<std::vector<User>> parse_owners(std::string_view body, std::string& after, const std::string& what);

struct PipelineInfo {
  std::string id;
  std::string label;
  std::vector<Option> stages;  // display order
};
/// `GET /crm/v3/pipelines/{object}`: pipelines and their stages, by displayOrder.
Result<std::vector<PipelineInfo>> parse_pipelines(std::string_view body, const std::string& what);

/// `POST /crm/v4/associations/{from}/{to}/batch/read`: from id → associated ids (numeric order).
Result<std::map<std::string, std::vector<std::string>>> parse_association_batch(std::string_view body,
                                                                                const std::string& what);

/// The ISO 8601 "updatedAt" style timestamp (or Unix ms digits) as Unix ms; 0 when unreadable.
std::int64_t parse_hubspot_time(std::string_view text);

}  // namespace cmg::hubspot
