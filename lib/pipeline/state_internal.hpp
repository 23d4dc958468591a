// Typed access to the migration's LMDB state (DESIGN §2). Values are compact JSON objects.
//
// Databases and keys (object = config object name):
//   meta             name → JSON
//   src              object␟source id → source record JSON (as extracted):
//                    {"object", "id", "updated_at", "fields", "x"}; "x" = when it was extracted
//                    (Unix ms; absent in values written by delta passes and older versions)
//   records          object␟source id → {"s": status, "d": destination id, "o": destination object, "h": hash}
//                    A group of one created exactly as mapped (most records) has no stored plan until it
//                    is written: its status {"s":"planned","p",  "as_mapped": when deduplicated and
//                    validated (Unix ms), "id_property"} says the plan is derived from its `mapped`
//                    value (load_plan), which saves storing a second copy of its fields.
//                    (a record a dry run's extract mapped at once has no `src` copy in the scratch
//                    state and no `records` value until it is planned: its `mapped` value waits for
//                    dedup; {"s":"mapped"} when the dry run stopped before planning it)
//   mapped           object␟source id → {"o", "fields", "translations", "defaults", "dropped", "k", "u", "cv",
//                    "x", "m"} (append_mapped_value writes this member order; a derived plan reads the
//                    first five and the last two back without a full parse). "x": when the record was extracted,
//                    "m": when it was mapped (Unix ms; both absent in values of older versions)
//   plans            object␟source id → plan of a group primary (read through load_plan): {"action", "members", "fields", "key", "rule",
//                    "stages", ...}; "stages": {"extracted", "mapped", "deduplicated", "validated"} as
//                    format_timestamp_ms text: when each step handled the group
//   idmap            object␟source id → destination id;  idmap_rev: destination object␟destination id → object␟source id
//   dedup            object␟level␟normalised value␟destination id → ""
//   dest_keys        object␟destination id → [[values of level 0], [level 1], ...]
//   intents          object␟source id → {"batch", "key", "kind", "dest_object", "dest_id"}
//   queue            object␟source id → queue item
//   audit            be64 sequence → event;  audit_by_record: object␟source id␟be64 seq → ""
//   key_order        (store) the databases above whose keys compare in natural order: src, records,
//                    mapped, plans, idmap and intents in states created since that order was
//                    introduced; byte order in older states and in every other database
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/core/mapping.hpp"
#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/status.hpp"
#include "crmmigrate/store/lmdb_env.hpp"

namespace cmg::state {

namespace json = boost::json;

inline constexpr std::string_view kMeta = "meta", kSrc = "src", kRecords = "records", kMapped = "mapped",
                                  kPlans = "plans", kIdmap = "idmap", kIdmapRev = "idmap_rev", kDedup = "dedup",
                                  kDestKeys = "dest_keys", kIntents = "intents", kQueue = "queue", kAudit = "audit",
                                  kAuditByRecord = "audit_by_record", kCursors = "cursors", kPreimages = "preimages";

/// Options for opening a migration's state (or its dry-run scratch state): the databases keyed by
/// object␟source id order their ids naturally ("9" before "10") in a state created with them, so
/// that records extracted in id order fill pages in order (store::EnvOptions::natural_order).
store::EnvOptions env_options();

/// Reads a JSON object stored under `key`; nullopt when absent. Corrupt values are kStorage errors.
Result<std::optional<json::object>> get_json(store::Txn& t, std::string_view db, std::string_view key);
Status put_json(store::Txn& t, std::string_view db, std::string_view key, const json::value& v);
/// Parses a stored value (used inside scans).
std::optional<json::object> parse_object(std::string_view text);

/// Appends an audit event (sequence from meta "audit_seq") and its by-record index entry.
Status append_audit(store::Txn& t, json::object event);

/// Current time in Unix milliseconds.
std::int64_t now_ms();

/// String field of a JSON object, "" when absent or not a string.
std::string str(const json::object& o, std::string_view key);

/// The `records` value of an extracted record, as put_json writes it (the same bytes, without
/// building and serialising an object per record).
inline constexpr std::string_view kExtractedValue = R"({"s":"extracted"})";

/// `{"s":"planned","p":primary}` as put_json writes it.
std::string planned_value(std::string_view primary);

/// Appends the `mapped` value of `m`: its dedup key values per level, the source record's
/// updated_at, the config version, and when the record was extracted and mapped (Unix ms).
void append_mapped_value(std::string& out, const MappedRecord& m, const std::vector<std::vector<std::string>>& keys,
                         std::int64_t updated_at, std::int64_t config_version, std::int64_t extracted_ms,
                         std::int64_t mapped_ms);

/// `{"s":"planned","p":primary,"as_mapped":decided_ms,"id_property":name}` ("id_property" absent when
/// the destination object has none): a group of one whose plan is a create of its mapped fields
/// as they are, derived on demand (load_plan) instead of being stored.
std::string planned_as_mapped_value(std::string_view primary, std::int64_t decided_ms, std::string_view id_property);
/// planned_as_mapped_value appended to `out`.
void append_planned_as_mapped_value(std::string& out, std::string_view primary, std::int64_t decided_ms,
                                    std::string_view id_property);

/// The text of the create plan of `primary` planned as mapped, from its `mapped` value: the bytes
/// plan_object's general path would have stored. False when `mapped` is not in map_record's layout.
bool derive_plan(std::string_view mapped, std::string_view primary, std::string_view id_property,
                 std::int64_t decided_ms, std::string& out);

/// The destination object of a `mapped` value (its "o"); false when `mapped` is not in
/// map_record's layout.
bool mapped_destination(std::string_view mapped, std::string_view* dobj);

/// The plan of group primary `object`/`primary`: derived when its status says it is planned as
/// mapped, otherwise the one stored in `plans`; nullopt when it has none. Errors: kStorage.
Result<std::optional<json::object>> load_plan(store::Txn& t, std::string_view object, std::string_view primary);

/// Stores the plan of `primary` when it is derived (planned as mapped), before its status is
/// overwritten (enqueue): a queued record keeps the plan it had. Errors: kStorage.
Status keep_derived_plan(store::Txn& t, std::string_view object, std::string_view primary);

/// The `src` value of `r` extracted at `extracted_ms` (Unix ms): the bytes of
/// put_json(record_to_json(r)) plus a last member "x": extracted_ms, without copying the fields
/// into a new object first.
std::string source_value(const Record& r, std::int64_t extracted_ms);
/// The "x" of a `src` value (source_value writes it last); 0 when it has none (values written by
/// delta passes and older versions).
std::int64_t source_extracted_at(std::string_view src);

/// now_ms(), never less than any value it returned before in this process (the pipeline's step
/// times must not go backwards when the system clock is stepped back).
std::int64_t stamp_ms();

/// Appends format_timestamp_ms(ms), formatted through a small per-thread cache: a chunk of
/// records shares a few step times, each formatted once.
void append_stamp(std::string& out, std::int64_t ms);

/// {"extracted": T, "mapped": T, ...} for the first `steps` (1..4) of extracted, mapped,
/// deduplicated, validated: when each step of the pipeline handled a record (the value of a
/// plan's and of a queued audit event's "stages"). A time <= 0 (unknown: a value written by an
/// older version) takes the next step's time.
json::object stages_json(int steps, std::int64_t extracted, std::int64_t mapped, std::int64_t deduplicated = 0,
                         std::int64_t validated = 0);
/// The same object as JSON text (what json::serialize(stages_json(...)) gives).
void append_stages(std::string& out, int steps, std::int64_t extracted, std::int64_t mapped,
                   std::int64_t deduplicated = 0, std::int64_t validated = 0);

/// Appends `s` as a JSON string literal (quoted, escaped as json::serialize does).
void append_json_string(std::string& out, std::string_view s);
/// Appends json::serialize(v): the same bytes, written straight into `out`.
void append_json_value(std::string& out, const json::value& v);
void append_json_value(std::string& out, const json::object& o);
/// Appends the decimal text of `n` (what std::to_string gives).
void append_integer(std::string& out, std::int64_t n);

/// A record's status in the `records` db ("extracted", "planned", "written", ...).
inline std::string status_of(const json::object& rec) { return str(rec, "s"); }

json::array to_array(const std::vector<std::string>& v);
/// The strings of a JSON array (other elements ignored); empty when `v` is null or not an array.
std::vector<std::string> from_array(const json::value* v);

/// The destination's idempotency key for a group written under `source_id`: the source id itself,
/// so a later re-migration (or the external_id dedup key) recognises the record.
inline std::string idempotency_key(const std::string& source_id) { return source_id; }

/// Values equal as a destination stores them: text, numbers numerically, timestamps by instant
/// (a platform may echo "2024-05-01T10:00:00Z" as "2024-05-01T10:00:00.000Z"), emails
/// case-insensitively. `got` null = the destination has no value. Used by every read-back
/// (Migration's reconcile and the Reconciler stage). Defined in report.cpp.
bool same_stored_value(const boost::json::value& sent, const boost::json::value* got);

}  // namespace cmg::state
