/*
 * same_report_c: runs the migration of <dir>/migration.json through the C API (plan sign-off, then
 * run) and prints the run report, then the reconcile report (one line each), for the cross-face test (tests/consumer/same_report.cmake).
 */
#include <stdio.h>

#include "crmmigrate/crmmigrate.h"

int main(int argc, char **argv) {
  char path[4096];
  cmg_migration *m = NULL;
  cmg_buf out = CMG_BUF_INIT;
  int rc;
  if (argc != 2) {
    fprintf(stderr, "usage: %s <dir holding migration.json>\n", argv[0]);
    return 2;
  }
  snprintf(path, sizeof path, "%s/migration.json", argv[1]);
  rc = cmg_migration_open(&m, NULL, path, NULL);
  if (rc == CMG_OK) rc = cmg_migration_plan(&out, m, 1, "Cross-face Test");
  if (rc == CMG_OK) rc = cmg_migration_run(&out, m, NULL);
  if (rc != CMG_OK) {
    fprintf(stderr, "same_report_c: %s (%s)\n", cmg_error_last()->message, cmg_error_code_name(rc));
    cmg_buf_dispose(&out);
    cmg_migration_close(m);
    return 1;
  }
  printf("%s\n", out.ptr);
  if (cmg_migration_reconcile(&out, m) != CMG_OK) {
    fprintf(stderr, "same_report_c: reconcile: %s\n", cmg_error_last()->message);
    cmg_buf_dispose(&out);
    cmg_migration_close(m);
    return 1;
  }
  printf("%s\n", out.ptr);
  cmg_buf_dispose(&out);
  cmg_migration_close(m);
  return 0;
}
