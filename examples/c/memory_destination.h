/*
 * memory_destination.h: a destination implemented in C that keeps records in memory, for the C
 * examples and tests. It implements every method of cmg_destination_vtable over one schema given
 * as JSON; records are stored as {object, id, idempotency key, fields JSON text}.
 * Header-only, C99; single-threaded like the library's calls into it.
 */
#ifndef CMG_EXAMPLES_MEMORY_DESTINATION_H
#define CMG_EXAMPLES_MEMORY_DESTINATION_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crmmigrate/sys/destination.h"
#include "mini_json.h"

typedef struct mem_record {
  char object[64];
  char id[32];
  char *key;    /* idempotency key as a JSON token ("\"42\""), or NULL */
  char *fields; /* JSON object text */
} mem_record;

typedef struct mem_store {
  const char *schema_json;
  mem_record *records;
  size_t count, capacity;
  int next_id;
  int destroyed; /* how many times destroy ran (tests check it is exactly once) */
  int writes;    /* write calls */
} mem_store;

/* A growable text buffer. */
typedef struct mem_text {
  char *ptr;
  size_t len, cap;
} mem_text;

static void mem_text_add(mem_text *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    size_t cap = (t->cap ? t->cap * 2 : 256);
    while (cap < t->len + n + 1) cap *= 2;
    t->ptr = (char *)realloc(t->ptr, cap);
    t->cap = cap;
  }
  memcpy(t->ptr + t->len, s, n);
  t->len += n;
  t->ptr[t->len] = '\0';
}

static void mem_text_str(mem_text *t, const char *s) { mem_text_add(t, s, strlen(s)); }
static void mem_text_span(mem_text *t, mj_span s) { mem_text_add(t, s.begin, (size_t)(s.end - s.begin)); }

static char *mem_dup(mj_span s) {
  size_t n = (size_t)(s.end - s.begin);
  char *p = (char *)malloc(n + 1);
  memcpy(p, s.begin, n);
  p[n] = '\0';
  return p;
}

static void mem_record_json(mem_text *t, const mem_record *r) {
  mem_text_str(t, "{\"object\":\"");
  mem_text_str(t, r->object);
  mem_text_str(t, "\",\"id\":\"");
  mem_text_str(t, r->id);
  mem_text_str(t, "\",\"fields\":");
  mem_text_str(t, r->fields);
  mem_text_str(t, "}");
}

static int mem_schema(cmg_buf *out, void *ud) {
  const mem_store *s = (const mem_store *)ud;
  return cmg_buf_set(out, s->schema_json, strlen(s->schema_json));
}

static int mem_count(int64_t *out, const char *object, void *ud) {
  const mem_store *s = (const mem_store *)ud;
  size_t i;
  *out = 0;
  for (i = 0; i < s->count; ++i)
    if (strcmp(s->records[i].object, object) == 0) ++*out;
  return 0;
}

/* The list stream: one batch holding every record of the object. */
typedef struct mem_list {
  mem_text batch;
  int served;
} mem_list;

static int mem_list_next(cmg_record_stream *stream, const char **out) {
  mem_list *l = (mem_list *)stream->private_data;
  *out = l->served ? NULL : l->batch.ptr;
  l->served = 1;
  return 0;
}

static const char *mem_list_error(cmg_record_stream *stream) {
  (void)stream;
  return NULL;
}

static void mem_list_release(cmg_record_stream *stream) {
  mem_list *l = (mem_list *)stream->private_data;
  free(l->batch.ptr);
  free(l);
  stream->release = NULL;
}

static int mem_list_open(cmg_record_stream *out, const char *object, void *ud) {
  const mem_store *s = (const mem_store *)ud;
  mem_list *l = (mem_list *)calloc(1, sizeof *l);
  size_t i;
  int first = 1;
  mem_text_str(&l->batch, "[");
  for (i = 0; i < s->count; ++i) {
    if (strcmp(s->records[i].object, object) != 0) continue;
    if (!first) mem_text_str(&l->batch, ",");
    mem_record_json(&l->batch, &s->records[i]);
    first = 0;
  }
  mem_text_str(&l->batch, "]");
  out->next = mem_list_next;
  out->last_error = mem_list_error;
  out->release = mem_list_release;
  out->private_data = l;
  return 0;
}

static int mem_find(cmg_buf *out, const char *object, const char *field, const char *values_json, void *ud) {
  const mem_store *s = (const mem_store *)ud;
  mem_text t = {NULL, 0, 0};
  size_t i;
  int first = 1, rc;
  mem_text_str(&t, "[");
  for (i = 0; i < s->count; ++i) {
    const char *pos = NULL;
    mj_span v, want;
    if (strcmp(s->records[i].object, object) != 0) continue;
    v = mj_get(mj_whole(s->records[i].fields), field);
    if (!v.begin) continue;
    while (mj_next(mj_whole(values_json), &pos, NULL, &want)) {
      if (want.end - want.begin == v.end - v.begin && strncmp(want.begin, v.begin, (size_t)(v.end - v.begin)) == 0) {
        if (!first) mem_text_str(&t, ",");
        mem_record_json(&t, &s->records[i]);
        first = 0;
        break;
      }
    }
  }
  mem_text_str(&t, "]");
  rc = cmg_buf_set(out, t.ptr, t.len);
  free(t.ptr);
  return rc;
}

static mem_record *mem_by_id(mem_store *s, const char *object, mj_span id) {
  size_t i, n = (size_t)(id.end - id.begin);
  for (i = 0; i < s->count; ++i)
    if (strcmp(s->records[i].object, object) == 0 && n >= 2 && strlen(s->records[i].id) == n - 2 &&
        strncmp(s->records[i].id, id.begin + 1, n - 2) == 0)
      return &s->records[i];
  return NULL;
}

/* Applies `changes` (an object) on top of the record's fields: later members win when parsed. */
static void mem_update(mem_record *r, mj_span changes) {
  mem_text t = {NULL, 0, 0};
  const char *pos = NULL;
  mj_span k, v;
  int first = 1;
  mem_text_str(&t, "{");
  while (mj_next(mj_whole(r->fields), &pos, &k, &v)) {
    char name[256];
    size_t n = (size_t)(k.end - k.begin);
    if (n < 2 || n - 2 >= sizeof name) continue;
    memcpy(name, k.begin + 1, n - 2);
    name[n - 2] = '\0';
    if (mj_get(changes, name).begin) continue; /* replaced below */
    if (!first) mem_text_str(&t, ",");
    mem_text_span(&t, k);
    mem_text_str(&t, ":");
    mem_text_span(&t, v);
    first = 0;
  }
  pos = NULL;
  while (mj_next(changes, &pos, &k, &v)) {
    if (!first) mem_text_str(&t, ",");
    mem_text_span(&t, k);
    mem_text_str(&t, ":");
    mem_text_span(&t, v);
    first = 0;
  }
  mem_text_str(&t, "}");
  free(r->fields);
  r->fields = t.ptr;
}

static mem_record *mem_add(mem_store *s, const char *object, mj_span key, mj_span fields) {
  mem_record *r;
  if (s->count == s->capacity) {
    s->capacity = s->capacity ? s->capacity * 2 : 16;
    s->records = (mem_record *)realloc(s->records, s->capacity * sizeof *s->records);
  }
  r = &s->records[s->count++];
  memset(r, 0, sizeof *r);
  snprintf(r->object, sizeof r->object, "%s", object);
  snprintf(r->id, sizeof r->id, "m%d", ++s->next_id);
  r->key = key.begin ? mem_dup(key) : NULL;
  r->fields = fields.begin ? mem_dup(fields) : mem_dup(mj_whole("{}"));
  return r;
}

static int mem_write(cmg_buf *out, const char *object, const char *ops_json, void *ud) {
  mem_store *s = (mem_store *)ud;
  mem_text t = {NULL, 0, 0};
  const char *pos = NULL;
  mj_span op;
  int first = 1, rc;
  ++s->writes;
  mem_text_str(&t, "[");
  while (mj_next(mj_whole(ops_json), &pos, NULL, &op)) {
    mj_span fields = mj_get(op, "fields");
    mem_record *r = NULL;
    const char *outcome = "updated";
    if (mj_is(mj_get(op, "kind"), "\"update\"")) {
      r = mem_by_id(s, object, mj_get(op, "id"));
    } else {
      mj_span key = mj_get(op, "idempotency_key");
      size_t i;
      for (i = 0; i < s->count && !r; ++i)
        if (s->records[i].key && strcmp(s->records[i].object, object) == 0 &&
            strlen(s->records[i].key) == (size_t)(key.end - key.begin) &&
            strncmp(s->records[i].key, key.begin, (size_t)(key.end - key.begin)) == 0)
          r = &s->records[i];
      if (!r) {
        r = mem_add(s, object, key, fields);
        outcome = "created";
        fields.begin = NULL;
      }
    }
    if (!first) mem_text_str(&t, ",");
    first = 0;
    if (!r) {
      mem_text_str(&t, "{\"outcome\":\"failed\",\"status\":404,\"message\":\"no such record\"}");
      continue;
    }
    if (fields.begin) mem_update(r, fields);
    mem_text_str(&t, "{\"outcome\":\"");
    mem_text_str(&t, outcome);
    mem_text_str(&t, "\",\"id\":\"");
    mem_text_str(&t, r->id);
    mem_text_str(&t, "\"}");
  }
  mem_text_str(&t, "]");
  rc = cmg_buf_set(out, t.ptr, t.len);
  free(t.ptr);
  return rc;
}

static int mem_read(cmg_buf *out, const char *object, const char *ids_json, void *ud) {
  mem_store *s = (mem_store *)ud;
  mem_text t = {NULL, 0, 0};
  const char *pos = NULL;
  mj_span id;
  int first = 1, rc;
  mem_text_str(&t, "[");
  while (mj_next(mj_whole(ids_json), &pos, NULL, &id)) {
    mem_record *r = mem_by_id(s, object, id);
    if (!first) mem_text_str(&t, ",");
    first = 0;
    if (r) mem_record_json(&t, r);
    else mem_text_str(&t, "null");
  }
  mem_text_str(&t, "]");
  rc = cmg_buf_set(out, t.ptr, t.len);
  free(t.ptr);
  return rc;
}

/* Counts the destroy call; the store itself belongs to whoever created it (see mem_store_free). */
static void mem_destroy(void *ud) { ++((mem_store *)ud)->destroyed; }

static void mem_store_free(mem_store *s) {
  size_t i;
  for (i = 0; i < s->count; ++i) {
    free(s->records[i].key);
    free(s->records[i].fields);
  }
  free(s->records);
  s->records = NULL;
  s->count = s->capacity = 0;
}

static const cmg_destination_vtable mem_destination_vtable = {
    CMG_DESTINATION_VTABLE_VERSION, mem_schema, mem_count, mem_list_open, mem_find, mem_write, mem_read, mem_destroy};

#endif /* CMG_EXAMPLES_MEMORY_DESTINATION_H */
