#include "crmmigrate/core/connector.hpp"

namespace cmg {

Status for_each_batch(RecordReader& reader, const std::function<Status(RecordBatch&)>& fn) {
  RecordBatch batch;
  for (;;) {
    CMG_ASSIGN_OR_RETURN(bool more, reader.next(batch));
    if (!more) return Status::ok();
    CMG_RETURN_IF_ERROR(fn(batch));
  }
}

Result<std::optional<Record>> Source::get(std::string_view object, std::string_view id) {
  return not_found("this source cannot read a single record (" + std::string(object) + " " + std::string(id) + ")");
}

Status Source::check_access() { return Status::ok(); }

Status Destination::check_access() { return Status::ok(); }

}  // namespace cmg
