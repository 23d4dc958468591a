/*
 * crmmigrate.h: the stable C ABI of crmmigrate (library crmmigrate_c, CMake target crmmigrate::c).
 *
 * Conventions (see the project's STYLE.md):
 *  - Every function returns an int: CMG_OK (0) on success, a negative CMG_E* code on failure, and
 *    a user callback's non-zero return unchanged when that callback stopped the call. After a
 *    failure cmg_error_last() describes it. Each call into the library resets the calling thread's
 *    last error first.
 *  - Output parameters come first. JSON in and out is UTF-8 text. Outputs are either borrowed (the
 *    lifetime is stated) or a cmg_buf the caller releases with cmg_buf_dispose(). Callers never
 *    free() memory returned by the library.
 *  - Options structs start with `unsigned int version`; initialise them with CMG_*_INIT or
 *    cmg_*_init(). Passing NULL means defaults. Unknown versions are rejected with CMG_EINVALID.
 *  - A halt, a pause, a cancelled run or an open queue is a state in the report JSON, not an error:
 *    error codes are for calls that could not do their job.
 *  - No C++ exception ever crosses this boundary.
 *
 * Thread-safety: the library is thread-safe across handles. One cmg_migration (and the cursors
 * opened on it) must be used by one thread at a time. The last-error slot is per thread.
 *
 * Plugin vtables (custom source, destination, merge rule, validator, normalizer) live in the
 * headers of <crmmigrate/sys/>.
 */
#ifndef CRMMIGRATE_CRMMIGRATE_H
#define CRMMIGRATE_CRMMIGRATE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(CMG_C_BUILDING)
#    define CMG_API __declspec(dllexport)
#  else
#    define CMG_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define CMG_API __attribute__((visibility("default")))
#else
#  define CMG_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ----------------------------------------------------------------------------- */

#define CMG_VERSION_MAJOR 0
#define CMG_VERSION_MINOR 1
#define CMG_VERSION_PATCH 0

/**
 * Reports the version of the library actually loaded (which may differ from the CMG_VERSION_*
 * macros the caller was compiled with; the ABI is stable within one major version).
 * [out] major, minor, patch: each may be NULL. Always returns CMG_OK. Thread-safe.
 */
CMG_API int cmg_version(int *major, int *minor, int *patch);

/* ---- Errors ------------------------------------------------------------------------------ */

/** Result codes. New codes may be appended; treat any other negative value as a failure. */
typedef enum cmg_error_code {
  CMG_OK = 0,
  CMG_EINVALID = -1,      /**< bad argument: NULL handle or output, bad JSON argument, bad version */
  CMG_ECONFIG = -2,       /**< migration config invalid (the message names the JSON path) */
  CMG_EPARSE = -3,        /**< malformed input file (the message names the file and line) */
  CMG_ENOTFOUND = -4,     /**< a named object, record, queue item or file does not exist */
  CMG_EEXISTS = -5,       /**< a unique value is taken */
  CMG_ELOCKED = -6,       /**< another run holds the migration lock */
  CMG_EUNAVAILABLE = -7,  /**< source or destination unreachable */
  CMG_EPERMISSION = -8,   /**< credentials refused */
  CMG_EIO = -9,           /**< filesystem failure */
  CMG_ESTORAGE = -10,     /**< state storage (LMDB) failure */
  CMG_EUSER = -11,        /**< the user stopped the operation */
  CMG_EPLUGIN = -12,      /**< a user plugin (custom connector, merge rule, validator, ...) failed */
  CMG_ENOMEM = -13,       /**< out of memory */
  CMG_EINTERNAL = -14,    /**< a bug in crmmigrate: an invariant did not hold */
  CMG_ITEROVER = -31      /**< no more items: the normal end of an iteration, not an error */
} cmg_error_code;

/** The last error of the calling thread. */
typedef struct cmg_error {
  int code;            /**< a cmg_error_code; CMG_OK when the last call succeeded */
  const char *message; /**< UTF-8, never NULL ("" after a success) */
} cmg_error;

/**
 * Returns the last error recorded on the calling thread. Never NULL. The struct and its message
 * are borrowed: valid until the next crmmigrate call on this thread. Thread-safe (per thread).
 */
CMG_API const cmg_error *cmg_error_last(void);

/**
 * Records an error on the calling thread. Plugins call it before returning a non-zero code so
 * their message reaches the caller (the library returns CMG_EPLUGIN with that message). `message`
 * is copied; NULL records an empty message. Thread-safe (per thread).
 */
CMG_API void cmg_error_set_str(int code, const char *message);

/** Clears the calling thread's last error (code CMG_OK, empty message). Thread-safe. */
CMG_API void cmg_error_clear(void);

/** Short stable name of a code ("ok", "invalid", "config", ..., "iterover"); never NULL. */
CMG_API const char *cmg_error_code_name(int code);

/* ---- Buffers ----------------------------------------------------------------------------- */

/**
 * Text (usually JSON) returned by the library. `ptr` is NUL-terminated and `size` excludes the
 * NUL. Initialise with CMG_BUF_INIT; release with cmg_buf_dispose(). A buffer passed as an output
 * is overwritten; dispose of any previous content first or it leaks.
 */
typedef struct cmg_buf {
  char *ptr;
  size_t size;
} cmg_buf;

#define CMG_BUF_INIT {NULL, 0}

/** Frees the buffer's memory and resets it to {NULL, 0}. NULL or an empty buffer is a no-op. */
CMG_API void cmg_buf_dispose(cmg_buf *buf);

/**
 * Replaces the content of `buf` with a copy of `data[0..len)` (plus a NUL), disposing of what it
 * held. Plugins use it to fill the output buffers the library passes them.
 * Returns CMG_OK, CMG_EINVALID (buf NULL, or data NULL with len > 0) or CMG_ENOMEM.
 */
CMG_API int cmg_buf_set(cmg_buf *buf, const char *data, size_t len);

/* ---- Migration --------------------------------------------------------------------------- */

/** An open migration: its config, durable state and connectors. Opaque. */
typedef struct cmg_migration cmg_migration;

/* Plugin vtables, defined in <crmmigrate/sys/source.h> and <crmmigrate/sys/destination.h>. */
struct cmg_source_vtable;
struct cmg_destination_vtable;

/** Options of cmg_migration_open(). */
typedef struct cmg_open_options {
  unsigned int version; /**< CMG_OPEN_OPTIONS_VERSION */
  /** Replaces the config's state directory ("state"); NULL keeps it. */
  const char *state_dir;
  /** Directory relative paths of a config given as text resolve against; NULL = the current
   *  directory. (A config file's paths resolve against the file's directory.) */
  const char *base_dir;
  /** A custom source replacing the configured one, or NULL. The library calls
   *  source->destroy(source_user_data) exactly once: when the migration is closed, or before
   *  cmg_migration_open() returns if it fails. */
  const struct cmg_source_vtable *source;
  void *source_user_data;
  /** A custom destination replacing the configured one, or NULL; destroyed like `source`. */
  const struct cmg_destination_vtable *destination;
  void *destination_user_data;
} cmg_open_options;

#define CMG_OPEN_OPTIONS_VERSION 1
#define CMG_OPEN_OPTIONS_INIT {CMG_OPEN_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL}

/** Initialises `opts` to the defaults of `version`. Returns CMG_OK, or CMG_EINVALID for a NULL
 *  `opts` or an unknown version. */
CMG_API int cmg_open_options_init(cmg_open_options *opts, unsigned int version);

/**
 * Opens the migration described by a config given as JSON text (`config_json`) or as a file
 * (`config_path`); exactly one of the two must be non-NULL. Creates the state directory when it is
 * missing and opens the connectors (or adopts the custom ones in `opts`).
 * [out] out: the new handle, to be closed with cmg_migration_close(); set to NULL on failure.
 * Returns CMG_OK; CMG_EINVALID (NULL out, both or neither config given, bad options version or a
 * custom connector vtable of an unknown version); CMG_ECONFIG (the message names the JSON path,
 * e.g. "$.objects[0].fields"); CMG_ENOTFOUND/CMG_EIO (config file); CMG_EUNAVAILABLE (connector);
 * CMG_ESTORAGE. Custom connectors' destroy callbacks are called exactly once in every case.
 * Thread-safe (each call creates an independent handle).
 */
CMG_API int cmg_migration_open(cmg_migration **out, const char *config_json, const char *config_path,
                               const cmg_open_options *opts);

/**
 * Closes the migration, releasing its state and its plugins (their destroy callbacks run here).
 * NULL is a no-op. Cursors opened on it must be closed first.
 */
CMG_API void cmg_migration_close(cmg_migration *migration);

/**
 * Computes the coverage plan (no writes to the destination). With `approve` non-zero, records the
 * sign-off of this config and these schemas by `reviewer` (refused while the plan has blocking
 * gaps). [out] out_json: the plan as a JSON object ("objects", "blocking", ...).
 * Returns CMG_OK; CMG_EINVALID (NULL argument, approve without reviewer, blocking gaps);
 * connector and storage codes otherwise.
 */
CMG_API int cmg_migration_plan(cmg_buf *out_json, cmg_migration *migration, int approve, const char *reviewer);

/**
 * Progress callback of the long calls: `object` (config object name), `phase` ("extract",
 * "plan", "write", "reconcile"), `done` and `total` (-1 when unknown) records. Both strings are
 * borrowed for the duration of the call. Return 0 to continue, non-zero to stop the call cleanly
 * at the next batch boundary (the call then returns that value; see cmg_migration_run()).
 * It runs on the thread that made the call.
 */
typedef int (*cmg_progress_cb)(const char *object, const char *phase, int64_t done, int64_t total,
                               void *user_data);

/** Options of run, reprocess, delta and reconcile. */
typedef struct cmg_run_options {
  unsigned int version;       /**< CMG_RUN_OPTIONS_VERSION */
  int dry_run;                /**< extract, map, dedup and validate only, in scratch state */
  const char *object;         /**< only this config object; NULL = all */
  int64_t limit;              /**< at most this many records written by this call; < 0 = no limit */
  int accept_counts;          /**< continue after a count-mismatch pause (needs reviewer) */
  int ack_halt;               /**< resume after an error-rate halt (needs reviewer) */
  const char *reviewer;       /**< who accepted the counts / acknowledged the halt */
  cmg_progress_cb progress;   /**< optional */
  void *user_data;            /**< passed to progress; not owned */
} cmg_run_options;

#define CMG_RUN_OPTIONS_VERSION 1
#define CMG_RUN_OPTIONS_INIT {CMG_RUN_OPTIONS_VERSION, 0, NULL, -1, 0, 0, NULL, NULL, NULL}

/** Initialises `opts` to the defaults of `version`. Returns CMG_OK, or CMG_EINVALID for a NULL
 *  `opts` or an unknown version. */
CMG_API int cmg_run_options_init(cmg_run_options *opts, unsigned int version);

/**
 * Runs (or resumes) the migration: extract, map, dedup, validate, write, confirm.
 * `opts` may be NULL (defaults).
 * [out] out_report_json: the report {"state": "complete"|"incomplete"|"halted"|"paused",
 *   "complete", "objects": {name: {"source","written","merged","queued","skipped","pending"}},
 *   "queue_open", "readback_mismatches", "alerts", "message", "cancelled"}. It is filled on CMG_OK
 *   and also when the progress callback stopped the call.
 * Returns CMG_OK (whatever the state: a halt, pause or open queue is reported, not an error); the
 * progress callback's non-zero value when it stopped the call ("cancelled": true in the report,
 * last error CMG_EUSER); CMG_EINVALID (NULL argument, bad options version, no matching sign-off);
 * CMG_ELOCKED (another run holds the lock); CMG_EPLUGIN (a plugin failed: the message is the
 * plugin's); connector and storage codes otherwise.
 */
CMG_API int cmg_migration_run(cmg_buf *out_report_json, cmg_migration *migration, const cmg_run_options *opts);

/** Reprocesses fixed queue items, items queued under an older config and children of resolved
 *  parents. Outputs and return codes as cmg_migration_run(). */
CMG_API int cmg_migration_reprocess(cmg_buf *out_report_json, cmg_migration *migration,
                                    const cmg_run_options *opts);

/** The delta pass: applies source changes made since the main extraction (records changed on both
 *  sides or deleted in the source are queued). Outputs and return codes as cmg_migration_run(). */
CMG_API int cmg_migration_delta(cmg_buf *out_report_json, cmg_migration *migration, const cmg_run_options *opts);

/**
 * The report from the state alone (no connector calls). [out] out_report_json as
 * cmg_migration_run(). Returns CMG_OK, CMG_EINVALID (NULL argument) or CMG_ESTORAGE.
 */
CMG_API int cmg_migration_status(cmg_buf *out_report_json, cmg_migration *migration);

/**
 * Checks the accounting equation per object and reads back every confirmed record from the
 * destination. [out] out_report_json: the report with "readback_mismatches" and, when there are
 * any, "discrepancies". Returns as cmg_migration_status() plus connector codes.
 */
CMG_API int cmg_migration_reconcile(cmg_buf *out_report_json, cmg_migration *migration);

/**
 * Alert callback: `kind` ("count_mismatch", "halt", "paused"), `object` (config object name, may
 * be ""), `message`; all borrowed for the duration of the call. It runs on the thread of the call
 * that raised the alert.
 */
typedef void (*cmg_alert_cb)(const char *kind, const char *object, const char *message, void *user_data);

/**
 * Installs the alert callback (replacing any previous one; `cb` NULL removes it). The library
 * keeps `user_data` and calls destroy(user_data) exactly once (if destroy is non-NULL): when the
 * callback is replaced or the migration closed, or right away when this call fails.
 * Returns CMG_OK or CMG_EINVALID (NULL migration).
 */
CMG_API int cmg_migration_set_alert_callback(cmg_migration *migration, cmg_alert_cb cb, void *user_data,
                                             void (*destroy)(void *));

/* ---- Review queue ------------------------------------------------------------------------ */

/*
 * Queue filters are JSON objects with optional string members "id" ("contacts/123"), "reason"
 * ("unmapped_value", ...), "object", "status" ("open"|"fixed"|"resolved"|"skipped"; absent = open
 * and fixed), "field" and "text" (substring of the item's JSON). NULL or "{}" matches every item.
 * Unknown members are rejected with CMG_EINVALID.
 */

/**
 * Lists queue items matching `filter_json`, oldest first, skipping `offset`, at most `limit`
 * (0 = no limit). [out] out_json: a JSON array of items ({"id", "object", "reason", "status",
 * "problems": [...], ...}). Returns CMG_OK, CMG_EINVALID (NULL argument, bad filter) or
 * CMG_ESTORAGE. Works while another process runs the migration.
 */
CMG_API int cmg_queue_list(cmg_buf *out_json, cmg_migration *migration, const char *filter_json, size_t offset,
                           size_t limit);

/**
 * One queue item by id ("contacts/123"). [out] out_json: the item as a JSON object.
 * Returns CMG_OK, CMG_EINVALID, CMG_ENOTFOUND (no such item) or CMG_ESTORAGE.
 */
CMG_API int cmg_queue_show(cmg_buf *out_json, cmg_migration *migration, const char *item_id);

/**
 * Records a correction on every matching open item: `set_json` (a JSON object destination
 * field → value) is applied when the item is reprocessed (cmg_migration_reprocess()).
 * `reviewer` and `note` are recorded in the audit log (reviewer required).
 * [out] out_count: how many items were fixed (may be NULL).
 * Returns CMG_OK, CMG_EINVALID (NULL migration, bad filter or set, no reviewer) or CMG_ESTORAGE.
 */
CMG_API int cmg_queue_fix(int64_t *out_count, cmg_migration *migration, const char *filter_json,
                          const char *set_json, const char *reviewer, const char *note);

/**
 * Marks every matching open or fixed item skipped (deliberately not migrated) by `reviewer` with
 * `note` (both required). [out] out_count: how many items (may be NULL).
 * Returns CMG_OK, CMG_EINVALID or CMG_ESTORAGE.
 */
CMG_API int cmg_queue_skip(int64_t *out_count, cmg_migration *migration, const char *filter_json,
                           const char *reviewer, const char *note);

/* ---- Audit log --------------------------------------------------------------------------- */

/** A pull cursor over audit events. Opaque. */
typedef struct cmg_audit_cursor cmg_audit_cursor;

/**
 * Opens a cursor over the audit events (oldest first) of the whole migration, or of one record
 * when `record` is "contacts/123" or a bare source id. The cursor sees the events present when it
 * was opened. [out] out: the cursor, to be closed with cmg_audit_close() before the migration.
 * Returns CMG_OK, CMG_EINVALID (NULL argument) or CMG_ESTORAGE.
 */
CMG_API int cmg_audit_open(cmg_audit_cursor **out, cmg_migration *migration, const char *record);

/**
 * Advances the cursor. [out] out_event_json: the next event as a JSON object, NUL-terminated;
 * borrowed, valid until the next call on this cursor or its close. [out] out_len: its length in
 * bytes (may be NULL). Returns CMG_OK, CMG_ITEROVER after the last event (outputs set to NULL/0),
 * or CMG_EINVALID (NULL cursor or out_event_json).
 */
CMG_API int cmg_audit_next(const char **out_event_json, size_t *out_len, cmg_audit_cursor *cursor);

/** Closes the cursor. NULL is a no-op. */
CMG_API void cmg_audit_close(cmg_audit_cursor *cursor);

/* ---- Plugins ------------------------------------------------------------------------------ */
/* Declared here, defined in <crmmigrate/sys/merge_rule.h>, <crmmigrate/sys/validator.h> and
 * <crmmigrate/sys/normalizer.h>. Register plugins before plan/run; they apply to every later call
 * on this migration. For each registration the library calls vtable->destroy(user_data) exactly
 * once: when the plugin is replaced or the migration closed, or before returning when the
 * registration fails (whatever the reason, including a NULL migration or an unknown vtable
 * version). The vtable itself must stay valid until then (a static const struct is typical). */

struct cmg_merge_rule_vtable;
struct cmg_validator_vtable;
struct cmg_normalizer_vtable;

/** Replaces the merge rule of config object `object`. Returns CMG_OK, CMG_EINVALID (NULL
 *  argument, unknown vtable version, missing merge method) or CMG_ENOTFOUND (unknown object). */
CMG_API int cmg_migration_set_merge_rule(cmg_migration *migration, const char *object,
                                         const struct cmg_merge_rule_vtable *vtable, void *user_data);

/** Adds a validator run after the schema validator on the records of config object `object`
 *  (NULL or "" = every object). Returns as cmg_migration_set_merge_rule(). */
CMG_API int cmg_migration_add_validator(cmg_migration *migration, const char *object,
                                        const struct cmg_validator_vtable *vtable, void *user_data);

/** Replaces the normaliser of dedup key `key` (a key name of the object's "dedup" list, e.g.
 *  "email", "phone") of config object `object`. Returns as cmg_migration_set_merge_rule(). */
CMG_API int cmg_migration_set_normalizer(cmg_migration *migration, const char *object, const char *key,
                                         const struct cmg_normalizer_vtable *vtable, void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* CRMMIGRATE_CRMMIGRATE_H */
