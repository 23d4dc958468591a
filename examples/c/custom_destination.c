/*
 * custom_destination.c: a destination implemented in C (an in-memory store, memory_destination.h)
 * receiving a small migration from a CSV file.
 *
 *   example_c_custom_destination <work dir>
 *
 * Writes people.csv (five rows, two of them the same person) and a config into <work dir>, opens
 * the migration with the C destination, signs the plan off, runs it, reconciles, and prints what
 * the store holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crmmigrate/crmmigrate.h"
#include "memory_destination.h"

static const char *schema_json =
    "{\"objects\":{\"contacts\":{\"id_property\":\"crm_source_id\",\"fields\":["
    "{\"name\":\"email\",\"type\":\"email\"},{\"name\":\"firstname\",\"type\":\"string\",\"required\":true},"
    "{\"name\":\"lastname\",\"type\":\"string\"},{\"name\":\"crm_source_id\",\"type\":\"string\",\"unique\":true}]}},"
    "\"users\":[]}";

static const char *config_json =
    "{\"name\": \"csv-to-memory\","
    " \"source\": {\"connector\": \"files\", \"options\": {\"objects\": {\"people\": {\"path\": \"people.csv\", \"id\": \"id\"}}}},"
    " \"destination\": {\"connector\": \"memory\"},"
    " \"objects\": [{\"name\": \"contacts\", \"source\": \"people\", \"destination\": \"contacts\","
    "   \"fields\": {\"email\": \"email\", \"first\": \"firstname\", \"last\": \"lastname\"},"
    "   \"dedup\": {\"keys\": [\"email\"]}}]}";

static int fail(const char *what) {
  fprintf(stderr, "%s: %s (%s)\n", what, cmg_error_last()->message, cmg_error_code_name(cmg_error_last()->code));
  return 1;
}

int main(int argc, char **argv) {
  char cmd[2048], csv[1024];
  cmg_open_options opts = CMG_OPEN_OPTIONS_INIT;
  cmg_migration *m = NULL;
  cmg_buf report = CMG_BUF_INIT;
  mem_store store;
  FILE *f;
  size_t i;
  if (argc != 2) {
    fprintf(stderr, "usage: %s <work dir>\n", argv[0]);
    return 2;
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", argv[1], argv[1]);
  if (system(cmd) != 0) return 2;
  snprintf(csv, sizeof csv, "%s/people.csv", argv[1]);
  f = fopen(csv, "wb");
  if (!f) return 2;
  fputs("id,email,first,last\n"
        "1,ada@example.com,Ada,Lovelace\n"
        "2,grace@example.com,Grace,Hopper\n"
        "3,ADA@Example.com ,Ada,\n"
        "4,alan@example.com,Alan,Turing\n"
        "5,edsger@example.com,Edsger,Dijkstra\n",
        f);
  fclose(f);

  memset(&store, 0, sizeof store);
  store.schema_json = schema_json;
  opts.base_dir = argv[1];
  opts.destination = &mem_destination_vtable;
  opts.destination_user_data = &store;
  if (cmg_migration_open(&m, config_json, NULL, &opts) != CMG_OK) return fail("open");
  if (cmg_migration_plan(&report, m, 1, "Example Reviewer") != CMG_OK) return fail("plan");
  if (cmg_migration_run(&report, m, NULL) != CMG_OK) return fail("run");
  printf("run: %s\n", report.ptr);
  if (cmg_migration_reconcile(&report, m) != CMG_OK) return fail("reconcile");
  printf("reconcile: %s\n", report.ptr);
  cmg_buf_dispose(&report);
  cmg_migration_close(m);

  printf("records in the C destination: %lu\n", (unsigned long)store.count);
  for (i = 0; i < store.count; ++i) printf("  %s %s\n", store.records[i].id, store.records[i].fields);
  printf("destroy called %d time(s)\n", store.destroyed);
  mem_store_free(&store);
  return 0;
}
