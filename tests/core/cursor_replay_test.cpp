// CursorReplay: the cursor reads of plugin sources that cannot start at a cursor themselves.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "crmmigrate/core/connector.hpp"

using namespace cmg;

namespace {

Record rec(std::string id, std::int64_t updated_at) {
  Record r;
  r.object = "contacts";
  r.id = std::move(id);
  r.updated_at = updated_at;
  return r;
}

// A plugin stream: three batches out of (updated_at, id) order, then the end.
struct Stream {
  std::vector<std::vector<Record>> batches{{rec("c", 300), rec("a", 100)},
                                           {rec("e", 500), rec("b", 200), rec("b2", 200)},
                                           {rec("d", 400)}};
  std::size_t next = 0;
  int calls = 0;
  Result<bool> pull(RecordBatch& out) {
    ++calls;
    if (next >= batches.size()) return false;
    for (auto& r : batches[next++]) out.push_back(r);  // appends, as the adapters' pull does
    return true;
  }
};

std::vector<std::string> ids(const RecordBatch& b) {
  std::vector<std::string> out;
  for (const auto& r : b) out.push_back(r.id);
  return out;
}

}  // namespace

TEST_CASE("CursorReplay keeps records from the cursor on, in (updated_at, id) order, batch_size at a time") {
  Stream s;
  CursorReplay replay;
  ReadOptions opts;
  opts.batch_size = 2;
  opts.since_updated_at = 200;
  opts.since_id = "b2";  // (200, "b") is before the cursor, (200, "b2") is at it
  auto pull = [&](RecordBatch& b) { return s.pull(b); };
  RecordBatch out{rec("left-over", 1)};
  std::vector<std::vector<std::string>> got;
  for (;;) {
    auto more = replay.next(opts, pull, out);
    REQUIRE(more.is_ok());
    if (!*more) break;
    got.push_back(ids(out));
  }
  CHECK(got == std::vector<std::vector<std::string>>{{"b2", "c"}, {"d", "e"}});
  CHECK(out.empty());
  CHECK(s.calls == 4);  // drained once, never pulled again
  // Moved-from records of an earlier batch must never be kept again (no record without an id).
  for (const auto& batch : got)
    for (const auto& id : batch) CHECK_FALSE(id.empty());
}

TEST_CASE("CursorReplay returns the stream's error") {
  CursorReplay replay;
  ReadOptions opts;
  opts.since_updated_at = 0;
  RecordBatch out;
  auto r = replay.next(opts, [](RecordBatch&) -> Result<bool> { return Status(Code::kPlugin, "stream broke"); }, out);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() == "stream broke");
}
