// The Pipedrive connector: a Source and a Destination over Pipedrive's REST API (API v2 for
// persons, organizations, deals, activities, pipelines, stages and their fields; API v1 for notes,
// note fields and users), as described by the vendor OpenAPI files in ../shared/specs/pipedrive.
//
// Objects: "persons", "organizations", "deals", "notes", "activities". Their records carry the
// API's own field names (v2: `emails`, `phones`, `owner_id`, `label_ids`…; notes: `user_id`), a
// curated set of built-in fields per object (see the schema) plus every custom field, named by its
// label (the 40-hex hash key when the label is empty or clashes with a built-in name). Users come
// from `GET /v1/users` (Schema::users); `stage_id` is a picklist controlled by `pipeline_id`
// (options per pipeline from `/api/v2/pipelines` and `/api/v2/stages`), like the sandbox preset.
//
// Reading: pages of up to 500 (`limit`, v2 `cursor`, v1 `start`); ordered by id, or — with
// ReadOptions::since_updated_at — by (update_time, id) from `updated_since` (second precision, so
// the first second is re-read and filtered to (since_updated_at, since_id) inclusive). count()
// of deals asks GET /v1/deals/summary (total_count); for the other objects it returns -1: the
// Pipedrive APIs have no count for those lists (no summary endpoint, no total in their paging).
//
// Writing: one record per request (Pipedrive has no batch endpoint), paced by a net::QuotaScheduler
// built from `limits`. Upserts are idempotent through a custom field holding the source ID
// (`source_id_field`, a label or hash of a text custom field on persons, organizations and deals):
// the connector searches it (`/api/v2/<object>/search?fields=custom_fields&exact_match=true`) and
// updates the record found, or creates one with the field set. Notes and activities have no custom
// fields in Pipedrive, so their schema has no id_property and a write whose reply was lost is left
// to the pipeline to queue (never re-created blindly). HTTP answers map to WriteResult as
// core/connector.hpp says; 401/403 fail the call with kPermissionDenied.
//
// Secrets: the API token is read from the environment variable named by `token_env` and sent only
// as the `x-api-token` header to `base_url`; it never appears in errors, logs or the audit.
//
// Thread-safety: every member function may be called from several threads (the HTTP client and the
// quota scheduler are thread-safe; the schema cache is guarded). A RecordReader belongs to one thread.
#pragma once

#include <memory>
#include <string>

#include <boost/json/value.hpp>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/status.hpp"
#include "crmmigrate/net/http_client.hpp"
#include "crmmigrate/net/quota.hpp"

namespace cmg::pipedrive {

struct Options {
  std::string base_url = "https://api.pipedrive.com";  // origin; API paths /v1 and /api/v2 are added
  std::string token;             // the API token (from token_env); never logged
  std::string token_env;         // the variable's name, for messages
  std::string ca_file;           // extra trusted CA (PEM) for a TLS base_url
  std::string source_id_field = "crm_source_id";  // custom field (label or hash) holding the source ID
  net::QuotaLimits limits{80, 2000, 0, 0.0};      // Pipedrive's burst window is 2 s
  std::size_t page_size = 500;   // list page size (Pipedrive's maximum is 500)
  int get_attempts = 4;          // a GET that failed transiently is sent again up to this many times
};

/// Reads the connector options of a config:
/// `{"base_url","token_env","ca_file","source_id_field","page_size","limits":{…}}`. `token_env` is
/// required and must name a set, non-empty variable; an inline `token` is refused. `ca_file` is
/// relative to `base_dir`. Errors: kConfig naming `json_path` + key (never the token's value).
Result<Options> options_from_json(const boost::json::value& v, const std::string& json_path,
                                  const std::string& base_dir);

class Connector : public Source, public Destination {
 public:
  ~Connector() override = default;
  // One implementation serves both interfaces; these make the calls unambiguous on a Connector.
  Result<Schema> schema() override = 0;
  Result<std::int64_t> count(std::string_view object) override = 0;
  Status check_access() override = 0;
  using Source::read;
  using Destination::read;
  /// Requests sent so far, and what the quota scheduler saw (for benchmarks and tests).
  virtual std::uint64_t requests_sent() const = 0;
  virtual net::QuotaStats quota_stats() const = 0;
};

/// Creates a connector. `client` replaces the HTTP client built from the options (tests pass a
/// fake); the connector shares ownership. Errors: kConfig for a bad base_url/ca_file.
Result<std::shared_ptr<Connector>> make_connector(Options options, std::shared_ptr<net::HttpClient> client = nullptr);

}  // namespace cmg::pipedrive
