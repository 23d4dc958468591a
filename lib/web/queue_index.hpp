// QueueIndex: an in-memory index of the conflict queue for the console's server-side paging.
//
// Filtering 100k items by parsing each stored JSON item on every page request is far too slow, so
// the index keeps what the filters need (object, reason, status, problem fields, searchable text) in
// key order, and a page is read from LMDB by key. It stays current incrementally: every change of a
// queue item is committed together with an audit event naming the record (enqueue, fix, skip,
// resolve — lib/pipeline/queue.cpp, write.cpp), so refresh() re-reads just the items named by the
// audit events appended since the last refresh, in the same read snapshot. A size mismatch with the
// queue database, a shrinking audit sequence (a new state) or a large backlog triggers a full rebuild.
//
// Not thread-safe: the console calls it under its state mutex.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crmmigrate/core/status.hpp"
#include "crmmigrate/store/lmdb_env.hpp"

namespace cmg::web {

struct QueueQuery {
  std::string reason;  // "" = any
  std::string object;  // "" = any
  std::string field;   // items with a problem on this destination field; "" = any
  std::string text;    // case-insensitive substring of the item (without its history); "" = any
  std::string status;  // "" = open and fixed, "all", or one of open|fixed|resolved|skipped
  std::size_t offset = 0;
  std::size_t limit = 50;
};

struct QueuePage {
  std::size_t total = 0;          // items matching every filter
  std::vector<std::string> keys;  // state keys (object␟source id) of items [offset, offset + limit)
  // Facets: for each dimension, counts among the items matching every *other* filter.
  std::map<std::string, std::size_t> by_reason, by_object, by_status;
};

class QueueIndex {
 public:
  /// Brings the index up to date with the state (see the file comment). Errors: kStorage from LMDB.
  Status refresh(const store::Env& env);
  /// The page of `q` (the index must have been refreshed).
  QueuePage query(const QueueQuery& q) const;
  /// Keys of every item matching `q` (offset/limit ignored), at most `cap` (+1 to tell "more").
  std::vector<std::string> matching_keys(const QueueQuery& q, std::size_t cap) const;
  std::size_t size() const { return entries_.size(); }
  /// Full rebuilds done so far (tests check that small changes do not rebuild).
  std::uint64_t rebuilds() const { return rebuilds_; }

  /// The searchable text of an item: lower-case serialisation without "history".
  static std::string search_text(const boost::json::object& item);

 private:
  struct Entry {
    std::string key;
    std::uint16_t object = 0, reason = 0, status = 0;
    std::vector<std::uint16_t> fields;
    std::string text;
  };
  std::uint16_t intern(std::vector<std::string>& names, std::unordered_map<std::string, std::uint16_t>& ids,
                       std::string_view name);
  Entry make_entry(std::string_view key, const boost::json::object& item);
  Status rebuild(store::Txn& t);

  std::vector<Entry> entries_;  // sorted by key
  std::vector<std::string> objects_, reasons_, statuses_, fields_;
  std::unordered_map<std::string, std::uint16_t> object_ids_, reason_ids_, status_ids_, field_ids_;
  bool built_ = false;
  std::uint64_t seq_ = 0;  // audit sequence the index reflects
  std::uint64_t rebuilds_ = 0;
};

/// Lower-cases ASCII letters (UTF-8 multibyte sequences are left as they are).
std::string ascii_lower(std::string_view s);

}  // namespace cmg::web
