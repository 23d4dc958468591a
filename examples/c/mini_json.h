/*
 * mini_json.h: just enough JSON scanning for the C examples and tests (no allocation, no
 * unescaping). A value is a span [begin, end) of the original text. Header-only, C99.
 */
#ifndef CMG_EXAMPLES_MINI_JSON_H
#define CMG_EXAMPLES_MINI_JSON_H

#include <stddef.h>
#include <string.h>

typedef struct mj_span {
  const char *begin;
  const char *end;
} mj_span;

static const char *mj_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  return p;
}

/* The end of the value starting at p (string, number, literal, object or array). */
static const char *mj_skip(const char *p, const char *end) {
  int depth = 0;
  p = mj_ws(p, end);
  if (p >= end) return end;
  if (*p == '"') {
    for (++p; p < end && *p != '"'; ++p)
      if (*p == '\\') ++p;
    return p < end ? p + 1 : end;
  }
  if (*p != '{' && *p != '[') {
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n') ++p;
    return p;
  }
  for (; p < end; ++p) {
    if (*p == '"') {
      for (++p; p < end && *p != '"'; ++p)
        if (*p == '\\') ++p;
    } else if (*p == '{' || *p == '[') {
      ++depth;
    } else if (*p == '}' || *p == ']') {
      if (--depth == 0) return p + 1;
    }
  }
  return end;
}

/* Iterates the elements of an array (or the members of an object, giving each key in *key).
 * Start with *pos = NULL. Returns 1 and sets *value for each element, 0 at the end. */
static int mj_next(mj_span container, const char **pos, mj_span *key, mj_span *value) {
  const char *p = *pos ? *pos : mj_ws(container.begin, container.end) + 1;
  const char *end = container.end;
  p = mj_ws(p, end);
  if (p < end && *p == ',') p = mj_ws(p + 1, end);
  if (p >= end || *p == ']' || *p == '}') return 0;
  if (*mj_ws(container.begin, end) == '{') {
    if (key) {
      key->begin = p;
      key->end = mj_skip(p, end);
    }
    p = mj_ws(mj_skip(p, end), end);
    if (p < end && *p == ':') ++p;
    p = mj_ws(p, end);
  }
  value->begin = p;
  value->end = mj_skip(p, end);
  *pos = value->end;
  return 1;
}

/* The value of member `name` of an object, or an empty span. */
static mj_span mj_get(mj_span object, const char *name) {
  const char *pos = NULL;
  mj_span k = {NULL, NULL}, v, none = {NULL, NULL};
  size_t n = strlen(name);
  while (mj_next(object, &pos, &k, &v))
    if ((size_t)(k.end - k.begin) == n + 2 && strncmp(k.begin + 1, name, n) == 0) return v;
  return none;
}

static int mj_is(mj_span s, const char *literal) {
  size_t n = strlen(literal);
  return s.begin && (size_t)(s.end - s.begin) == n && strncmp(s.begin, literal, n) == 0;
}

static mj_span mj_whole(const char *text) {
  mj_span s;
  s.begin = text;
  s.end = text + strlen(text);
  return s;
}

#endif /* CMG_EXAMPLES_MINI_JSON_H */
