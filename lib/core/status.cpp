#include "crmmigrate/core/status.hpp"

namespace cmg {

const char* code_name(Code code) noexcept {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kConfig: return "config";
    case Code::kParse: return "parse";
    case Code::kNotFound: return "not_found";
    case Code::kAlreadyExists: return "already_exists";
    case Code::kLocked: return "locked";
    case Code::kUnavailable: return "unavailable";
    case Code::kPermissionDenied: return "permission_denied";
    case Code::kIO: return "io";
    case Code::kStorage: return "storage";
    case Code::kCancelled: return "cancelled";
    case Code::kPlugin: return "plugin";
    case Code::kInternal: return "internal";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(code_name(code_)) + ": " + message_;
}

}  // namespace cmg
