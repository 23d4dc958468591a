/*
 * Custom sources in C: a versioned vtable the library adapts to its Source interface.
 * Pass one in cmg_open_options.source (with source_user_data) to cmg_migration_open().
 *
 * Every method returns 0 on success or a non-zero value on failure, after recording a message
 * with cmg_error_set_str(); the call into the library then fails with CMG_EPLUGIN and that
 * message. Methods are called from the thread that called the library, one at a time.
 */
#ifndef CRMMIGRATE_SYS_SOURCE_H
#define CRMMIGRATE_SYS_SOURCE_H

#include "crmmigrate/crmmigrate.h"
#include "crmmigrate/sys/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CMG_SOURCE_VTABLE_VERSION 1

typedef struct cmg_source_vtable {
  unsigned int version; /**< CMG_SOURCE_VTABLE_VERSION */
  /**
   * [out] out_json: filled with cmg_buf_set(): the schema {"objects": {name: {"fields":
   * [{"name", "type" ("string", "number", "email", "phone", "json", ...), "required", ...}],
   * "id_property"}}, "users": [{"id", "email", "name", "active"}]}.
   */
  int (*schema)(cmg_buf *out_json, void *user_data);
  /** [out] out: number of records of `object` the source holds now, or -1 when it cannot tell. */
  int (*count)(int64_t *out, const char *object, void *user_data);
  /**
   * Opens a stream over the records of `object`, ordered by id. [out] out: a zero-initialised
   * stream the method fills; the library releases it exactly once (also when it stops early).
   * For the delta pass the library itself keeps the records changed since its cursor and orders
   * them by (updated_at, id), so records should carry "updated_at".
   */
  int (*open_stream)(cmg_record_stream *out, const char *object, void *user_data);
  /** Frees user_data. Called exactly once (when the migration closes, or when open fails);
   *  may be NULL. */
  void (*destroy)(void *user_data);
} cmg_source_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CRMMIGRATE_SYS_SOURCE_H */
