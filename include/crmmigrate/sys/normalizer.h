/*
 * Custom dedup-key normalisers in C: turn a field value into the form compared for equality.
 * Register with cmg_migration_set_normalizer().
 */
#ifndef CRMMIGRATE_SYS_NORMALIZER_H
#define CRMMIGRATE_SYS_NORMALIZER_H

#include "crmmigrate/crmmigrate.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CMG_NORMALIZER_VTABLE_VERSION 1

typedef struct cmg_normalizer_vtable {
  unsigned int version; /**< CMG_NORMALIZER_VTABLE_VERSION */
  /** Short name used in messages; NULL = "c_normalizer". */
  const char *name;
  /**
   * Normalises `value` (`len` bytes of UTF-8, also NUL-terminated). [out] out_key: filled with
   * cmg_buf_set() with the key, or left empty when the value cannot serve as a key. Must be pure
   * (same input, same output) and thread-safe. Return non-zero (after cmg_error_set_str()) on
   * failure: the value is then not used as a key, the run stops at the next batch boundary and
   * returns CMG_EPLUGIN with the message.
   */
  int (*normalize)(cmg_buf *out_key, const char *value, size_t len, void *user_data);
  /** Frees user_data; called exactly once; may be NULL. */
  void (*destroy)(void *user_data);
} cmg_normalizer_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CRMMIGRATE_SYS_NORMALIZER_H */
