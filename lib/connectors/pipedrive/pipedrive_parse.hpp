// Pure functions of the Pipedrive connector: JSON response parsing, record <-> request body
// conversion and HTTP-answer -> WriteResult mapping. No I/O, no globals, no allocation beyond the
// results, so each is a libFuzzer target on its own (inputs: response bodies, statuses, headers).
//
// Every parser takes the bytes a server sent and `what` (method + path, never a query string that
// could carry user data) for its error messages. Malformed input is a kUnavailable Status ("bad
// reply": the platform or a proxy answered something else than the API) — the caller treats it as
// a transient failure, never as data. Nothing here throws.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/schema.hpp"
#include "crmmigrate/core/status.hpp"
#include "crmmigrate/net/http.hpp"

namespace cmg::pipedrive::parse {

/// One page of a list endpoint. v2: `additional_data.next_cursor` (null/absent at the end); v1:
/// `additional_data.pagination.{more_items_in_collection,next_start}`. `data: null` is an empty page.
struct ListPage {
  std::vector<boost::json::object> items;
  bool more = false;
  std::string next_cursor;     // v2
  std::int64_t next_start = 0; // v1
};

/// Parses `{"success":true,"data":[…],"additional_data":{…}}`. Errors: kUnavailable naming `what`
/// (not JSON, not an object, `data` neither array nor null, an item not an object).
Result<ListPage> parse_list_page(std::string_view body, std::string_view what);

/// Parses `{"success":true,"data":{…}}`; nullopt for `data: null`. Errors: kUnavailable.
Result<std::optional<boost::json::object>> parse_item(std::string_view body, std::string_view what);

/// Ids from a v2 search reply `{"data":{"items":[{"item":{"id":N,"custom_fields":[…]}}]}}`, with the
/// next cursor ("" at the end). Errors: kUnavailable.
struct SearchPage {
  std::vector<std::string> ids;
  std::string next_cursor;
};
Result<SearchPage> parse_search_page(std::string_view body, std::string_view what);

/// A field as the *Fields endpoints describe it (v2: field_code/field_name/field_type/
/// is_custom_field/options/required_fields.enabled; v1: key/name/field_type/edit_flag/options).
struct FieldDef {
  std::string code;   // API key: built-in name or 40-hex hash of a custom field
  std::string label;  // display name
  std::string type;   // Pipedrive field_type ("varchar", "enum", "user", …)
  bool custom = false;
  bool required = false;
  std::vector<Option> options;  // enum/set options: value = option id as text
};
/// From one item of a *Fields list (either version). Errors: kUnavailable when the code is missing.
Result<FieldDef> field_def_from_item(const boost::json::object& item, std::string_view what);

/// Users from `GET /v1/users` items: id, email, name, active (`active_flag`, default true).
Result<std::vector<User>> users_from_items(const std::vector<boost::json::object>& items, std::string_view what);

struct StageDef {
  std::string id;
  std::string label;
  std::string pipeline_id;
  std::int64_t order = 0;
};
/// Pipelines (id, name) and stages (id, name, pipeline_id, order_nr) from their list items.
Result<std::vector<Option>> pipelines_from_items(const std::vector<boost::json::object>& items, std::string_view what);
Result<std::vector<StageDef>> stages_from_items(const std::vector<boost::json::object>& items, std::string_view what);

/// Text of an id-like JSON value: integer or digit string -> "123"; anything else -> "".
std::string id_text(const boost::json::value& v);

/// Unix ms of a Pipedrive timestamp ("2024-01-02T03:04:05Z", "2024-01-02 03:04:05"); 0 when
/// absent or unparsable.
std::int64_t time_ms(const boost::json::value* v);

/// RFC 3339 UTC at second precision, rounded down ("2024-01-02T03:04:05Z"), for `updated_since`.
std::string rfc3339_seconds(std::int64_t ms);

/// How an object's custom fields are named in records: custom hash -> record field name (the
/// label, or the hash when the label is empty or taken by a built-in field), and back.
struct CustomFields {
  std::map<std::string, std::string> name_by_hash;
  std::map<std::string, std::string, std::less<>> hash_by_name;
};

/// The record for one API item: id, updated_at from `update_time`, the `builtin` fields present
/// (absent ones are left out, `address`-like objects become their `value` text), then the custom
/// fields renamed by `custom` (v2 nests them in `custom_fields`, v1 has them at the top level by
/// hash). Errors: kUnavailable when the item has no integer id.
Result<Record> item_to_record(std::string_view object, const boost::json::object& item,
                              const std::vector<std::string>& builtin, const CustomFields& custom,
                              std::string_view what);

/// The request body for a create/update. `fields` are record field names (built-in or custom
/// labels): numeric strings of reference fields (`*_id` except custom ones) become integers;
/// `emails`/`phones` given as a string become `[{"value":…,"primary":true}]`; `address` given as
/// text becomes `{"value":…}` (v2 only); custom fields go to `custom_fields` (v2) or to the top
/// level by hash (v1). `extra_custom` (hash -> value) is added as a custom field (the source ID).
/// Errors: kInvalidArgument naming the field when it is neither built-in nor a known custom field,
/// or a read-only one (id, add_time, update_time).
Result<boost::json::object> fields_to_body(std::string_view object, const boost::json::object& fields,
                                           const std::vector<std::string>& builtin, const CustomFields& custom,
                                           bool v2, const std::map<std::string, std::string>& extra_custom);

/// Error text of a Pipedrive error body (`error` + `error_info`, or `message`), "" when none.
std::string error_message(std::string_view body);

/// Maps one HTTP answer to a write into a WriteResult (see core/connector.hpp):
/// 2xx with a parsable `data.id` -> kCreated (`create`) / kUpdated; 2xx without one -> kFailed,
/// retryable, outcome_unknown (the write may have been applied); 429 and 503 -> retryable with
/// retry_after_ms (Retry-After seconds, else x-ratelimit-reset seconds), nothing applied; 500 ->
/// retryable; 502/504 -> retryable and outcome_unknown (a gateway may have passed the request on);
/// 409 -> DUPLICATE_VALUE with existing_id when the body names one; 404 -> NOT_FOUND; other 4xx ->
/// kFailed, not retryable, one FieldError (field named when the message names a known field,
/// code INVALID_VALUE, or REQUIRED / INVALID_OPTION when the message says so).
WriteResult write_result(int status, const net::Headers& headers, std::string_view body, bool create,
                         const std::vector<std::string>& known_fields);

/// Retry-After in ms from `Retry-After`, else `x-ratelimit-reset` (seconds); 0 when neither.
int retry_after_ms(const net::Headers& headers);

}  // namespace cmg::pipedrive::parse
