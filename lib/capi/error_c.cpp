// Version, last error and buffers: the parts of crmmigrate.h that hold no migration.
#include <cstdlib>
#include <cstring>

#include "capi/capi_internal.hpp"

namespace cmg::capi {
namespace {

struct ThreadError {
  cmg_error view{CMG_OK, ""};
  std::string message;
};

ThreadError& thread_error() noexcept {
  static thread_local ThreadError e;
  return e;
}

}  // namespace

int set_error(int code, std::string_view message) noexcept {
  ThreadError& e = thread_error();
  e.view.code = code;
  try {
    e.message.assign(message.data(), message.size());
    e.view.message = e.message.c_str();
  } catch (...) {
    e.view.message = "out of memory while recording an error";
  }
  return code;
}

void clear_error() noexcept {
  ThreadError& e = thread_error();
  e.view.code = CMG_OK;
  e.message.clear();
  e.view.message = e.message.c_str();
}

std::string last_message() { return thread_error().message; }

int to_c_code(Code code) noexcept {
  switch (code) {
    case Code::kOk: return CMG_OK;
    case Code::kInvalidArgument: return CMG_EINVALID;
    case Code::kConfig: return CMG_ECONFIG;
    case Code::kParse: return CMG_EPARSE;
    case Code::kNotFound: return CMG_ENOTFOUND;
    case Code::kAlreadyExists: return CMG_EEXISTS;
    case Code::kLocked: return CMG_ELOCKED;
    case Code::kUnavailable: return CMG_EUNAVAILABLE;
    case Code::kPermissionDenied: return CMG_EPERMISSION;
    case Code::kIO: return CMG_EIO;
    case Code::kStorage: return CMG_ESTORAGE;
    case Code::kCancelled: return CMG_EUSER;
    case Code::kPlugin: return CMG_EPLUGIN;
    case Code::kInternal: return CMG_EINTERNAL;
  }
  return CMG_EINTERNAL;
}

int fail(const Status& st) noexcept {
  if (st.is_ok()) return CMG_OK;
  return set_error(to_c_code(st.code()), st.message());
}

void buf_assign(cmg_buf* out, std::string_view text) {
  char* p = static_cast<char*>(std::malloc(text.size() + 1));
  if (!p) throw std::bad_alloc();
  if (!text.empty()) std::memcpy(p, text.data(), text.size());
  p[text.size()] = '\0';
  cmg_buf_dispose(out);
  out->ptr = p;
  out->size = text.size();
}

void buf_json(cmg_buf* out, const boost::json::value& v) { buf_assign(out, boost::json::serialize(v)); }

bool parse_json(std::string_view text, boost::json::value& out, std::string& error) {
  boost::json::error_code ec;
  out = boost::json::parse(text, ec);
  if (ec) {
    error = "invalid JSON: " + ec.message();
    return false;
  }
  return true;
}

bool record_from_plugin_json(const boost::json::value& v, std::string_view default_object, Record& out,
                             std::string& error) {
  const auto* o = v.if_object();
  if (!o) {
    error = "a record must be a JSON object {\"id\", \"updated_at\", \"fields\"}";
    return false;
  }
  out = Record{};
  out.object = std::string(default_object);
  if (const auto* obj = o->if_contains("object")) {
    if (!obj->is_string()) {
      error = "record \"object\" must be a string";
      return false;
    }
    out.object = std::string(obj->get_string());
  }
  const auto* id = o->if_contains("id");
  if (id && id->is_string()) {
    out.id = std::string(id->get_string());
  } else if (id && (id->is_int64() || id->is_uint64())) {
    out.id = value_to_text(*id);
  } else {
    error = "record without a string \"id\"";
    return false;
  }
  if (const auto* u = o->if_contains("updated_at")) {
    if (u->is_int64()) out.updated_at = u->get_int64();
    else if (u->is_uint64()) out.updated_at = static_cast<std::int64_t>(u->get_uint64());
    else if (u->is_double()) out.updated_at = static_cast<std::int64_t>(u->get_double());
    else if (!u->is_null()) {
      error = "record " + out.id + ": \"updated_at\" must be Unix milliseconds";
      return false;
    }
  }
  if (const auto* f = o->if_contains("fields")) {
    if (!f->is_object()) {
      error = "record " + out.id + ": \"fields\" must be a JSON object";
      return false;
    }
    out.fields = f->get_object();
  }
  return true;
}

std::string plugin_message(std::string_view who, int rc, const char* fallback) {
  std::string msg = fallback && *fallback ? std::string(fallback) : last_message();
  if (msg.empty()) msg = "failed with code " + std::to_string(rc) + " and no message (call cmg_error_set_str())";
  return who.empty() ? msg : std::string(who) + ": " + msg;
}

}  // namespace cmg::capi

using namespace cmg::capi;

extern "C" {

int cmg_version(int* major, int* minor, int* patch) {
  return guard("cmg_version", [&]() -> int {
    if (major) *major = CMG_VERSION_MAJOR;
    if (minor) *minor = CMG_VERSION_MINOR;
    if (patch) *patch = CMG_VERSION_PATCH;
    return CMG_OK;
  });
}

const cmg_error* cmg_error_last(void) { return &thread_error().view; }

void cmg_error_set_str(int code, const char* message) { set_error(code, message ? message : ""); }

void cmg_error_clear(void) { clear_error(); }

const char* cmg_error_code_name(int code) {
  switch (code) {
    case CMG_OK: return "ok";
    case CMG_EINVALID: return "invalid";
    case CMG_ECONFIG: return "config";
    case CMG_EPARSE: return "parse";
    case CMG_ENOTFOUND: return "not_found";
    case CMG_EEXISTS: return "exists";
    case CMG_ELOCKED: return "locked";
    case CMG_EUNAVAILABLE: return "unavailable";
    case CMG_EPERMISSION: return "permission";
    case CMG_EIO: return "io";
    case CMG_ESTORAGE: return "storage";
    case CMG_EUSER: return "user";
    case CMG_EPLUGIN: return "plugin";
    case CMG_ENOMEM: return "nomem";
    case CMG_EINTERNAL: return "internal";
    case CMG_ITEROVER: return "iterover";
    default: return "unknown";
  }
}

void cmg_buf_dispose(cmg_buf* buf) {
  if (!buf) return;
  std::free(buf->ptr);
  buf->ptr = nullptr;
  buf->size = 0;
}

int cmg_buf_set(cmg_buf* buf, const char* data, size_t len) {
  // Plugins call this in the middle of a library call: it must not clear the last error.
  if (!buf) return set_error(CMG_EINVALID, "cmg_buf_set: buf is NULL");
  if (!data && len > 0) return set_error(CMG_EINVALID, "cmg_buf_set: data is NULL");
  char* p = static_cast<char*>(std::malloc(len + 1));
  if (!p) return set_error(CMG_ENOMEM, "cmg_buf_set: out of memory");
  if (len) std::memcpy(p, data, len);
  p[len] = '\0';
  std::free(buf->ptr);
  buf->ptr = p;
  buf->size = len;
  return CMG_OK;
}

}  // extern "C"
