#include "crmmigrate/core/connector.hpp"

namespace cmg {

Result<std::optional<Record>> Source::get(std::string_view object, std::string_view id) {
  return not_found("this source cannot read a single record (" + std::string(object) + " " + std::string(id) + ")");
}

}  // namespace cmg
