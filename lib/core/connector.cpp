#include "crmmigrate/core/connector.hpp"

#include <algorithm>
#include <tuple>
#include <utility>

namespace cmg {

Status for_each_batch(RecordReader& reader, const std::function<Status(RecordBatch&)>& fn) {
  RecordBatch batch;
  for (;;) {
    CMG_ASSIGN_OR_RETURN(bool more, reader.next(batch));
    if (!more) return Status::ok();
    CMG_RETURN_IF_ERROR(fn(batch));
  }
}

Result<bool> CursorReplay::next(const ReadOptions& opts, const std::function<Result<bool>(RecordBatch&)>& pull,
                                RecordBatch& out) {
  out.clear();
  if (!loaded_) {
    const auto since = std::make_pair(opts.since_updated_at.value_or(0), std::string_view(opts.since_id));
    RecordBatch batch;
    for (;;) {
      batch.clear();  // the records of the previous batch were moved from
      CMG_ASSIGN_OR_RETURN(bool more, pull(batch));
      for (auto& r : batch)
        if (std::make_pair(r.updated_at, std::string_view(r.id)) >= since) kept_.push_back(std::move(r));
      if (!more) break;
    }
    std::sort(kept_.begin(), kept_.end(),
              [](const Record& a, const Record& b) { return std::tie(a.updated_at, a.id) < std::tie(b.updated_at, b.id); });
    loaded_ = true;
  }
  if (pos_ >= kept_.size()) return false;
  std::size_t n = std::min(kept_.size() - pos_, std::max<std::size_t>(opts.batch_size, 1));
  for (std::size_t i = 0; i < n; ++i) out.push_back(std::move(kept_[pos_ + i]));
  pos_ += n;
  return true;
}

Result<std::optional<Record>> Source::get(std::string_view object, std::string_view id) {
  return not_found("this source cannot read a single record (" + std::string(object) + " " + std::string(id) + ")");
}

Status Source::check_access() { return Status::ok(); }

Status Destination::check_access() { return Status::ok(); }

}  // namespace cmg
