/*
 * Custom destinations in C: a versioned vtable the library adapts to its Destination interface.
 * Pass one in cmg_open_options.destination (with destination_user_data) to cmg_migration_open().
 *
 * Every method returns 0 on success or a non-zero value on failure, after recording a message
 * with cmg_error_set_str(); the call into the library then fails with CMG_EPLUGIN and that
 * message. Output buffers are filled with cmg_buf_set(). Records are JSON objects
 * {"id", "updated_at" (Unix ms, optional), "fields": {...}}. Methods are called from the thread
 * that called the library, one at a time.
 */
#ifndef CRMMIGRATE_SYS_DESTINATION_H
#define CRMMIGRATE_SYS_DESTINATION_H

#include "crmmigrate/crmmigrate.h"
#include "crmmigrate/sys/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CMG_DESTINATION_VTABLE_VERSION 1

typedef struct cmg_destination_vtable {
  unsigned int version; /**< CMG_DESTINATION_VTABLE_VERSION */
  /** [out] out_json: the schema, as for cmg_source_vtable.schema. Objects with an "id_property"
   *  get idempotent upserts keyed on it. */
  int (*schema)(cmg_buf *out_json, void *user_data);
  /** [out] out: number of records of `object`, or -1 when unknown. */
  int (*count)(int64_t *out, const char *object, void *user_data);
  /** Opens a stream listing every record of `object` (used to index it for dedup). [out] out: a
   *  zero-initialised stream to fill; the library releases it exactly once. */
  int (*list)(cmg_record_stream *out, const char *object, void *user_data);
  /**
   * Finds the records of `object` whose `field` equals one of `values_json` (a JSON array of
   * strings) exactly. [out] out_records_json: a JSON array of records (empty array or unset = none).
   */
  int (*find)(cmg_buf *out_records_json, const char *object, const char *field, const char *values_json,
              void *user_data);
  /**
   * Applies `ops_json` in order: a JSON array of {"kind": "upsert"|"update", "id" (update: the
   * destination id), "idempotency_key" (upsert: the value of the object's id_property; create,
   * or update the record holding it), "fields": {...}}.
   * [out] out_results_json: a JSON array with one result per op, in order: {"outcome":
   * "created"|"updated"|"failed", "id", "status" (HTTP-like, optional), "retryable" (bool),
   * "existing_id" (duplicate), "message", "errors": [{"field", "value", "code", "message"}]}.
   * A rejected record is a "failed" result, not a method failure.
   */
  int (*write)(cmg_buf *out_results_json, const char *object, const char *ops_json, void *user_data);
  /**
   * Reads records of `object` by destination id (`ids_json`, a JSON array of strings).
   * [out] out_records_json: a JSON array with one entry per id, in order: the record or null.
   */
  int (*read)(cmg_buf *out_records_json, const char *object, const char *ids_json, void *user_data);
  /** Frees user_data. Called exactly once (when the migration closes, or when open fails);
   *  may be NULL. */
  void (*destroy)(void *user_data);
} cmg_destination_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CRMMIGRATE_SYS_DESTINATION_H */
