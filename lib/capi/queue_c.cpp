// cmg_queue_* and cmg_audit_*: the review queue and the audit log.
#include "capi/capi_internal.hpp"

using namespace cmg::capi;
namespace json = boost::json;

namespace {

int parse_filter(const char* fn, const char* filter_json, cmg::QueueFilter& f) {
  if (!filter_json || !*filter_json) return CMG_OK;
  json::value v;
  std::string err;
  if (!parse_json(filter_json, v, err)) return invalid(std::string(fn) + ": filter: " + err);
  const auto* o = v.if_object();
  if (!o) return invalid(std::string(fn) + ": filter: expected a JSON object");
  const std::pair<const char*, std::string*> members[] = {{"id", &f.id},         {"reason", &f.reason},
                                                          {"object", &f.object}, {"status", &f.status},
                                                          {"field", &f.field},   {"text", &f.text}};
  for (const auto& [k, val] : *o) {
    std::string* target = nullptr;
    for (const auto& [name, slot] : members)
      if (k == name) target = slot;
    if (!target)
      return invalid(std::string(fn) + ": filter: unknown member \"" + std::string(k) +
                     "\" (allowed: id, reason, object, status, field, text)");
    if (!val.is_string()) return invalid(std::string(fn) + ": filter: \"" + std::string(k) + "\" must be a string");
    *target = std::string(val.get_string());
  }
  return CMG_OK;
}

}  // namespace

extern "C" {

int cmg_queue_list(cmg_buf* out_json, cmg_migration* migration, const char* filter_json, size_t offset, size_t limit) {
  return guard("cmg_queue_list", [&]() -> int {
    if (!out_json) return invalid("cmg_queue_list: out_json is NULL");
    if (!migration) return invalid("cmg_queue_list: migration is NULL");
    cmg::QueueFilter f;
    if (int rc = parse_filter("cmg_queue_list", filter_json, f)) return rc;
    auto items = migration->migration->queue_list(f, offset, limit == 0 ? SIZE_MAX : limit);
    if (!items.is_ok()) return fail(items.status());
    json::array a;
    for (auto& item : *items) a.emplace_back(std::move(item));
    buf_json(out_json, a);
    return CMG_OK;
  });
}

int cmg_queue_show(cmg_buf* out_json, cmg_migration* migration, const char* item_id) {
  return guard("cmg_queue_show", [&]() -> int {
    if (!out_json) return invalid("cmg_queue_show: out_json is NULL");
    if (!migration) return invalid("cmg_queue_show: migration is NULL");
    if (!item_id || !*item_id) return invalid("cmg_queue_show: item_id is NULL or empty");
    cmg::QueueFilter f;
    f.id = item_id;
    f.status = "";
    auto items = migration->migration->queue_list(f, 0, 1);
    if (!items.is_ok()) return fail(items.status());
    if (items->empty()) {
      // The default filter covers open and fixed items; look at closed ones too.
      for (const char* st : {"resolved", "skipped"}) {
        f.status = st;
        items = migration->migration->queue_list(f, 0, 1);
        if (!items.is_ok()) return fail(items.status());
        if (!items->empty()) break;
      }
    }
    if (items->empty()) return set_error(CMG_ENOTFOUND, std::string("cmg_queue_show: no queue item '") + item_id + "'");
    buf_json(out_json, items->front());
    return CMG_OK;
  });
}

int cmg_queue_fix(int64_t* out_count, cmg_migration* migration, const char* filter_json, const char* set_json,
                  const char* reviewer, const char* note) {
  return guard("cmg_queue_fix", [&]() -> int {
    if (out_count) *out_count = 0;
    if (!migration) return invalid("cmg_queue_fix: migration is NULL");
    if (!set_json) return invalid("cmg_queue_fix: set_json is NULL");
    if (!reviewer || !*reviewer) return invalid("cmg_queue_fix: a reviewer is required");
    cmg::QueueFilter f;
    if (int rc = parse_filter("cmg_queue_fix", filter_json, f)) return rc;
    json::value set;
    std::string err;
    if (!parse_json(set_json, set, err)) return invalid("cmg_queue_fix: set_json: " + err);
    if (!set.is_object()) return invalid("cmg_queue_fix: set_json: expected a JSON object {field: value}");
    auto n = migration->migration->queue_fix(f, set.get_object(), reviewer, note ? note : "");
    if (!n.is_ok()) return fail(n.status());
    if (out_count) *out_count = *n;
    return CMG_OK;
  });
}

int cmg_queue_skip(int64_t* out_count, cmg_migration* migration, const char* filter_json, const char* reviewer,
                   const char* note) {
  return guard("cmg_queue_skip", [&]() -> int {
    if (out_count) *out_count = 0;
    if (!migration) return invalid("cmg_queue_skip: migration is NULL");
    if (!reviewer || !*reviewer) return invalid("cmg_queue_skip: a reviewer is required");
    if (!note || !*note) return invalid("cmg_queue_skip: a note is required");
    cmg::QueueFilter f;
    if (int rc = parse_filter("cmg_queue_skip", filter_json, f)) return rc;
    auto n = migration->migration->queue_skip(f, reviewer, note);
    if (!n.is_ok()) return fail(n.status());
    if (out_count) *out_count = *n;
    return CMG_OK;
  });
}

int cmg_audit_open(cmg_audit_cursor** out, cmg_migration* migration, const char* record) {
  return guard("cmg_audit_open", [&]() -> int {
    if (out) *out = nullptr;
    if (!out) return invalid("cmg_audit_open: out is NULL");
    if (!migration) return invalid("cmg_audit_open: migration is NULL");
    // The C++ API pushes events inside one read transaction; the cursor keeps that snapshot.
    auto cursor = std::make_unique<cmg_audit_cursor>();
    cmg::Status st = migration->migration->audit(record ? record : "", [&](const json::object& e) {
      cursor->events.push_back(json::serialize(e));
      return true;
    });
    if (!st.is_ok()) return fail(st);
    *out = cursor.release();
    return CMG_OK;
  });
}

int cmg_audit_next(const char** out_event_json, size_t* out_len, cmg_audit_cursor* cursor) {
  return guard("cmg_audit_next", [&]() -> int {
    if (out_event_json) *out_event_json = nullptr;
    if (out_len) *out_len = 0;
    if (!out_event_json) return invalid("cmg_audit_next: out_event_json is NULL");
    if (!cursor) return invalid("cmg_audit_next: cursor is NULL");
    if (cursor->next > 0) std::string().swap(cursor->events[cursor->next - 1]);  // borrowed until this call
    if (cursor->next >= cursor->events.size()) return CMG_ITEROVER;
    const std::string& e = cursor->events[cursor->next++];
    *out_event_json = e.c_str();
    if (out_len) *out_len = e.size();
    return CMG_OK;
  });
}

void cmg_audit_close(cmg_audit_cursor* cursor) {
  guard_void("cmg_audit_close", [&] { delete cursor; });
}

}  // extern "C"
