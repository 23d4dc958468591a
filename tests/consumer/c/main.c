/*
 * consumer_c <dir>: links the installed libcrmmigrate_c, checks the version and an error path, then
 * runs the migration in <dir> (a copy of tests/consumer/same_report) and checks its report.
 */
#include <stdio.h>
#include <string.h>

#include "crmmigrate/crmmigrate.h"

int main(int argc, char **argv) {
  char path[4096];
  int major = -1, minor = -1, patch = -1;
  cmg_migration *m = NULL;
  cmg_buf report = CMG_BUF_INIT;
  int rc;
  if (argc != 2) return 2;
  if (cmg_version(&major, &minor, &patch) != CMG_OK || major != CMG_VERSION_MAJOR || minor != CMG_VERSION_MINOR ||
      patch != CMG_VERSION_PATCH) {
    fprintf(stderr, "version mismatch: library %d.%d.%d, header %d.%d.%d\n", major, minor, patch, CMG_VERSION_MAJOR,
            CMG_VERSION_MINOR, CMG_VERSION_PATCH);
    return 1;
  }
  if (cmg_migration_open(&m, "{", NULL, NULL) != CMG_ECONFIG || m != NULL || cmg_error_last()->message[0] == '\0') {
    fprintf(stderr, "a broken config was not refused with CMG_ECONFIG\n");
    return 1;
  }
  snprintf(path, sizeof path, "%s/migration.json", argv[1]);
  rc = cmg_migration_open(&m, NULL, path, NULL);
  if (rc == CMG_OK) rc = cmg_migration_plan(&report, m, 1, "Consumer");
  if (rc == CMG_OK) rc = cmg_migration_run(&report, m, NULL);
  if (rc != CMG_OK) {
    fprintf(stderr, "migration: %s\n", cmg_error_last()->message);
    cmg_buf_dispose(&report);
    cmg_migration_close(m);
    return 1;
  }
  printf("crmmigrate %d.%d.%d (C): %s\n", major, minor, patch, report.ptr);
  rc = strstr(report.ptr, "\"written\":3,\"merged\":1,\"queued\":1") != NULL ? 0 : 1;
  cmg_buf_dispose(&report);
  cmg_migration_close(m);
  return rc;
}
