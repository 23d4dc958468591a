/*
 * C API tests, written in C (C99): one process per test case, selected by name.
 *   c_api_test <case> <work_dir> <crmmigrate CLI> <examples/reference/migration.json>
 * The small cases use a files source over a CSV and an in-memory C destination; the reference
 * case seeds the reference sandboxes with the CLI.
 */
#define _DEFAULT_SOURCE /* flock */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "crmmigrate/crmmigrate.h"
#include "crmmigrate/sys/destination.h"
#include "crmmigrate/sys/merge_rule.h"
#include "crmmigrate/sys/normalizer.h"
#include "crmmigrate/sys/source.h"
#include "crmmigrate/sys/validator.h"
#include "memory_destination.h"

static int failures;
static const char *work_dir;
static const char *cli_path;
static const char *reference_config;

#define CHECK(cond)                                                                                     \
  do {                                                                                                  \
    if (!(cond)) {                                                                                      \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error %d: %s\n", __FILE__, __LINE__, #cond,       \
              cmg_error_last()->code, cmg_error_last()->message);                                       \
      ++failures;                                                                                       \
    }                                                                                                   \
  } while (0)

#define REQUIRE(cond)                                                                                   \
  do {                                                                                                  \
    if (!(cond)) {                                                                                      \
      fprintf(stderr, "%s:%d: REQUIRE(%s) failed; last error %d: %s\n", __FILE__, __LINE__, #cond,     \
              cmg_error_last()->code, cmg_error_last()->message);                                       \
      ++failures;                                                                                       \
      return;                                                                                           \
    }                                                                                                   \
  } while (0)

/* An error return with a non-empty message naming what went wrong. */
#define CHECK_ERR(expr, want)                                                                           \
  do {                                                                                                  \
    int rc_ = (expr);                                                                                   \
    if (rc_ != (want) || cmg_error_last()->code != (want) || cmg_error_last()->message[0] == '\0') {    \
      fprintf(stderr, "%s:%d: %s returned %d (expected %d); last error %d: %s\n", __FILE__, __LINE__,  \
              #expr, rc_, (int)(want), cmg_error_last()->code, cmg_error_last()->message);              \
      ++failures;                                                                                       \
    }                                                                                                   \
  } while (0)

static int contains(const char *haystack, const char *needle) {
  return haystack != NULL && strstr(haystack, needle) != NULL;
}

static const char *path(const char *name) {
  static char buf[4][1024];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", work_dir, name);
  return p;
}

static void write_file(const char *file, const char *text) {
  FILE *f = fopen(file, "wb");
  if (!f) {
    perror(file);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
}

static char *read_file(const char *file) {
  FILE *f = fopen(file, "rb");
  long n;
  char *text;
  if (!f) {
    perror(file);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  text = (char *)malloc((size_t)n + 1);
  if (fread(text, 1, (size_t)n, f) != (size_t)n) exit(2);
  text[n] = '\0';
  fclose(f);
  return text;
}

/* ---- the small scenario: people.csv → contacts in an in-memory C destination ---------------- */

static const char *small_schema =
    "{\"objects\":{\"contacts\":{\"fields\":[{\"name\":\"email\",\"type\":\"email\"},"
    "{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"crm_source_id\",\"type\":\"string\",\"unique\":true}],"
    "\"id_property\":\"crm_source_id\"}},\"users\":[]}";

static const char *small_config_fmt =
    "{\"name\":\"small\",\"state\":\"state\","
    "\"source\":{\"connector\":\"files\",\"options\":{\"objects\":{\"people\":{\"path\":\"people.csv\",\"id\":\"id\"}}}},"
    "\"destination\":{\"connector\":\"memory\"},"
    "\"objects\":[{\"name\":\"contacts\",\"source\":\"people\",\"destination\":\"contacts\","
    "\"fields\":{\"email\":\"email\",\"name\":\"name\"},%s\"dedup\":{\"keys\":[\"email\"]}}]}";

static char small_config[2048];
static const char *small_state = "state";

static void small_setup(const char *extra_object_members) {
  write_file(path("people.csv"), "id,email,name\n1,ann@example.com,Ann\n2,bob@example.com,Bob\n3,cy@example.com,Cy\n");
  snprintf(small_config, sizeof small_config, small_config_fmt, extra_object_members ? extra_object_members : "");
}

static void store_init(mem_store *s) {
  memset(s, 0, sizeof *s);
  s->schema_json = small_schema;
}

/* Opens the small scenario over `store`; `approve` signs the plan off. */
static int small_open(cmg_migration **out, mem_store *store, int approve) {
  cmg_open_options o = CMG_OPEN_OPTIONS_INIT;
  cmg_buf plan = CMG_BUF_INIT;
  int rc;
  o.base_dir = work_dir;
  o.state_dir = path(small_state);
  o.destination = &mem_destination_vtable;
  o.destination_user_data = store;
  rc = cmg_migration_open(out, small_config, NULL, &o);
  if (rc != CMG_OK || !approve) return rc;
  rc = cmg_migration_plan(&plan, *out, 1, "Avery");
  cmg_buf_dispose(&plan);
  return rc;
}

/* ---- counted plugins --------------------------------------------------------------------- */

static int destroyed;
static void count_destroy(void *ud) {
  (void)ud;
  ++destroyed;
}

static int rule_fails(cmg_buf *out, const char *src, const char *dst, void *ud) {
  (void)out, (void)src, (void)dst, (void)ud;
  cmg_error_set_str(CMG_EPLUGIN, "rule exploded on purpose");
  return -1;
}

static int rule_skips(cmg_buf *out, const char *src, const char *dst, void *ud) {
  static const char outcome[] = "{\"kind\":\"skip\",\"reason\":\"house rule: never touch existing contacts\"}";
  (void)src, (void)dst;
  ++*(int *)ud;
  return cmg_buf_set(out, outcome, sizeof outcome - 1);
}

static int validator_fails(cmg_buf *out, const char *object, const char *fields, int is_create, void *ud) {
  (void)out, (void)object, (void)fields, (void)is_create, (void)ud;
  cmg_error_set_str(CMG_EPLUGIN, "validator exploded on purpose");
  return -1;
}

static int validator_no_bob(cmg_buf *out, const char *object, const char *fields, int is_create, void *ud) {
  static const char problems[] =
      "[{\"reason\":\"invalid_value\",\"field\":\"name\",\"value\":\"Bob\",\"rule\":\"custom:no_bob\","
      "\"message\":\"Bob is not allowed\",\"suggestion\":\"Robert\"}]";
  (void)object, (void)is_create, (void)ud;
  return contains(fields, "\"Bob\"") ? cmg_buf_set(out, problems, sizeof problems - 1) : 0;
}

static int normalizer_fails(cmg_buf *out, const char *value, size_t len, void *ud) {
  (void)out, (void)value, (void)len, (void)ud;
  cmg_error_set_str(CMG_EPLUGIN, "normalizer exploded on purpose");
  return -1;
}

/* A C source: three people, or failures on demand. */
typedef struct c_source {
  int fail_schema;
  int fail_next;
  int streams_released;
} c_source;

static int src_schema(cmg_buf *out, void *ud) {
  static const char schema[] =
      "{\"objects\":{\"people\":{\"fields\":[{\"name\":\"email\",\"type\":\"string\"},"
      "{\"name\":\"name\",\"type\":\"string\"}]}},\"users\":[]}";
  if (((c_source *)ud)->fail_schema) {
    cmg_error_set_str(CMG_EPLUGIN, "schema service unreachable");
    return -1;
  }
  return cmg_buf_set(out, schema, sizeof schema - 1);
}

static int src_count(int64_t *out, const char *object, void *ud) {
  (void)object, (void)ud;
  *out = 3;
  return 0;
}

static int src_next(cmg_record_stream *s, const char **out) {
  c_source *src = (c_source *)s->private_data;
  static int served;
  if (src->fail_next) return -1;
  *out = served++ % 2 == 0 ? "[{\"id\":\"1\",\"fields\":{\"email\":\"ann@example.com\",\"name\":\"Ann\"}},"
                              "{\"id\":\"2\",\"updated_at\":1700000000000,\"fields\":{\"email\":\"bob@example.com\",\"name\":\"Bob\"}},"
                              "{\"id\":\"3\",\"fields\":{\"email\":\"cy@example.com\",\"name\":\"Cy\"}}]"
                            : NULL;
  return 0;
}

static const char *src_last_error(cmg_record_stream *s) {
  (void)s;
  return "disk on fire";
}

static void src_release(cmg_record_stream *s) {
  ++((c_source *)s->private_data)->streams_released;
  s->release = NULL;
}

static int src_open(cmg_record_stream *out, const char *object, void *ud) {
  (void)object;
  out->next = src_next;
  out->last_error = src_last_error;
  out->release = src_release;
  out->private_data = ud;
  return 0;
}

static void src_destroy(void *ud) {
  (void)ud;
  ++destroyed;
}

static const cmg_source_vtable c_source_vtable = {CMG_SOURCE_VTABLE_VERSION, src_schema, src_count, src_open,
                                                  src_destroy};

/* ---- test cases -------------------------------------------------------------------------- */

static void test_version_and_errors(void) {
  int major = -1, minor = -1, patch = -1;
  cmg_buf b = CMG_BUF_INIT;
  const cmg_error *e;
  CHECK(cmg_version(&major, &minor, &patch) == CMG_OK);
  CHECK(major == CMG_VERSION_MAJOR && minor == CMG_VERSION_MINOR && patch == CMG_VERSION_PATCH);
  CHECK(cmg_version(NULL, NULL, NULL) == CMG_OK);
  e = cmg_error_last();
  CHECK(e != NULL && e->code == CMG_OK && e->message != NULL);
  cmg_error_set_str(CMG_EPLUGIN, "mine");
  CHECK(cmg_error_last()->code == CMG_EPLUGIN && strcmp(cmg_error_last()->message, "mine") == 0);
  cmg_error_set_str(CMG_EUSER, NULL);
  CHECK(cmg_error_last()->message != NULL && cmg_error_last()->message[0] == '\0');
  cmg_error_clear();
  CHECK(cmg_error_last()->code == CMG_OK);
  CHECK(strcmp(cmg_error_code_name(CMG_ELOCKED), "locked") == 0);
  CHECK(strcmp(cmg_error_code_name(CMG_ITEROVER), "iterover") == 0);
  CHECK(strcmp(cmg_error_code_name(12345), "unknown") == 0);
  CHECK(cmg_buf_set(&b, "abc", 3) == CMG_OK && b.size == 3 && strcmp(b.ptr, "abc") == 0);
  CHECK(cmg_buf_set(&b, "", 0) == CMG_OK && b.size == 0 && b.ptr != NULL && b.ptr[0] == '\0');
  CHECK(cmg_buf_set(NULL, "x", 1) == CMG_EINVALID);
  CHECK(cmg_buf_set(&b, NULL, 1) == CMG_EINVALID);
  cmg_buf_dispose(&b);
  CHECK(b.ptr == NULL && b.size == 0);
  cmg_buf_dispose(&b);
  cmg_buf_dispose(NULL);
}

static void test_null_arguments(void) {
  cmg_migration *m = (cmg_migration *)1;
  cmg_buf b = CMG_BUF_INIT;
  cmg_audit_cursor *cur = (cmg_audit_cursor *)1;
  const char *ev = "x";
  size_t len = 7;
  int64_t n = 5;
  cmg_run_options ro;
  cmg_open_options oo;
  mem_store store;
  static const cmg_merge_rule_vtable rule = {CMG_MERGE_RULE_VTABLE_VERSION, "r", rule_fails, count_destroy};
  static const cmg_validator_vtable val = {CMG_VALIDATOR_VTABLE_VERSION, "v", validator_fails, count_destroy};
  static const cmg_normalizer_vtable norm = {CMG_NORMALIZER_VTABLE_VERSION, "n", normalizer_fails, count_destroy};

  CHECK_ERR(cmg_migration_open(NULL, "{}", NULL, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_open(&m, NULL, NULL, NULL), CMG_EINVALID);
  CHECK(m == NULL);
  CHECK_ERR(cmg_migration_open(&m, "{}", "migration.json", NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_plan(&b, NULL, 0, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_run(&b, NULL, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_reprocess(&b, NULL, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_delta(&b, NULL, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_status(&b, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_reconcile(&b, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_queue_list(&b, NULL, NULL, 0, 0), CMG_EINVALID);
  CHECK_ERR(cmg_queue_show(&b, NULL, "contacts/1"), CMG_EINVALID);
  CHECK_ERR(cmg_queue_fix(&n, NULL, NULL, "{}", "Sam", "note"), CMG_EINVALID);
  CHECK(n == 0);
  CHECK_ERR(cmg_queue_skip(&n, NULL, NULL, "Sam", "note"), CMG_EINVALID);
  CHECK_ERR(cmg_audit_open(&cur, NULL, NULL), CMG_EINVALID);
  CHECK(cur == NULL);
  CHECK_ERR(cmg_audit_open(NULL, NULL, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_audit_next(&ev, &len, NULL), CMG_EINVALID);
  CHECK(ev == NULL && len == 0);
  CHECK_ERR(cmg_run_options_init(NULL, CMG_RUN_OPTIONS_VERSION), CMG_EINVALID);
  CHECK_ERR(cmg_run_options_init(&ro, 99), CMG_EINVALID);
  CHECK_ERR(cmg_open_options_init(NULL, CMG_OPEN_OPTIONS_VERSION), CMG_EINVALID);
  CHECK_ERR(cmg_open_options_init(&oo, 0), CMG_EINVALID);
  CHECK(cmg_run_options_init(&ro, CMG_RUN_OPTIONS_VERSION) == CMG_OK && ro.limit == -1 && ro.progress == NULL);
  CHECK(cmg_open_options_init(&oo, CMG_OPEN_OPTIONS_VERSION) == CMG_OK && oo.source == NULL);

  /* Registration on a NULL migration fails and still releases the user data, exactly once. */
  destroyed = 0;
  CHECK_ERR(cmg_migration_set_alert_callback(NULL, NULL, NULL, count_destroy), CMG_EINVALID);
  CHECK_ERR(cmg_migration_set_merge_rule(NULL, "contacts", &rule, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_add_validator(NULL, "contacts", &val, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_set_normalizer(NULL, "contacts", "email", &norm, NULL), CMG_EINVALID);
  CHECK(destroyed == 4);

  cmg_migration_close(NULL);
  cmg_audit_close(NULL);

  /* NULL outputs and bad arguments on a valid handle. */
  small_setup(NULL);
  store_init(&store);
  REQUIRE(small_open(&m, &store, 1) == CMG_OK);
  CHECK_ERR(cmg_migration_plan(NULL, m, 0, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_plan(&b, m, 1, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_run(NULL, m, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_migration_status(NULL, m), CMG_EINVALID);
  CHECK_ERR(cmg_migration_reconcile(NULL, m), CMG_EINVALID);
  CHECK_ERR(cmg_queue_list(NULL, m, NULL, 0, 0), CMG_EINVALID);
  CHECK_ERR(cmg_queue_list(&b, m, "{not json", 0, 0), CMG_EINVALID);
  CHECK_ERR(cmg_queue_list(&b, m, "{\"colour\":\"red\"}", 0, 0), CMG_EINVALID);
  CHECK(contains(cmg_error_last()->message, "colour"));
  CHECK_ERR(cmg_queue_show(&b, m, NULL), CMG_EINVALID);
  CHECK_ERR(cmg_queue_show(&b, m, "contacts/nope"), CMG_ENOTFOUND);
  CHECK_ERR(cmg_queue_fix(&n, m, NULL, "[1]", "Sam", "n"), CMG_EINVALID);
  CHECK_ERR(cmg_queue_fix(&n, m, NULL, "{}", NULL, "n"), CMG_EINVALID);
  CHECK_ERR(cmg_queue_skip(&n, m, NULL, "Sam", NULL), CMG_EINVALID);
  CHECK_ERR(cmg_audit_open(NULL, m, NULL), CMG_EINVALID);
  ro.version = 42;
  CHECK_ERR(cmg_migration_run(&b, m, &ro), CMG_EINVALID);
  CHECK(contains(cmg_error_last()->message, "version"));
  CHECK(b.ptr == NULL);
  cmg_migration_close(m);
  CHECK(store.destroyed == 1);
  mem_store_free(&store);
}

static void test_bad_config(void) {
  cmg_migration *m = (cmg_migration *)1;
  cmg_open_options o = CMG_OPEN_OPTIONS_INIT;
  mem_store store;
  CHECK_ERR(cmg_migration_open(&m, "{\"name\": \"x\",\n  oops}", NULL, NULL), CMG_ECONFIG);
  CHECK(m == NULL);
  CHECK(contains(cmg_error_last()->message, "config:2:"));
  CHECK_ERR(cmg_migration_open(&m, "[]", NULL, NULL), CMG_ECONFIG);
  CHECK(contains(cmg_error_last()->message, "$"));
  CHECK_ERR(cmg_migration_open(&m,
                               "{\"name\":\"x\",\"source\":{\"connector\":\"files\",\"options\":{}},"
                               "\"destination\":{\"connector\":\"files\",\"options\":{}},"
                               "\"objects\":[{\"name\":\"contacts\",\"source\":\"people\",\"destination\":\"contacts\","
                               "\"fields\":{\"email\":42},\"dedup\":\"none\"}]}",
                               NULL, NULL),
            CMG_ECONFIG);
  CHECK(contains(cmg_error_last()->message, "$.objects[0].fields.email"));
  CHECK_ERR(cmg_migration_open(&m,
                               "{\"name\":\"x\",\"source\":{\"connector\":\"carrier-pigeon\"},"
                               "\"destination\":{\"connector\":\"files\",\"options\":{}},"
                               "\"objects\":[{\"name\":\"contacts\",\"source\":\"people\",\"destination\":\"contacts\","
                               "\"fields\":{\"email\":\"email\"},\"dedup\":\"none\"}]}",
                               NULL, NULL),
            CMG_ECONFIG);
  CHECK(contains(cmg_error_last()->message, "$.source.connector"));
  CHECK(cmg_migration_open(&m, NULL, path("no-such-migration.json"), NULL) != CMG_OK);
  CHECK(contains(cmg_error_last()->message, "no-such-migration.json"));
  CHECK(m == NULL);

  /* An unknown options version is refused, and the custom destination is still released. */
  small_setup(NULL);
  store_init(&store);
  o.version = 7;
  o.destination = &mem_destination_vtable;
  o.destination_user_data = &store;
  CHECK_ERR(cmg_migration_open(&m, small_config, NULL, &o), CMG_EINVALID);
  CHECK(store.destroyed == 1);
  /* A config error with custom connectors releases them too. */
  o.version = CMG_OPEN_OPTIONS_VERSION;
  store.destroyed = 0;
  CHECK_ERR(cmg_migration_open(&m, "{}", NULL, &o), CMG_ECONFIG);
  CHECK(contains(cmg_error_last()->message, "$.name"));
  CHECK(store.destroyed == 1);
}

static void test_unknown_vtable_version(void) {
  cmg_migration *m = NULL;
  cmg_open_options o = CMG_OPEN_OPTIONS_INIT;
  cmg_source_vtable src = c_source_vtable;
  cmg_destination_vtable dst = mem_destination_vtable;
  cmg_merge_rule_vtable rule = {99, "r", rule_fails, count_destroy};
  cmg_validator_vtable val = {0, "v", validator_fails, count_destroy};
  cmg_normalizer_vtable norm = {2, "n", normalizer_fails, count_destroy};
  c_source csrc = {0, 0, 0};
  mem_store store;

  small_setup(NULL);
  store_init(&store);
  o.base_dir = work_dir;
  destroyed = 0;
  src.version = 99;
  o.source = &src;
  o.source_user_data = &csrc;
  CHECK_ERR(cmg_migration_open(&m, small_config, NULL, &o), CMG_EINVALID);
  CHECK(contains(cmg_error_last()->message, "version 99"));
  CHECK(destroyed == 1);
  CHECK(m == NULL);

  o.source = NULL;
  dst.version = 0;
  o.destination = &dst;
  o.destination_user_data = &store;
  CHECK_ERR(cmg_migration_open(&m, small_config, NULL, &o), CMG_EINVALID);
  CHECK(contains(cmg_error_last()->message, "cmg_destination_vtable"));
  CHECK(store.destroyed == 1);

  store.destroyed = 0;
  REQUIRE(small_open(&m, &store, 0) == CMG_OK);
  destroyed = 0;
  CHECK_ERR(cmg_migration_set_merge_rule(m, "contacts", &rule, NULL), CMG_EINVALID);
  CHECK(contains(cmg_error_last()->message, "version 99"));
  CHECK(destroyed == 1);
  CHECK_ERR(cmg_migration_add_validator(m, "contacts", &val, NULL), CMG_EINVALID);
  CHECK(destroyed == 2);
  CHECK_ERR(cmg_migration_set_normalizer(m, "contacts", "email", &norm, NULL), CMG_EINVALID);
  CHECK(destroyed == 3);
  /* A known version on an unknown object: refused, released once. */
  rule.version = CMG_MERGE_RULE_VTABLE_VERSION;
  CHECK_ERR(cmg_migration_set_merge_rule(m, "unicorns", &rule, NULL), CMG_ENOTFOUND);
  CHECK(destroyed == 4);
  norm.version = CMG_NORMALIZER_VTABLE_VERSION;
  CHECK_ERR(cmg_migration_set_normalizer(m, "contacts", "fax", &norm, NULL), CMG_ENOTFOUND);
  CHECK(destroyed == 5);
  /* Registered plugins are released once when replaced or at close. */
  CHECK(cmg_migration_set_merge_rule(m, "contacts", &rule, NULL) == CMG_OK);
  CHECK(cmg_migration_set_merge_rule(m, "contacts", &rule, NULL) == CMG_OK);
  CHECK(destroyed == 6);
  val.version = CMG_VALIDATOR_VTABLE_VERSION;
  CHECK(cmg_migration_add_validator(m, NULL, &val, NULL) == CMG_OK);
  CHECK(cmg_migration_set_normalizer(m, "contacts", "email", &norm, NULL) == CMG_OK);
  CHECK(destroyed == 6);
  cmg_migration_close(m);
  CHECK(destroyed == 9);
  CHECK(store.destroyed == 1);
  mem_store_free(&store);
}

static int progress_calls;
static int stop_at_first(const char *object, const char *phase, int64_t done, int64_t total, void *ud) {
  (void)object, (void)phase, (void)done, (void)total;
  ++progress_calls;
  return *(int *)ud;
}

static void test_progress_cancel(void) {
  cmg_migration *m = NULL;
  cmg_buf report = CMG_BUF_INIT;
  cmg_run_options ro = CMG_RUN_OPTIONS_INIT;
  mem_store store;
  int answer = 7;
  small_setup(NULL);
  store_init(&store);
  REQUIRE(small_open(&m, &store, 1) == CMG_OK);
  ro.progress = stop_at_first;
  ro.user_data = &answer;
  CHECK(cmg_migration_run(&report, m, &ro) == 7);
  CHECK(cmg_error_last()->code == CMG_EUSER);
  CHECK(contains(cmg_error_last()->message, "progress callback"));
  CHECK(progress_calls == 1);
  CHECK(contains(report.ptr, "\"cancelled\":true"));
  CHECK(contains(report.ptr, "stopped cleanly"));
  CHECK(store.count == 0);
  /* Resuming finishes the job; a callback returning 0 lets it run. */
  answer = 0;
  CHECK(cmg_migration_run(&report, m, &ro) == CMG_OK);
  CHECK(contains(report.ptr, "\"written\":3"));
  CHECK(contains(report.ptr, "\"state\":\"complete\""));
  CHECK(!contains(report.ptr, "cancelled"));
  CHECK(store.count == 3);
  cmg_buf_dispose(&report);
  cmg_migration_close(m);
  mem_store_free(&store);
}

typedef struct alert_log {
  int calls;
  char kind[64];
  char object[64];
  int destroyed;
} alert_log;

static void on_alert(const char *kind, const char *object, const char *message, void *ud) {
  alert_log *log = (alert_log *)ud;
  (void)message;
  ++log->calls;
  snprintf(log->kind, sizeof log->kind, "%s", kind);
  snprintf(log->object, sizeof log->object, "%s", object);
}

static void alert_destroy(void *ud) { ++((alert_log *)ud)->destroyed; }

static void test_alert_callback(void) {
  cmg_migration *m = NULL;
  cmg_buf report = CMG_BUF_INIT;
  cmg_run_options ro = CMG_RUN_OPTIONS_INIT;
  mem_store store;
  alert_log first = {0, "", "", 0}, second = {0, "", "", 0};
  small_setup("\"expected_count\":5,");
  store_init(&store);
  REQUIRE(small_open(&m, &store, 1) == CMG_OK);
  CHECK(cmg_migration_set_alert_callback(m, on_alert, &first, alert_destroy) == CMG_OK);
  /* A pause is a state in the report, not an error. */
  CHECK(cmg_migration_run(&report, m, NULL) == CMG_OK);
  CHECK(contains(report.ptr, "\"state\":\"paused\""));
  CHECK(first.calls == 1);
  CHECK(strcmp(first.kind, "count_mismatch") == 0);
  CHECK(strcmp(first.object, "contacts") == 0);
  CHECK(store.count == 0);
  CHECK(cmg_migration_set_alert_callback(m, on_alert, &second, alert_destroy) == CMG_OK);
  CHECK(first.destroyed == 1);
  ro.accept_counts = 1;
  ro.reviewer = "Avery";
  CHECK(cmg_migration_run(&report, m, &ro) == CMG_OK);
  CHECK(contains(report.ptr, "\"state\":\"complete\""));
  CHECK(store.count == 3);
  cmg_buf_dispose(&report);
  cmg_migration_close(m);
  CHECK(first.destroyed == 1);
  CHECK(second.destroyed == 1);
  mem_store_free(&store);
}

static void seed_matching_contact(mem_store *store) {
  mem_add(store, "contacts", mj_whole("\"preexisting\""),
          mj_whole("{\"email\":\"ann@example.com\",\"name\":\"Ann Existing\",\"crm_source_id\":\"preexisting\"}"));
}

static void test_plugin_errors(void) {
  cmg_migration *m = NULL;
  cmg_buf report = CMG_BUF_INIT;
  cmg_open_options o = CMG_OPEN_OPTIONS_INIT;
  mem_store store;
  c_source csrc = {0, 0, 0};
  int released;
  static const cmg_merge_rule_vtable failing_rule = {CMG_MERGE_RULE_VTABLE_VERSION, "exploding", rule_fails, NULL};
  static const cmg_validator_vtable failing_validator = {CMG_VALIDATOR_VTABLE_VERSION, "exploding", validator_fails,
                                                         NULL};
  static const cmg_normalizer_vtable failing_normalizer = {CMG_NORMALIZER_VTABLE_VERSION, "exploding",
                                                           normalizer_fails, NULL};
  small_setup(NULL);

  /* A merge rule that cannot decide fails the run with its own message. */
  store_init(&store);
  seed_matching_contact(&store);
  REQUIRE(small_open(&m, &store, 0) == CMG_OK);
  CHECK(cmg_migration_set_merge_rule(m, "contacts", &failing_rule, NULL) == CMG_OK);
  CHECK(cmg_migration_plan(&report, m, 1, "Avery") == CMG_OK);
  CHECK_ERR(cmg_migration_run(&report, m, NULL), CMG_EPLUGIN);
  CHECK(contains(cmg_error_last()->message, "rule exploded on purpose"));
  CHECK(contains(cmg_error_last()->message, "exploding"));
  cmg_migration_close(m);
  mem_store_free(&store);

  /* A validator that cannot check: the run stops with CMG_EPLUGIN and nothing unchecked is written. */
  small_state = "state-validator";
  store_init(&store);
  REQUIRE(small_open(&m, &store, 0) == CMG_OK);
  CHECK(cmg_migration_add_validator(m, "contacts", &failing_validator, NULL) == CMG_OK);
  CHECK(cmg_migration_plan(&report, m, 1, "Avery") == CMG_OK);
  CHECK_ERR(cmg_migration_run(&report, m, NULL), CMG_EPLUGIN);
  CHECK(contains(cmg_error_last()->message, "validator exploded on purpose"));
  CHECK(store.writes == 0);
  cmg_migration_close(m);
  mem_store_free(&store);

  /* A normaliser that fails stops the run the same way. */
  small_state = "state-normalizer";
  store_init(&store);
  seed_matching_contact(&store);
  REQUIRE(small_open(&m, &store, 0) == CMG_OK);
  CHECK(cmg_migration_set_normalizer(m, "contacts", "email", &failing_normalizer, NULL) == CMG_OK);
  CHECK(cmg_migration_plan(&report, m, 1, "Avery") == CMG_OK);
  CHECK_ERR(cmg_migration_run(&report, m, NULL), CMG_EPLUGIN);
  CHECK(contains(cmg_error_last()->message, "normalizer exploded on purpose"));
  cmg_migration_close(m);
  mem_store_free(&store);

  /* A C source whose schema call fails: plan fails with its message. */
  store_init(&store);
  o.base_dir = work_dir;
  o.state_dir = path("state-src");
  o.source = &c_source_vtable;
  o.source_user_data = &csrc;
  o.destination = &mem_destination_vtable;
  o.destination_user_data = &store;
  destroyed = 0;
  csrc.fail_schema = 1;
  REQUIRE(cmg_migration_open(&m, small_config, NULL, &o) == CMG_OK);
  CHECK_ERR(cmg_migration_plan(&report, m, 0, NULL), CMG_EPLUGIN);
  CHECK(contains(cmg_error_last()->message, "schema service unreachable"));
  /* ... and whose stream fails: run fails with the stream's last_error, the stream is released. */
  csrc.fail_schema = 0;
  CHECK(cmg_migration_plan(&report, m, 1, "Avery") == CMG_OK);
  csrc.fail_next = 1;
  released = csrc.streams_released;
  CHECK_ERR(cmg_migration_run(&report, m, NULL), CMG_EPLUGIN);
  CHECK(contains(cmg_error_last()->message, "disk on fire"));
  CHECK(csrc.streams_released == released + 1);
  /* Once the source works, the same migration completes. */
  csrc.fail_next = 0;
  CHECK(cmg_migration_run(&report, m, NULL) == CMG_OK);
  CHECK(contains(report.ptr, "\"written\":3"));
  CHECK(csrc.streams_released == released + 2);
  cmg_migration_close(m);
  CHECK(destroyed == 1);
  CHECK(store.destroyed == 1);
  cmg_buf_dispose(&report);
  mem_store_free(&store);
}

static void test_plugins_decide(void) {
  cmg_migration *m = NULL;
  cmg_buf report = CMG_BUF_INIT, items = CMG_BUF_INIT;
  mem_store store;
  int merges = 0;
  static const cmg_merge_rule_vtable skipping_rule = {CMG_MERGE_RULE_VTABLE_VERSION, "never_touch", rule_skips, NULL};
  static const cmg_validator_vtable no_bob = {CMG_VALIDATOR_VTABLE_VERSION, "no_bob", validator_no_bob, NULL};
  small_setup(NULL);
  store_init(&store);
  seed_matching_contact(&store);
  REQUIRE(small_open(&m, &store, 0) == CMG_OK);
  CHECK(cmg_migration_set_merge_rule(m, "contacts", &skipping_rule, &merges) == CMG_OK);
  CHECK(cmg_migration_add_validator(m, "contacts", &no_bob, NULL) == CMG_OK);
  CHECK(cmg_migration_plan(&report, m, 1, "Avery") == CMG_OK);
  CHECK(cmg_migration_run(&report, m, NULL) == CMG_OK);
  CHECK(merges == 1);
  CHECK(contains(report.ptr, "\"written\":1"));
  CHECK(contains(report.ptr, "\"skipped\":1"));
  CHECK(contains(report.ptr, "\"queued\":1"));
  CHECK(cmg_queue_list(&items, m, "{\"reason\":\"invalid_value\"}", 0, 0) == CMG_OK);
  CHECK(contains(items.ptr, "custom:no_bob"));
  CHECK(contains(items.ptr, "Robert"));
  cmg_buf_dispose(&items);
  cmg_buf_dispose(&report);
  cmg_migration_close(m);
  mem_store_free(&store);
}

static void test_locked(void) {
  cmg_migration *m = NULL;
  cmg_buf report = CMG_BUF_INIT;
  mem_store store;
  int fd;
  small_setup(NULL);
  store_init(&store);
  REQUIRE(small_open(&m, &store, 1) == CMG_OK);
  /* Another process holding the run lock looks exactly like this open file description. */
  fd = open(path("state/run.lock"), O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(flock(fd, LOCK_EX | LOCK_NB) == 0);
  CHECK_ERR(cmg_migration_run(&report, m, NULL), CMG_ELOCKED);
  CHECK(contains(cmg_error_last()->message, "lock"));
  CHECK(report.ptr == NULL);
  /* Status works alongside a running migration. */
  CHECK(cmg_migration_status(&report, m) == CMG_OK);
  cmg_buf_dispose(&report);
  flock(fd, LOCK_UN);
  close(fd);
  CHECK(cmg_migration_run(&report, m, NULL) == CMG_OK);
  CHECK(contains(report.ptr, "\"written\":3"));
  cmg_buf_dispose(&report);
  cmg_migration_close(m);
  mem_store_free(&store);
}

/* ---- the reference scenario end to end ----------------------------------------------------- */

static int64_t progress_done;
static int count_progress(const char *object, const char *phase, int64_t done, int64_t total, void *ud) {
  (void)object, (void)phase, (void)total, (void)ud;
  progress_done += done > 0 ? 1 : 0;
  return 0;
}

/* Writes the reference config into the work dir, with the "On Hold" stage a reviewer adds. */
static void write_reference_config(int with_on_hold) {
  char *text = read_file(reference_config);
  const char *anchor = "\"2/8\": [\"partnerships\", \"partner_contract\"]";
  char *at = strstr(text, anchor);
  FILE *f = fopen(path("migration.json"), "wb");
  if (!f || !at) exit(2);
  at += strlen(anchor);
  fwrite(text, 1, (size_t)(at - text), f);
  if (with_on_hold) fputs(", \"2/9\": [\"partnerships\", \"partner_paused\"]", f);
  fputs(at, f);
  fclose(f);
  free(text);
}

/* Seeds the reference sandboxes with the CLI; `owner` gets the manifest's reassign_owner_id. */
static void seed_reference(char *owner, size_t owner_size) {
  char cmd[2048];
  char *json = (char *)malloc(1 << 22);
  size_t got;
  const char *k;
  FILE *p;
  owner[0] = '\0';
  snprintf(cmd, sizeof cmd, "'%s' sandbox seed --dir '%s' --force --json", cli_path, path("sandbox"));
  p = popen(cmd, "r");
  if (!p) exit(2);
  got = fread(json, 1, (1 << 22) - 1, p);
  json[got] = '\0';
  if (pclose(p) == 0 && (k = strstr(json, "\"reassign_owner_id\":\"")) != NULL) {
    size_t i;
    k += strlen("\"reassign_owner_id\":\"");
    for (i = 0; i + 1 < owner_size && k[i] && k[i] != '"'; ++i) owner[i] = k[i];
    owner[i] = '\0';
  }
  free(json);
}

static void test_reference_scenario(void) {
  char cmd[256], owner[64];
  cmg_migration *m = NULL;
  cmg_buf b = CMG_BUF_INIT;
  cmg_run_options ro = CMG_RUN_OPTIONS_INIT;
  cmg_audit_cursor *cur = NULL;
  const char *ev;
  size_t len = 0;
  int64_t n = 0, events = 0;
  int rc, saw_written = 0;

  seed_reference(owner, sizeof owner);
  REQUIRE(owner[0] != '\0');
  write_reference_config(0);
  REQUIRE(cmg_migration_open(&m, NULL, path("migration.json"), NULL) == CMG_OK);

  CHECK(cmg_migration_plan(&b, m, 0, NULL) == CMG_OK);
  CHECK(contains(b.ptr, "\"blocking\":[]"));
  CHECK(contains(b.ptr, "2/9"));
  CHECK_ERR(cmg_migration_run(&b, m, NULL), CMG_EINVALID); /* no sign-off yet */
  CHECK(contains(cmg_error_last()->message, "signed off"));
  CHECK(cmg_migration_plan(&b, m, 1, "Avery") == CMG_OK);

  ro.progress = count_progress;
  CHECK(cmg_migration_run(&b, m, &ro) == CMG_OK);
  CHECK(progress_done > 0);
  CHECK(contains(b.ptr, "\"state\":\"incomplete\""));
  CHECK(cmg_migration_status(&b, m) == CMG_OK);
  CHECK(contains(b.ptr, "\"written\":3716"));
  CHECK(contains(b.ptr, "\"written\":1640"));
  CHECK(contains(b.ptr, "\"written\":5721"));
  CHECK(contains(b.ptr, "\"queued\":279"));

  CHECK(cmg_queue_list(&b, m, "{\"object\":\"deals\",\"reason\":\"unmapped_value\"}", 0, 0) == CMG_OK);
  CHECK(contains(b.ptr, "translation:stage"));
  CHECK(cmg_queue_list(&b, m, "{\"object\":\"deals\",\"reason\":\"unmapped_value\"}", 0, 2) == CMG_OK);
  {
    /* Show the first listed item by its id. */
    char id[128];
    const char *p = strstr(b.ptr, "\"id\":\"");
    const char *q;
    REQUIRE(p != NULL);
    p += 6;
    q = strchr(p, '"');
    REQUIRE(q != NULL && (size_t)(q - p) < sizeof id);
    memcpy(id, p, (size_t)(q - p));
    id[q - p] = '\0';
    CHECK(strncmp(id, "deals/", 6) == 0);
    CHECK(cmg_queue_show(&b, m, id) == CMG_OK);
    CHECK(contains(b.ptr, "dealstage"));
  }
  cmg_migration_close(m);

  /* The reviewer adds the missing stage (a new config version, signed off again), gives the
   * unprovisioned owner's contacts an owner and skips the orphan notes. */
  write_reference_config(1);
  REQUIRE(cmg_migration_open(&m, NULL, path("migration.json"), NULL) == CMG_OK);
  CHECK_ERR(cmg_migration_run(&b, m, NULL), CMG_EINVALID);
  CHECK(cmg_migration_plan(&b, m, 1, "Avery") == CMG_OK);
  CHECK(cmg_queue_list(&b, m, "{\"reason\":\"owner_unprovisioned\",\"object\":\"contacts\"}", 0, 1) == CMG_OK);
  snprintf(cmd, sizeof cmd, "{\"hubspot_owner_id\":\"%s\"}", owner);
  CHECK(cmg_queue_fix(&n, m, "{\"reason\":\"owner_unprovisioned\",\"object\":\"contacts\"}", cmd, "Sam",
                      "reassigned") == CMG_OK);
  CHECK(n == 34);
  CHECK(cmg_queue_skip(&n, m, "{\"reason\":\"orphan_reference\"}", "Sam", "person deleted in the source") == CMG_OK);
  CHECK(n == 12);
  CHECK(cmg_migration_reprocess(&b, m, NULL) == CMG_OK);
  CHECK(contains(b.ptr, "\"queue_open\":0"));
  CHECK(contains(b.ptr, "\"written\":1800"));
  CHECK(contains(b.ptr, "\"written\":3750"));
  CHECK(cmg_migration_reconcile(&b, m) == CMG_OK);
  CHECK(contains(b.ptr, "\"state\":\"complete\""));
  CHECK(contains(b.ptr, "\"complete\":true"));
  CHECK(contains(b.ptr, "\"readback_mismatches\":0"));

  /* The audit log, pulled one event at a time. */
  REQUIRE(cmg_audit_open(&cur, m, NULL) == CMG_OK);
  while ((rc = cmg_audit_next(&ev, &len, cur)) == CMG_OK) {
    ++events;
    if (len != strlen(ev) || ev[0] != '{') break;
    if (strstr(ev, "\"action\":\"written\"")) saw_written = 1;
  }
  CHECK(rc == CMG_ITEROVER);
  CHECK(ev == NULL && len == 0);
  CHECK(cmg_audit_next(&ev, &len, cur) == CMG_ITEROVER);
  printf("audit events: %ld\n", (long)events);
  CHECK(events > 1000);
  CHECK(saw_written);
  cmg_audit_close(cur);
  /* One record's events. */
  REQUIRE(cmg_audit_open(&cur, m, "contacts/1") == CMG_OK);
  events = 0;
  while (cmg_audit_next(&ev, NULL, cur) == CMG_OK) {
    CHECK(contains(ev, "contacts"));
    ++events;
  }
  CHECK(events >= 1);
  cmg_audit_close(cur);

  cmg_buf_dispose(&b);
  cmg_migration_close(m);
}

typedef struct test_case {
  const char *name;
  void (*fn)(void);
} test_case;

static const test_case cases[] = {
    {"version_and_errors", test_version_and_errors},
    {"null_arguments", test_null_arguments},
    {"bad_config", test_bad_config},
    {"unknown_vtable_version", test_unknown_vtable_version},
    {"progress_cancel", test_progress_cancel},
    {"alert_callback", test_alert_callback},
    {"plugin_errors", test_plugin_errors},
    {"plugins_decide", test_plugins_decide},
    {"locked", test_locked},
    {"reference_scenario", test_reference_scenario},
};

int main(int argc, char **argv) {
  size_t i;
  char cmd[1200];
  if (argc != 5) {
    fprintf(stderr, "usage: %s <case> <work_dir> <crmmigrate CLI> <reference migration.json>\n", argv[0]);
    return 2;
  }
  work_dir = argv[2];
  cli_path = argv[3];
  reference_config = argv[4];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", work_dir, work_dir);
  if (system(cmd) != 0) return 2;
  for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    if (strcmp(cases[i].name, argv[1]) != 0) continue;
    cases[i].fn();
    if (failures) fprintf(stderr, "%s: %d check(s) failed\n", argv[1], failures);
    else printf("%s: ok\n", argv[1]);
    return failures ? 1 : 0;
  }
  fprintf(stderr, "unknown case %s\n", argv[1]);
  return 2;
}
