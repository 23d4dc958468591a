/*
 * cmg_record_stream: a pull stream of record batches, modelled on the Arrow C stream interface
 * (ArrowArrayStream). Custom sources and destinations return one from their open_stream / list
 * methods; the library pulls batches from it and releases it exactly once.
 *
 * Records are JSON objects {"id": "...", "updated_at": <Unix ms, optional>, "fields": {...}}
 * ("object" may be given and is otherwise the object that was asked for). A batch is a JSON array
 * of records.
 */
#ifndef CRMMIGRATE_SYS_STREAM_H
#define CRMMIGRATE_SYS_STREAM_H

#include "crmmigrate/crmmigrate.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cmg_record_stream cmg_record_stream;

struct cmg_record_stream {
  /**
   * Produces the next batch. [out] out_batch_json: a NUL-terminated JSON array of records, owned
   * by the stream and valid until the next call on it or its release; NULL at the end of the
   * stream. Returns 0, or non-zero on failure (the library then calls last_error and, if that
   * gives NULL, uses the message recorded with cmg_error_set_str()). Called by one thread at a
   * time.
   */
  int (*next)(cmg_record_stream *stream, const char **out_batch_json);
  /** Describes the last failure of next(); borrowed until the next call; may return NULL. */
  const char *(*last_error)(cmg_record_stream *stream);
  /** Frees the stream's resources. Called exactly once by the library; it must then set
   *  release to NULL (a released stream has release == NULL, as in Arrow). */
  void (*release)(cmg_record_stream *stream);
  /** Opaque to the library; for the producer. */
  void *private_data;
};

#ifdef __cplusplus
}
#endif

#endif /* CRMMIGRATE_SYS_STREAM_H */
