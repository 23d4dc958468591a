// Per-record views for the console: the record timeline (audit log page, queue item detail) and
// the record search by source id, email or destination id. Both read the state in one snapshot.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "crmmigrate/core/config.hpp"
#include "crmmigrate/core/status.hpp"
#include "crmmigrate/store/lmdb_env.hpp"

namespace cmg::web {

/// A short human label for a record's fields ("Acme Ltd", "Ann Lee", a deal title…), "" when none.
std::string record_label(const boost::json::object& fields);

/// Everything the state holds about one record, as a timeline:
/// {"object", "source_id", "label", "outcome" (written|merged|queued|skipped|pending),
///  "destination_id", "source" (fields), "queue" (item or null), "timeline": [step…]}.
/// Steps derived from state snapshots (extracted, mapped, dedup, validated) carry "derived": true and
/// no time; the others are the record's audit events in order, with their "time" and "seq".
/// Errors: kNotFound when the state has no such record.
Result<boost::json::object> record_timeline(const store::Env& env, const MigrationConfig& cfg,
                                            const std::string& object, const std::string& source_id);

/// Records matching `q`: "object/source id", a bare source id (any object), a destination id, or an
/// email (normalised) through the dedup index of destination records (written, merged). Records not
/// written carry their email only in their mapped keys: `also` lists candidate state keys
/// (object␟source id, e.g. the queue items whose text holds the email), kept when their mapped email
/// key equals q's. At most `limit` matches:
/// [{"object", "source_id", "label", "outcome", "destination_id", "matched_by"}].
Result<boost::json::array> search_records(const store::Env& env, const MigrationConfig& cfg, const std::string& q,
                                          std::size_t limit, const std::vector<std::string>& also = {});

/// The record's outcome from its `records` entry status ("pending" for intermediate ones).
std::string outcome_of(const std::string& record_status);

}  // namespace cmg::web
