/*
 * Custom validators in C: add problems (queue reasons) for a record about to be written.
 * Register with cmg_migration_add_validator().
 */
#ifndef CRMMIGRATE_SYS_VALIDATOR_H
#define CRMMIGRATE_SYS_VALIDATOR_H

#include "crmmigrate/crmmigrate.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CMG_VALIDATOR_VTABLE_VERSION 1

typedef struct cmg_validator_vtable {
  unsigned int version; /**< CMG_VALIDATOR_VTABLE_VERSION */
  /** Short name used in messages; NULL = "c_validator". */
  const char *name;
  /**
   * Checks `fields_json` (the destination fields about to be sent, a JSON object) for a record of
   * destination object `object`; `is_create` is 0 for an update (merge), where only the fields
   * present are checked. [out] out_problems_json: left empty (no problems) or filled with
   * cmg_buf_set() with a JSON array of {"reason" (a queue reason such as "invalid_value";
   * default "invalid_value"), "field", "value", "rule", "message", "suggestion"}.
   * Return non-zero (after cmg_error_set_str()) only when the validator cannot check: the record
   * is queued (rule "plugin_error"), nothing unchecked is written, the run stops at the next batch
   * boundary and returns CMG_EPLUGIN with the message. May be called from several threads.
   */
  int (*validate)(cmg_buf *out_problems_json, const char *object, const char *fields_json, int is_create,
                  void *user_data);
  /** Frees user_data; called exactly once; may be NULL. */
  void (*destroy)(void *user_data);
} cmg_validator_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CRMMIGRATE_SYS_VALIDATOR_H */
