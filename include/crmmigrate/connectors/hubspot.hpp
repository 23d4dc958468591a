// HubSpot CRM connector over HTTP (CRM v3 objects, properties, pipelines and owners; associations
// v4). One instance is both a Source and a Destination.
//
// Config (`"connector": "hubspot"`):
//   "options": {
//     "base_url":  "https://api.hubapi.com" (default; the sandbox dialect is "http://127.0.0.1:PORT"),
//     "token_env": "HUBSPOT_TOKEN"  (required: the environment variable holding the private-app token),
//     "ca_file":   extra trusted CA (PEM), relative to the config's directory,
//     "objects":   {"contacts": {"id_property": "crm_source_id", "properties": [...], "associations":
//                   ["companies"], "updated_property": "lastmodifieddate", "required": [...]}, ...}
//                  (default: companies, contacts, deals, notes, calls, meetings, tasks, emails),
//     "limits":    {"burst_requests": 100, "burst_window_ms": 10000, "daily_requests": 250000,
//                   "reserve": 0.1},
//     "max_connections": 4, "timeout_ms": 60000 }
//
// Records: `fields` are the HubSpot properties (as the API returns them: strings), plus one
// reference field `associations.<object>` per association pair (the associated record's id; the
// smallest when there are several). updated_at is the record's `updatedAt`.
// Reads list with `after` paging (ascending ids); incremental reads search on the last-modified
// property with a (timestamp, id) cursor and never page past the search API's 10,000-result cap.
// Writes: batch upsert on the object's id_property (kUpsert) and batch update (kUpdate), 100 inputs
// per request, then v4 default associations for the `associations.*` fields (one batch request per
// target object, sent side by side on up to max_connections connections; retried here on transient
// failures, since associating twice is harmless). Associations are only added: an update that
// names another associated record leaves the earlier link in place (HubSpot records may carry
// several, some made by people in HubSpot; removing is not the migration's call).
// A batch upsert without a usable reply is resolved by reading its keys back on id_property:
// found = applied (its associations are made), not found = not applied; either way nothing is
// created twice, and WriteResult::outcome_unknown is never reported for upserts.
// Every request goes through the account's QuotaScheduler (limits from the config, lowered by the
// X-HubSpot-RateLimit-* headers, requests counted by HubSpot but not sent by us taken from
// X-HubSpot-RateLimit-Remaining; Retry-After honoured), shared by the connectors to the same
// account in the process.
//
// Secrets: the token is read from the environment once, sent only to base_url and never appears in
// errors, logs or WriteResults.
// Thread-safety: every call may be made from several threads (the HTTP client and the quota are
// thread-safe; the schema cache is locked). A RecordReader belongs to one thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/net/quota.hpp"

namespace cmg {
struct Clock;
}

namespace cmg::hubspot {

struct ObjectOptions {
  std::string id_property;                 // "" = the one unique property other than hs_object_id/email
  std::vector<std::string> properties;     // read these (empty = every property of the schema)
  std::vector<std::string> associations;   // target objects of `associations.<to>` fields
  bool associations_set = false;           // true when the config named them (else the defaults)
  std::string updated_property;            // "" = lastmodifieddate (contacts) / hs_lastmodifieddate
  std::vector<std::string> required;       // "" = HubSpot's own (dealname/pipeline/dealstage, hs_timestamp...)
};

struct Options {
  std::string base_url = "https://api.hubapi.com";
  std::string token;       // the secret itself (resolved from token_env by options_from_json)
  std::string token_env;   // its variable name (for messages)
  std::string ca_file;
  std::map<std::string, ObjectOptions> objects;  // empty = the defaults
  net::QuotaLimits limits;                       // default: 100 per 10 s, 250,000 a day, reserve 0
  unsigned max_connections = 4;
  std::chrono::milliseconds timeout{60000};
  int max_read_attempts = 4;                     // GETs/reads retried on 429/5xx/transport errors
  std::shared_ptr<Clock> clock;                  // quota clock (nullptr = the pipeline clock)
};

/// The HubSpot limits used when the config gives none: the lowest tier's 100 requests per 10 s and
/// 250,000 per day (the platform's headers lower them further when they say so).
net::QuotaLimits default_limits();

/// Parses `options` of a "hubspot" connector config; `path` names it in errors ("$.destination").
/// Reads the token from the environment variable named by token_env. Errors: kConfig naming the key
/// (unknown key, wrong type, token_env unset or empty — the message names the variable, never a value).
Result<Options> options_from_json(const boost::json::value& options, const std::string& path,
                                  const std::string& base_dir);

class Connector : public Source, public Destination {
 public:
  /// Builds the HTTP client (no request is sent). Errors: kConfig (base_url, ca_file).
  static Result<std::shared_ptr<Connector>> create(Options options);
  ~Connector() override;

  /// One cheap authenticated call (GET /crm/v3/owners?limit=1). Errors: kPermissionDenied on
  /// 401/403 (naming token_env), kUnavailable when HubSpot cannot be reached.
  Status check_access() override;

  // Source and Destination
  Result<Schema> schema() override;
  Result<std::int64_t> count(std::string_view object) override;
  Result<std::unique_ptr<RecordReader>> read(std::string_view object, const ReadOptions& opts) override;
  Result<std::optional<Record>> get(std::string_view object, std::string_view id) override;
  Result<std::unique_ptr<RecordReader>> list(std::string_view object, const ReadOptions& opts) override;
  Result<std::vector<Record>> find(std::string_view object, std::string_view field,
                                   const std::vector<std::string>& values) override;
  Result<std::vector<WriteResult>> write(std::string_view object, const std::vector<WriteOp>& ops) override;
  Result<std::vector<std::optional<Record>>> read(std::string_view object,
                                                  const std::vector<std::string>& ids) override;
  Quota quota() const override;
  std::int64_t last_retry_after_ms() const override;

  /// Requests sent, 429s received and time waited for the quota since this connector was made
  /// (tests, benchmarks). The quota itself is per account: connectors to the same base_url with the
  /// same token and limits in one process share one scheduler (and its burst log).
  net::QuotaStats quota_stats() const;
  /// Milliseconds the quota needs for `n` more requests from now.
  std::int64_t eta_ms(std::int64_t n) const;
  /// HTTP connections opened so far.
  std::size_t connections_opened() const;

  struct Impl;

 private:
  explicit Connector(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace cmg::hubspot
