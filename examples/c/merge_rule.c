/*
 * merge_rule.c: a custom merge rule written in C, plugged into the reference migration.
 *
 *   example_c_merge_rule <crmmigrate CLI> <examples/reference/migration.json> <work dir>
 *
 * Seeds the reference sandboxes into <work dir>/sandbox with the CLI, copies the config next to
 * them, registers the rule "keep_existing_fill_phone" on contacts (never change a field the
 * destination already has, but add a phone number when the destination has none), signs the plan
 * off, runs, and prints the report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crmmigrate/crmmigrate.h"
#include "crmmigrate/sys/merge_rule.h"
#include "mini_json.h"

typedef struct rule_stats {
  long calls;
  long phones_added;
} rule_stats;

static int blank(mj_span v) { return !v.begin || mj_is(v, "null") || mj_is(v, "\"\""); }

/* Keeps the destination record as it is, except that a missing phone is filled from the source. */
static int keep_existing_fill_phone(cmg_buf *out, const char *source_json, const char *destination_json,
                                    void *user_data) {
  rule_stats *stats = (rule_stats *)user_data;
  mj_span src_phone = mj_get(mj_get(mj_whole(source_json), "fields"), "phone");
  mj_span dst_phone = mj_get(mj_get(mj_whole(destination_json), "fields"), "phone");
  char outcome[512];
  int n;
  ++stats->calls; /* the pipeline may call from several threads; this example runs single-threaded */
  if (!blank(src_phone) && blank(dst_phone) && src_phone.end - src_phone.begin < 200) {
    ++stats->phones_added;
    n = snprintf(outcome, sizeof outcome,
                 "{\"kind\":\"merged\",\"changes\":{\"phone\":%.*s},\"rules_applied\":[\"phone:fill_blank\"]}",
                 (int)(src_phone.end - src_phone.begin), src_phone.begin);
  } else {
    n = snprintf(outcome, sizeof outcome, "{\"kind\":\"merged\",\"changes\":{}}");
  }
  if (n < 0 || (size_t)n >= sizeof outcome) {
    cmg_error_set_str(CMG_EPLUGIN, "outcome too long");
    return -1;
  }
  return cmg_buf_set(out, outcome, (size_t)n);
}

static const cmg_merge_rule_vtable rule_vtable = {CMG_MERGE_RULE_VTABLE_VERSION, "keep_existing_fill_phone",
                                                  keep_existing_fill_phone, NULL};

static int fail(const char *what) {
  fprintf(stderr, "%s: %s (%s)\n", what, cmg_error_last()->message, cmg_error_code_name(cmg_error_last()->code));
  return 1;
}

int main(int argc, char **argv) {
  char cmd[4096], config_path[1024];
  cmg_migration *m = NULL;
  cmg_buf report = CMG_BUF_INIT;
  rule_stats stats = {0, 0};
  FILE *in, *out;
  int c, rc;
  if (argc != 4) {
    fprintf(stderr, "usage: %s <crmmigrate CLI> <reference migration.json> <work dir>\n", argv[0]);
    return 2;
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && '%s' sandbox seed --dir '%s/sandbox' --force", argv[3],
           argv[3], argv[1], argv[3]);
  if (system(cmd) != 0) return 2;
  /* The config's relative paths ("sandbox/source", the state directory) resolve next to it. */
  snprintf(config_path, sizeof config_path, "%s/migration.json", argv[3]);
  in = fopen(argv[2], "rb");
  out = fopen(config_path, "wb");
  if (!in || !out) return 2;
  while ((c = fgetc(in)) != EOF) fputc(c, out);
  fclose(in);
  fclose(out);

  if (cmg_migration_open(&m, NULL, config_path, NULL) != CMG_OK) return fail("open");
  if (cmg_migration_set_merge_rule(m, "contacts", &rule_vtable, &stats) != CMG_OK) return fail("set_merge_rule");
  if (cmg_migration_plan(&report, m, 1, "Example Reviewer") != CMG_OK) return fail("plan");
  rc = cmg_migration_run(&report, m, NULL);
  if (rc != CMG_OK) return fail("run");
  printf("report: %s\n", report.ptr);
  printf("merge rule calls: %ld, phones added: %ld\n", stats.calls, stats.phones_added);
  cmg_buf_dispose(&report);
  cmg_migration_close(m);
  return 0;
}
