/*
 * Custom merge rules in C: decide how a source record merges into the destination record dedup
 * matched it to. Register with cmg_migration_set_merge_rule().
 */
#ifndef CRMMIGRATE_SYS_MERGE_RULE_H
#define CRMMIGRATE_SYS_MERGE_RULE_H

#include "crmmigrate/crmmigrate.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CMG_MERGE_RULE_VTABLE_VERSION 1

typedef struct cmg_merge_rule_vtable {
  unsigned int version; /**< CMG_MERGE_RULE_VTABLE_VERSION */
  /** Short name recorded in the audit log with each decision; NULL = "c_merge_rule". */
  const char *name;
  /**
   * Decides the merge. `source_json` (already mapped: destination field names) and
   * `destination_json` are records {"object", "id", "updated_at", "fields"}, borrowed for the call.
   * [out] out_outcome_json: filled with cmg_buf_set(): {"kind": "merged"|"skip"|"conflict",
   * "changes": {field: new value} (fields to change on the destination), "reason" (required for
   * skip and conflict), "conflicts": [{"field", "source", "destination"}], "rules_applied":
   * ["field:rule", ...]}. Skip and conflict are decisions: return 0 with them.
   * Return non-zero (after cmg_error_set_str()) only when the rule cannot decide: the run then
   * fails with CMG_EPLUGIN and the message. May be called from several threads at once.
   */
  int (*merge)(cmg_buf *out_outcome_json, const char *source_json, const char *destination_json,
               void *user_data);
  /** Frees user_data; called exactly once; may be NULL. */
  void (*destroy)(void *user_data);
} cmg_merge_rule_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CRMMIGRATE_SYS_MERGE_RULE_H */
