#include "crmmigrate/core/dedup.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

namespace cmg {
namespace {

constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint8_t kNoLevel = 255;

// Grows in fixed chunks so that large inputs never pay a reallocation copy (which would double the
// peak memory while it happens).
template <typename T>
class ChunkedVector {
 public:
  static constexpr unsigned kShift = 16;
  static constexpr std::size_t kChunk = std::size_t{1} << kShift;

  void push_back(T v) {
    if ((size_ >> kShift) == chunks_.size()) chunks_.emplace_back(new T[kChunk]);
    chunks_[size_ >> kShift][size_ & (kChunk - 1)] = v;
    ++size_;
  }
  T& operator[](std::size_t i) { return chunks_[i >> kShift][i & (kChunk - 1)]; }
  const T& operator[](std::size_t i) const { return chunks_[i >> kShift][i & (kChunk - 1)]; }
  std::size_t size() const { return size_; }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  std::size_t size_ = 0;
};

// Append-only byte arena holding length-prefixed strings; a string is addressed by a 64-bit ref
// (block index << 24 | offset).
class StringArena {
 public:
  static constexpr std::size_t kBlock = std::size_t{1} << 20;

  std::uint64_t add(std::string_view s) {
    std::size_t need = s.size() + 5;
    if (blocks_.empty() || used_ + need > block_size_) {
      block_size_ = std::max(kBlock, need);
      blocks_.emplace_back(new char[block_size_]);
      used_ = 0;
    }
    char* p = blocks_.back().get() + used_;
    std::uint64_t ref = (static_cast<std::uint64_t>(blocks_.size() - 1) << 24) | used_;
    std::size_t n = s.size();
    std::size_t prefix = 0;
    do {
      std::uint8_t byte = static_cast<std::uint8_t>(n & 0x7F);
      n >>= 7;
      if (n) byte |= 0x80;
      p[prefix++] = static_cast<char>(byte);
    } while (n);
    if (!s.empty()) std::memcpy(p + prefix, s.data(), s.size());
    used_ += prefix + s.size();
    return ref;
  }

  std::string_view get(std::uint64_t ref) const {
    const char* p = blocks_[ref >> 24].get() + (ref & 0xFFFFFF);
    std::size_t n = 0;
    unsigned shift = 0;
    std::uint8_t byte = 0;
    do {
      byte = static_cast<std::uint8_t>(*p++);
      n |= static_cast<std::size_t>(byte & 0x7F) << shift;
      shift += 7;
    } while (byte & 0x80);
    return {p, n};
  }

 private:
  std::vector<std::unique_ptr<char[]>> blocks_;
  std::size_t used_ = 0;
  std::size_t block_size_ = 0;
};

// The interner's slot array, zero-filled. A large one is mapped with transparent huge pages where
// the system allows them (madvise): its lookups are random, and with 4 KiB pages each would also
// miss the TLB.
class SlotTable {
 public:
  SlotTable() = default;
  ~SlotTable() { release(); }
  SlotTable(const SlotTable&) = delete;
  SlotTable& operator=(const SlotTable&) = delete;

  // Replaces the contents with `n` zero slots; false when the memory cannot be had.
  bool reset(std::size_t n) {
    release();
    const std::size_t bytes = n * sizeof(std::uint64_t);
#if defined(MADV_HUGEPAGE)
    constexpr std::size_t kHuge = std::size_t{2} << 20;
    if (bytes >= kHuge) {
      // Over-allocated by one huge page so that the table starts on a huge-page boundary.
      void* base = ::mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base == MAP_FAILED) return false;
      auto addr = reinterpret_cast<std::uintptr_t>(base);
      auto aligned = (addr + kHuge - 1) & ~(static_cast<std::uintptr_t>(kHuge) - 1);
      ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);  // a hint: ignored if refused
      map_base_ = base;
      map_len_ = bytes + kHuge;
      p_ = reinterpret_cast<std::uint64_t*>(aligned);
      n_ = n;
      return true;
    }
#endif
    p_ = static_cast<std::uint64_t*>(std::calloc(n, sizeof(std::uint64_t)));
    if (!p_) return false;
    n_ = n;
    return true;
  }
  void swap(SlotTable& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(map_base_, o.map_base_);
    std::swap(map_len_, o.map_len_);
  }
  std::uint64_t& operator[](std::size_t i) { return p_[i]; }
  const std::uint64_t* data() const { return p_; }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }

 private:
  void release() {
    if (map_base_) ::munmap(map_base_, map_len_);
    else std::free(p_);
    p_ = nullptr;
    n_ = 0;
    map_base_ = nullptr;
    map_len_ = 0;
  }
  std::uint64_t* p_ = nullptr;
  std::size_t n_ = 0;
  void* map_base_ = nullptr;  // set when mapped (then p_ points into it)
  std::size_t map_len_ = 0;
};

// Interns (level, value) pairs to dense 32-bit ids. Open addressing; a slot holds the upper 32 bits
// of the hash and id + 1, and a hit is always confirmed by comparing the stored bytes, so two
// different values never share an id. (The hash only places values in the table: ids follow the
// order of first insertion, so nothing the resolver decides depends on it.)
class ValueInterner {
 public:
  static std::uint64_t hash(std::uint8_t level, std::string_view value) {
    return std::hash<std::string_view>{}(value) ^ ((level + 1u) * 0x9E3779B97F4A7C15ULL);
  }
  // Starts loading the slot where (level, value) would be looked up; call a few values ahead.
  void prefetch(std::uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(slots_.data() + home(static_cast<std::uint32_t>(h >> 32)));
  }

  // Makes room for `more` new values (so that intern() never grows the table); false when the
  // memory cannot be had.
  bool reserve(std::size_t more) {
    while ((count_ + more) * 4 > slots_.size() * 3)
      if (!grow()) return false;
    return true;
  }
  // `h` = hash(level, value); room for one more value must have been reserved.
  std::uint32_t intern(std::uint8_t level, std::string_view value, std::uint64_t h, StringArena& arena) {
    std::size_t mask = slots_.size() - 1;
    auto tag = static_cast<std::uint32_t>(h >> 32);
    for (std::size_t i = home(tag);; i = (i + 1) & mask) {
      std::uint64_t slot = slots_[i];
      if (slot == 0) {
        std::uint32_t id = static_cast<std::uint32_t>(refs_.size());
        key_.assign(1, static_cast<char>(level));
        key_.append(value.data(), value.size());
        refs_.push_back(arena.add(key_));
        slots_[i] = (static_cast<std::uint64_t>(tag) << 32) | (id + 1u);
        ++count_;
        return id;
      }
      if (static_cast<std::uint32_t>(slot >> 32) == tag) {
        std::uint32_t id = static_cast<std::uint32_t>(slot & 0xFFFFFFFFu) - 1u;
        std::string_view stored = arena.get(refs_[id]);
        if (stored.size() == value.size() + 1 && static_cast<std::uint8_t>(stored[0]) == level &&
            stored.substr(1) == value)
          return id;
      }
    }
  }
  std::size_t size() const { return refs_.size(); }

 private:
  // A slot's home position is derived from its tag alone (Fibonacci hashing to the table's size),
  // so growing never reads the values back from the arena (that was a cache miss per value).
  // Values with the same home still differ in their tags: the tag keeps filtering 32 bits.
  std::size_t home(std::uint32_t tag) const {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(tag) * 0x9E3779B97F4A7C15ULL) >> (64 - bits_));
  }
  bool grow() {
    SlotTable old;
    old.swap(slots_);
    const unsigned bits = old.empty() ? 10 : bits_ + 1;
    if (!slots_.reset(std::size_t{1} << bits)) {
      slots_.swap(old);
      return false;
    }
    bits_ = bits;
    std::size_t mask = slots_.size() - 1;
    for (std::size_t j = 0; j < old.size(); ++j) {
      std::uint64_t slot = old[j];
      if (slot == 0) continue;
      std::size_t i = home(static_cast<std::uint32_t>(slot >> 32));
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = slot;
    }
    return true;
  }

  SlotTable slots_;
  ChunkedVector<std::uint64_t> refs_;
  std::size_t count_ = 0;
  unsigned bits_ = 0;  // slots_.size() == 1 << bits_
  std::string key_;
};

// Appends the hash (ValueInterner::hash) of each non-empty value of `values_per_level`, level by
// level: the order in which Deduplicator::Impl::add interns them.
void append_value_hashes(const std::vector<std::vector<std::string>>& values_per_level,
                         std::vector<std::uint64_t>& out) {
  for (std::size_t level = 0; level < values_per_level.size() && level < 250; ++level)
    for (const std::string& v : values_per_level[level])
      if (!v.empty()) out.push_back(ValueInterner::hash(static_cast<std::uint8_t>(level), v));
}

// One side (source or destination): ids, timestamps and value ids per (entity, level) as CSR.
struct EntityTable {
  ChunkedVector<std::uint64_t> id_refs;
  ChunkedVector<std::int64_t> updated_at;
  ChunkedVector<std::uint32_t> level_begin;  // entity * levels + level → index into values
  ChunkedVector<std::uint32_t> values;

  std::size_t size() const { return id_refs.size(); }
};

struct Span {
  const ChunkedVector<std::uint32_t>* vec;
  std::size_t begin, end;
  std::size_t size() const { return end - begin; }
  bool empty() const { return begin == end; }
  std::uint32_t operator[](std::size_t i) const { return (*vec)[begin + i]; }
};

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool sorted_disjoint(const std::uint32_t* a, std::size_t na, const std::uint32_t* b,
                     std::size_t nb) {
  std::size_t i = 0, j = 0;
  while (i < na && j < nb) {
    if (a[i] == b[j]) return false;
    if (a[i] < b[j]) ++i; else ++j;
  }
  return true;
}

bool sorted_disjoint(const std::vector<std::uint32_t>& a, const std::vector<std::uint32_t>& b) {
  return sorted_disjoint(a.data(), a.size(), b.data(), b.size());
}

void sort_unique(std::vector<std::uint32_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

bool id_less(std::string_view a, std::string_view b) noexcept {
  bool na = all_digits(a), nb = all_digits(b);
  if (na != nb) return na;
  if (na) {
    std::string_view ta = a.substr(std::min(a.find_first_not_of('0'), a.size()));
    std::string_view tb = b.substr(std::min(b.find_first_not_of('0'), b.size()));
    if (ta.size() != tb.size()) return ta.size() < tb.size();
    if (ta != tb) return ta < tb;
  }
  return a < b;
}

namespace {

// A key whose order agrees with id_less wherever two keys differ.
std::uint64_t id_order_key(std::string_view id) noexcept {
  if (all_digits(id)) {
    // Numeric ids order by value: up to 18 significant digits fit below 2^60; longer ones are
    // all larger than those (and ordered among themselves by id_less).
    std::string_view digits = id.substr(std::min(id.find_first_not_of('0'), id.size()));
    if (digits.size() > 18) return std::uint64_t{1} << 62;
    std::uint64_t v = 0;
    for (char c : digits) v = v * 10 + static_cast<std::uint64_t>(c - '0');
    return v;
  }
  // Other ids order after numeric ones, by bytes: the first eight, big-endian, less the last bit.
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | (i < id.size() ? static_cast<unsigned char>(id[i]) : 0u);
  return (std::uint64_t{1} << 63) | (v >> 1);
}

}  // namespace

const char* group_kind_name(GroupKind kind) noexcept {
  switch (kind) {
    case GroupKind::kSingle: return "single";
    case GroupKind::kMerged: return "merged";
    case GroupKind::kAmbiguous: return "ambiguous";
  }
  return "unknown";
}

const char* destination_decision_name(DestinationDecision decision) noexcept {
  switch (decision) {
    case DestinationDecision::kNew: return "new";
    case DestinationDecision::kMatch: return "match";
    case DestinationDecision::kAmbiguous: return "ambiguous";
  }
  return "unknown";
}

struct Deduplicator::Impl {
  std::vector<DedupKey> keys;
  DedupOptions options;
  StringArena arena;
  ValueInterner interner;
  EntityTable source;
  EntityTable destination;
  std::vector<std::uint32_t> scratch;
  std::vector<std::uint64_t> hashes;  // of the values being added (add())

  std::size_t levels() const { return keys.size(); }

  Span values_of(const EntityTable& t, std::size_t entity, std::size_t level) const {
    std::size_t idx = entity * levels() + level;
    std::size_t begin = t.level_begin[idx];
    std::size_t end = idx + 1 < t.level_begin.size() ? t.level_begin[idx + 1] : t.values.size();
    return {&t.values, begin, end};
  }

  // `known`: the values' hashes (ValueInterner::hash of each non-empty value, in order) when the
  // caller has them already (add_sources); null to compute them here.
  Status add(EntityTable& t, std::string_view id, std::int64_t updated_at,
             const std::vector<std::vector<std::string>>& values_per_level, const char* side,
             const std::uint64_t* known = nullptr) {
    if (levels() == 0 || levels() > 250) {
      return invalid_argument("dedup: the key cascade needs 1 to 250 keys, it has " +
                              std::to_string(levels()));
    }
    if (values_per_level.size() != levels()) {
      return invalid_argument(std::string("dedup: ") + side + " entity '" + std::string(id) +
                              "' has " + std::to_string(values_per_level.size()) +
                              " value levels, the key cascade has " +
                              std::to_string(levels()));
    }
    if (t.size() >= kNone - 1 || interner.size() >= kNone - 1024 ||
        t.values.size() + 1024 >= kNone) {
      return invalid_argument("dedup: capacity of 2^32 entities or values exhausted");
    }
    // The slots of all the entity's values are looked up together: their cache misses overlap.
    std::size_t nvalues = 0;
    if (known) {
      for (const auto& level : values_per_level)
        for (const std::string& v : level) nvalues += v.empty() ? 0 : 1;
    } else {
      hashes.clear();
      append_value_hashes(values_per_level, hashes);
      nvalues = hashes.size();
      known = hashes.data();
      for (std::size_t i = 0; i < nvalues; ++i) interner.prefetch(known[i]);
    }
    if (!interner.reserve(nvalues)) return Status(Code::kInternal, "dedup: out of memory for the value index");
    t.id_refs.push_back(arena.add(id));
    t.updated_at.push_back(updated_at);
    std::size_t next = 0;
    for (std::size_t level = 0; level < levels(); ++level) {
      t.level_begin.push_back(static_cast<std::uint32_t>(t.values.size()));
      scratch.clear();
      for (const std::string& v : values_per_level[level]) {
        if (!v.empty()) scratch.push_back(interner.intern(static_cast<std::uint8_t>(level), v, known[next++], arena));
      }
      sort_unique(scratch);
      for (std::uint32_t v : scratch) t.values.push_back(v);
    }
    return Status::ok();
  }

  // Sorted entity indices by id; fails on a repeated id.
  Status sorted_ids(const EntityTable& t, const char* side, std::vector<std::uint32_t>& order) const {
    // Sorted on an integer key that orders as id_less does wherever two keys differ (ids are
    // compared in full only on equal keys): no string is read for most comparisons.
    std::vector<std::pair<std::uint64_t, std::uint32_t>> keyed(t.size());
    for (std::size_t i = 0; i < keyed.size(); ++i)
      keyed[i] = {id_order_key(arena.get(t.id_refs[i])), static_cast<std::uint32_t>(i)};
    std::sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first < b.first;
      return id_less(arena.get(t.id_refs[a.second]), arena.get(t.id_refs[b.second]));
    });
    order.resize(t.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = keyed[i].second;
    for (std::size_t i = 1; i < order.size(); ++i) {
      std::string_view prev = arena.get(t.id_refs[order[i - 1]]);
      if (prev == arena.get(t.id_refs[order[i]])) {
        return Status(Code::kAlreadyExists,
                      std::string("dedup: ") + side + " id '" + std::string(prev) + "' added twice");
      }
    }
    return Status::ok();
  }

  Status resolve(const std::function<Status(const DedupGroup&)>& sink, DedupStats* stats) const;
};

namespace {

// Union-find without path compression (union by rank keeps depth O(log n)): the tree edges keep
// the level at which they were made, so the level at which two entities became connected is the
// largest edge level on the tree path between them (levels are processed in increasing order).
class LevelForest {
 public:
  explicit LevelForest(std::size_t n) : parent_(n), rank_(n, 0), level_(n, kNoLevel), next_(n) {
    for (std::size_t i = 0; i < n; ++i) parent_[i] = next_[i] = static_cast<std::uint32_t>(i);
  }
  std::uint32_t find(std::uint32_t x) const {
    while (parent_[x] != x) x = parent_[x];
    return x;
  }
  // Joins two roots; returns the new root.
  std::uint32_t unite(std::uint32_t a, std::uint32_t b, std::uint8_t level) {
    if (rank_[a] < rank_[b]) std::swap(a, b);
    parent_[b] = a;
    level_[b] = level;
    if (rank_[a] == rank_[b]) ++rank_[a];
    std::swap(next_[a], next_[b]);
    return a;
  }
  // Members of x's set form a cycle through next().
  std::uint32_t next(std::uint32_t x) const { return next_[x]; }
  std::uint8_t edge_level(std::uint32_t x) const { return level_[x]; }

  std::uint8_t connected_at(std::uint32_t a, std::uint32_t b) const {
    std::uint8_t best = 0;
    bool any = false;
    auto depth = [&](std::uint32_t x) {
      std::size_t d = 0;
      while (parent_[x] != x) { x = parent_[x]; ++d; }
      return d;
    };
    std::size_t da = depth(a), db = depth(b);
    auto climb = [&](std::uint32_t& x) {
      best = any ? std::max(best, level_[x]) : level_[x];
      any = true;
      x = parent_[x];
    };
    while (da > db) { climb(a); --da; }
    while (db > da) { climb(b); --db; }
    while (a != b) { climb(a); climb(b); }
    return any ? best : kNoLevel;
  }

 private:
  std::vector<std::uint32_t> parent_;
  std::vector<std::uint8_t> rank_;
  std::vector<std::uint8_t> level_;
  std::vector<std::uint32_t> next_;
};

// Per-level scratch: stronger-level value unions ("signatures") of the groups involved in links.
struct Signatures {
  std::vector<std::uint32_t> begin;  // local group → offset in data
  std::vector<std::uint32_t> data;   // per stronger level: count, then sorted values
  std::vector<std::uint8_t> floating;
  std::size_t nlevels = 0;

  bool compatible(std::uint32_t a, std::uint32_t b) const {
    if (floating[a] || floating[b]) return true;
    const std::uint32_t* pa = data.data() + begin[a];
    const std::uint32_t* pb = data.data() + begin[b];
    for (std::size_t l = 0; l < nlevels; ++l) {
      std::uint32_t na = *pa++, nb = *pb++;
      if (na && nb && sorted_disjoint(pa, na, pb, nb)) return false;
      pa += na;
      pb += nb;
    }
    return true;
  }
  bool same(std::uint32_t a, std::uint32_t b) const {
    std::size_t ea = (a + 1 < begin.size() ? begin[a + 1] : data.size());
    std::size_t eb = (b + 1 < begin.size() ? begin[b + 1] : data.size());
    return ea - begin[a] == eb - begin[b] &&
           std::equal(data.begin() + begin[a], data.begin() + ea, data.begin() + begin[b]);
  }
};

struct AmbiguousMark {
  std::uint32_t root;
  std::uint8_t level;
  std::vector<std::uint32_t> neighbours;  // entity indices (roots at marking time)
};

// Small union-find over the local indices of one level.
struct LocalSets {
  std::vector<std::uint32_t> parent;
  explicit LocalSets(std::size_t n) : parent(n) {
    for (std::size_t i = 0; i < n; ++i) parent[i] = static_cast<std::uint32_t>(i);
  }
  std::uint32_t find(std::uint32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(std::uint32_t a, std::uint32_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

}  // namespace

Status Deduplicator::Impl::resolve(const std::function<Status(const DedupGroup&)>& sink,
                                   DedupStats* stats) const {
  const std::size_t n = source.size();
  const std::size_t nd = destination.size();
  const std::size_t nlevels = levels();
  DedupStats st;
  st.source_entities = n;
  st.destination_entities = nd;

  std::vector<std::uint32_t> rank(n);
  {
    std::vector<std::uint32_t> order;
    CMG_RETURN_IF_ERROR(sorted_ids(source, "source", order));
    for (std::size_t i = 0; i < n; ++i) rank[order[i]] = static_cast<std::uint32_t>(i);
    std::vector<std::uint32_t> dorder;
    CMG_RETURN_IF_ERROR(sorted_ids(destination, "destination", dorder));
  }

  LevelForest forest(n);
  std::vector<std::uint8_t> frozen(n, 0);
  std::vector<AmbiguousMark> marks;
  std::vector<std::uint32_t> local_of(n, kNone);
  std::vector<std::size_t> within_levels;

  for (std::size_t level = 0; level < nlevels; ++level) {
    if (!keys[level].compare_within_source) continue;
    const auto lvl = static_cast<std::uint8_t>(level);

    // (value, root) for every active group; sorted, a run of one value is a bucket of linked groups.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> pairs;
    for (std::uint32_t e = 0; e < n; ++e) {
      Span vs = values_of(source, e, level);
      if (vs.empty()) continue;
      std::uint32_t root = forest.find(e);
      if (frozen[root]) continue;
      for (std::size_t i = 0; i < vs.size(); ++i) pairs.emplace_back(vs[i], root);
    }
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());

    std::vector<std::pair<std::uint32_t, std::uint32_t>> buckets;  // [begin, end) in pairs
    std::vector<std::uint32_t> involved;                            // local → root
    for (std::size_t i = 0; i < pairs.size();) {
      std::size_t j = i;
      while (j < pairs.size() && pairs[j].first == pairs[i].first) ++j;
      if (j - i >= 2) {
        if (j - i > options.max_shared_groups) {
          ++st.too_common_values;
        } else {
          buckets.emplace_back(static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j));
          for (std::size_t k = i; k < j; ++k) {
            std::uint32_t root = pairs[k].second;
            if (local_of[root] == kNone) {
              local_of[root] = static_cast<std::uint32_t>(involved.size());
              involved.push_back(root);
            }
          }
        }
      }
      i = j;
    }
    if (buckets.empty()) {
      within_levels.push_back(level);
      continue;
    }
    const std::size_t m = involved.size();

    Signatures sig;
    sig.nlevels = within_levels.size();
    sig.begin.resize(m);
    sig.floating.assign(m, 1);
    std::vector<std::uint32_t> acc;
    for (std::size_t g = 0; g < m; ++g) {
      sig.begin[g] = static_cast<std::uint32_t>(sig.data.size());
      for (std::size_t sl : within_levels) {
        acc.clear();
        std::uint32_t e = involved[g];
        do {
          Span vs = values_of(source, e, sl);
          for (std::size_t i = 0; i < vs.size(); ++i) acc.push_back(vs[i]);
          e = forest.next(e);
        } while (e != involved[g]);
        sort_unique(acc);
        if (!acc.empty()) sig.floating[g] = 0;
        sig.data.push_back(static_cast<std::uint32_t>(acc.size()));
        sig.data.insert(sig.data.end(), acc.begin(), acc.end());
      }
    }

    // Buckets of each local group: (local, bucket) sorted by local.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> member_of;
    for (std::uint32_t b = 0; b < buckets.size(); ++b)
      for (std::uint32_t k = buckets[b].first; k < buckets[b].second; ++k)
        member_of.emplace_back(local_of[pairs[k].second], b);
    std::sort(member_of.begin(), member_of.end());

    auto for_each_neighbour = [&](std::uint32_t g, auto&& fn) {
      auto it = std::lower_bound(member_of.begin(), member_of.end(), std::make_pair(g, 0u));
      for (; it != member_of.end() && it->first == g; ++it) {
        const auto& bk = buckets[it->second];
        for (std::uint32_t k = bk.first; k < bk.second; ++k) {
          std::uint32_t h = local_of[pairs[k].second];
          if (h != g && !fn(h)) return;
        }
      }
    };

    // Rule 4, first part: a group whose compatible links reach two mutually incompatible groups.
    std::vector<std::uint8_t> ambiguous(m, 0);
    std::vector<std::uint32_t> witnesses;
    for (std::uint32_t g = 0; g < m; ++g) {
      witnesses.clear();
      bool found = false;
      for_each_neighbour(g, [&](std::uint32_t h) {
        if (!sig.compatible(g, h)) return true;
        bool duplicate = false;
        for (std::uint32_t w : witnesses) {
          if (!sig.compatible(h, w)) {
            found = true;
            return false;
          }
          if (!duplicate && sig.same(h, w)) duplicate = true;
        }
        if (!duplicate) witnesses.push_back(h);
        return true;
      });
      ambiguous[g] = found ? 1 : 0;
    }

    // Components of the remaining compatible links.
    LocalSets comp(m);
    for (const auto& bk : buckets) {
      acc.clear();
      bool has_floating = false;
      for (std::uint32_t k = bk.first; k < bk.second; ++k) {
        std::uint32_t g = local_of[pairs[k].second];
        if (ambiguous[g]) continue;
        acc.push_back(g);
        if (sig.floating[g]) has_floating = true;
      }
      if (acc.size() < 2) continue;
      if (has_floating) {
        // A non-ambiguous floating member is compatible with every member and its links hold no
        // incompatible pair, so the whole bucket is one compatible clique.
        for (std::size_t i = 1; i < acc.size(); ++i) comp.unite(acc[0], acc[i]);
        continue;
      }
      for (std::size_t i = 0; i < acc.size(); ++i)
        for (std::size_t j = i + 1; j < acc.size(); ++j)
          if (sig.compatible(acc[i], acc[j])) comp.unite(acc[i], acc[j]);
    }

    std::vector<std::pair<std::uint32_t, std::uint32_t>> by_comp;  // (component, local)
    for (std::uint32_t g = 0; g < m; ++g)
      if (!ambiguous[g]) by_comp.emplace_back(comp.find(g), g);
    std::sort(by_comp.begin(), by_comp.end());
    for (std::size_t i = 0; i < by_comp.size();) {
      std::size_t j = i;
      while (j < by_comp.size() && by_comp[j].first == by_comp[i].first) ++j;
      if (j - i >= 2) {
        // Distinct signatures only: equal signatures are always compatible.
        acc.clear();
        for (std::size_t k = i; k < j; ++k) {
          std::uint32_t g = by_comp[k].second;
          bool seen = false;
          for (std::uint32_t r : acc)
            if (sig.same(r, g)) { seen = true; break; }
          if (!seen) acc.push_back(g);
        }
        bool conflict = false;
        for (std::size_t a = 0; a < acc.size() && !conflict; ++a)
          for (std::size_t b = a + 1; b < acc.size() && !conflict; ++b)
            if (!sig.compatible(acc[a], acc[b])) conflict = true;
        if (!conflict) {
          std::uint32_t root = involved[by_comp[i].second];
          for (std::size_t k = i + 1; k < j; ++k)
            root = forest.unite(root, involved[by_comp[k].second], lvl);
        } else {
          for (std::size_t k = i; k < j; ++k) {
            std::uint32_t g = by_comp[k].second;
            bool with_all = true;
            for (std::uint32_t r : acc)
              if (!sig.compatible(g, r)) { with_all = false; break; }
            if (with_all) ambiguous[g] = 2;
          }
        }
      }
      i = j;
    }

    for (std::uint32_t g = 0; g < m; ++g) {
      if (!ambiguous[g]) continue;
      AmbiguousMark mark{involved[g], lvl, {}};
      for_each_neighbour(g, [&](std::uint32_t h) {
        if (sig.compatible(g, h)) mark.neighbours.push_back(involved[h]);
        return true;
      });
      sort_unique(mark.neighbours);
      frozen[involved[g]] = 1;
      marks.push_back(std::move(mark));
    }
    for (std::uint32_t root : involved) local_of[root] = kNone;
    within_levels.push_back(level);
  }
  local_of = {};

  // Groups: root of every entity, the primary of every root, groups ordered by primary id.
  std::vector<std::uint32_t> root_of(n);
  for (std::uint32_t e = 0; e < n; ++e) root_of[e] = forest.find(e);
  auto newer = [&](std::uint32_t a, std::uint32_t b) {
    if (source.updated_at[a] != source.updated_at[b]) return source.updated_at[a] > source.updated_at[b];
    return rank[a] < rank[b];
  };
  std::vector<std::uint32_t> primary(n, kNone);
  for (std::uint32_t e = 0; e < n; ++e) {
    std::uint32_t& p = primary[root_of[e]];
    if (p == kNone || newer(e, p)) p = e;
  }
  // Roots in output order: ranks are a permutation of 0..n-1, so the roots are placed by the
  // rank of their primary (no comparison sort).
  std::vector<std::uint32_t> groups(n, kNone);
  for (std::uint32_t e = 0; e < n; ++e)
    if (root_of[e] == e) groups[rank[primary[e]]] = e;
  groups.erase(std::remove(groups.begin(), groups.end(), kNone), groups.end());
  std::vector<std::uint32_t> group_pos(n, kNone);  // root → position in groups
  for (std::uint32_t i = 0; i < groups.size(); ++i) group_pos[groups[i]] = i;
  // Entities ordered by group (a counting sort), then primary first within each group.
  std::vector<std::uint32_t> member_begin(groups.size() + 1, 0);
  for (std::uint32_t e = 0; e < n; ++e) ++member_begin[group_pos[root_of[e]] + 1];
  for (std::size_t i = 1; i < member_begin.size(); ++i) member_begin[i] += member_begin[i - 1];
  std::vector<std::uint32_t> members(n);
  {
    std::vector<std::uint32_t> fill(member_begin.begin(), member_begin.end() - 1);
    for (std::uint32_t e = 0; e < n; ++e) members[fill[group_pos[root_of[e]]]++] = e;
  }
  for (std::size_t i = 0; i + 1 < member_begin.size(); ++i)
    if (member_begin[i + 1] - member_begin[i] > 1)
      std::sort(members.begin() + member_begin[i], members.begin() + member_begin[i + 1], newer);
  member_begin = {};
  primary = {};
  std::sort(marks.begin(), marks.end(),
            [](const AmbiguousMark& a, const AmbiguousMark& b) { return a.root < b.root; });
  auto mark_of = [&](std::uint32_t root) -> const AmbiguousMark* {
    auto it = std::lower_bound(marks.begin(), marks.end(), root,
                               [](const AmbiguousMark& m, std::uint32_t r) { return m.root < r; });
    return it != marks.end() && it->root == root ? &*it : nullptr;
  };

  // Destination index: (value, destination) sorted by value.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> dindex;
  for (std::uint32_t d = 0; d < nd; ++d)
    for (std::size_t level = 0; level < nlevels; ++level) {
      Span vs = values_of(destination, d, level);
      for (std::size_t i = 0; i < vs.size(); ++i) dindex.emplace_back(vs[i], d);
    }
  std::sort(dindex.begin(), dindex.end());

  // Destination decision per group (rule 5): candidates in dec_dests[dec_begin[g]..dec_begin[g+1]).
  std::vector<std::uint32_t> dec_begin(groups.size() + 1, 0);
  std::vector<std::uint8_t> dec_level(groups.size(), kNoLevel);
  std::vector<std::uint32_t> dec_dests;
  std::vector<std::uint32_t> claims(nd, 0);
  std::vector<std::vector<std::uint32_t>> unions(nlevels);
  std::vector<std::uint32_t> cands, dvals;
  std::size_t member_cursor = 0;
  std::vector<std::uint32_t> group_begin(groups.size() + 1, 0);
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    group_begin[g] = static_cast<std::uint32_t>(member_cursor);
    std::size_t end = member_cursor;
    while (end < n && root_of[members[end]] == groups[g]) ++end;
    for (std::size_t level = 0; level < nlevels; ++level) {
      unions[level].clear();
      for (std::size_t k = member_cursor; k < end; ++k) {
        Span vs = values_of(source, members[k], level);
        for (std::size_t i = 0; i < vs.size(); ++i) unions[level].push_back(vs[i]);
      }
      sort_unique(unions[level]);
    }
    member_cursor = end;
    dec_begin[g] = static_cast<std::uint32_t>(dec_dests.size());
    if (nd == 0) continue;
    for (std::size_t level = 0; level < nlevels; ++level) {
      if (unions[level].empty()) continue;
      cands.clear();
      for (std::uint32_t v : unions[level]) {
        auto it = std::lower_bound(dindex.begin(), dindex.end(), std::make_pair(v, 0u));
        for (; it != dindex.end() && it->first == v; ++it) cands.push_back(it->second);
      }
      sort_unique(cands);
      std::size_t kept = dec_dests.size();
      for (std::uint32_t d : cands) {
        bool vetoed = false;
        for (std::size_t j = 0; j < level && !vetoed; ++j) {
          if (unions[j].empty()) continue;
          Span ds = values_of(destination, d, j);
          if (ds.empty()) continue;
          dvals.clear();
          for (std::size_t i = 0; i < ds.size(); ++i) dvals.push_back(ds[i]);
          vetoed = sorted_disjoint(unions[j], dvals);
        }
        if (!vetoed) dec_dests.push_back(d);
      }
      if (dec_dests.size() > kept) {
        dec_level[g] = static_cast<std::uint8_t>(level);
        break;
      }
    }
    if (dec_dests.size() - dec_begin[g] == 1 && !mark_of(groups[g])) ++claims[dec_dests.back()];
  }
  group_begin[groups.size()] = static_cast<std::uint32_t>(n);
  dec_begin[groups.size()] = static_cast<std::uint32_t>(dec_dests.size());

  // Groups that claim a contested destination: (destination, group) sorted.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> contested;
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    if (dec_begin[g + 1] - dec_begin[g] != 1 || mark_of(groups[g])) continue;
    std::uint32_t d = dec_dests[dec_begin[g]];
    if (claims[d] >= 2) contested.emplace_back(d, g);
  }

  auto source_id = [&](std::uint32_t e) { return std::string(arena.get(source.id_refs[e])); };
  auto dest_id = [&](std::uint32_t d) { return std::string(arena.get(destination.id_refs[d])); };
  auto sort_ids = [](std::vector<std::string>& ids) {
    std::sort(ids.begin(), ids.end(), [](const std::string& a, const std::string& b) { return id_less(a, b); });
  };

  DedupGroup out;
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    const std::uint32_t root = groups[g];
    const std::uint32_t prim = members[group_begin[g]];
    out = DedupGroup{};
    std::uint8_t weakest = kNoLevel;
    for (std::uint32_t k = group_begin[g]; k < group_begin[g + 1]; ++k) {
      std::uint32_t e = members[k];
      DedupMember mem{source_id(e), source.updated_at[e], {}};
      if (e != prim) {
        std::uint8_t at = forest.connected_at(e, prim);
        mem.linked_by = keys[at].name;
        weakest = weakest == kNoLevel ? at : std::max(weakest, at);
      }
      out.members.push_back(std::move(mem));
    }
    if (const AmbiguousMark* found = mark_of(root)) {
      const AmbiguousMark& mark = *found;
      out.kind = GroupKind::kAmbiguous;
      out.link_key = keys[mark.level].name;
      std::vector<std::uint32_t> linked;
      for (std::uint32_t e : mark.neighbours) {
        std::uint32_t r = root_of[e];
        if (r != root) linked.push_back(members[group_begin[group_pos[r]]]);
      }
      sort_unique(linked);
      for (std::uint32_t e : linked) out.ambiguous_with.push_back(source_id(e));
      sort_ids(out.ambiguous_with);
      out.detail = "linked by " + out.link_key + " to " + std::to_string(out.ambiguous_with.size()) +
                   " source groups that conflict on a stronger key";
      ++st.ambiguous_groups;
    } else if (out.members.size() > 1) {
      out.kind = GroupKind::kMerged;
      out.link_key = keys[weakest].name;
      ++st.merged_groups;
    }

    const std::uint32_t nc = dec_begin[g + 1] - dec_begin[g];
    for (std::uint32_t k = dec_begin[g]; k < dec_begin[g + 1]; ++k) out.destination_ids.push_back(dest_id(dec_dests[k]));
    sort_ids(out.destination_ids);
    if (nc > 0) out.match_key = keys[dec_level[g]].name;
    if (nc == 0) {
      out.decision = DestinationDecision::kNew;
    } else if (nc >= 2) {
      out.decision = DestinationDecision::kAmbiguous;
      std::string why = std::to_string(nc) + " destination records match by " + out.match_key;
      out.detail = out.detail.empty() ? why : out.detail + "; " + why;
    } else if (out.kind != GroupKind::kAmbiguous && claims[dec_dests[dec_begin[g]]] >= 2) {
      out.decision = DestinationDecision::kAmbiguous;
      std::uint32_t d = dec_dests[dec_begin[g]];
      std::vector<std::string> others;
      auto it = std::lower_bound(contested.begin(), contested.end(), std::make_pair(d, 0u));
      for (; it != contested.end() && it->first == d; ++it)
        if (it->second != g) others.push_back(source_id(members[group_begin[it->second]]));
      sort_ids(others);
      out.detail = "destination record " + out.destination_ids[0] + " is also matched by source group";
      for (std::size_t i = 0; i < others.size(); ++i) out.detail += (i ? ", " : " ") + others[i];
    } else {
      out.decision = DestinationDecision::kMatch;
    }
    if (out.decision == DestinationDecision::kMatch) ++st.matched_groups;
    if (out.decision == DestinationDecision::kAmbiguous) ++st.ambiguous_decisions;
    ++st.groups;
    CMG_RETURN_IF_ERROR(sink(out));
  }
  if (stats) *stats = st;
  return Status::ok();
}

Deduplicator::Deduplicator(std::vector<DedupKey> keys, DedupOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->keys = std::move(keys);
  impl_->options = options;
}

Deduplicator::~Deduplicator() = default;
Deduplicator::Deduplicator(Deduplicator&&) noexcept = default;
Deduplicator& Deduplicator::operator=(Deduplicator&&) noexcept = default;

const std::vector<DedupKey>& Deduplicator::keys() const noexcept { return impl_->keys; }

Status Deduplicator::add_source(std::string_view id, std::int64_t updated_at,
                                const std::vector<std::vector<std::string>>& values_per_level) {
  return impl_->add(impl_->source, id, updated_at, values_per_level, "source");
}

Status Deduplicator::add_sources(const std::vector<SourceEntity>& entities) {
  Impl& im = *impl_;
  // Every value's hash, once: entity i's are batch_hashes[first[i] .. first[i + 1]).
  std::vector<std::uint64_t> batch_hashes;
  std::vector<std::size_t> first(entities.size() + 1, 0);
  for (std::size_t i = 0; i < entities.size(); ++i) {
    if (entities[i].values_per_level) append_value_hashes(*entities[i].values_per_level, batch_hashes);
    first[i + 1] = batch_hashes.size();
  }
  // Slots are loaded a few entities ahead of their use.
  constexpr std::size_t kAhead = 8;
  auto prefetch = [&](std::size_t i) {
    for (std::size_t h = first[i]; h < first[i + 1]; ++h) im.interner.prefetch(batch_hashes[h]);
  };
  for (std::size_t i = 0; i < entities.size() && i < kAhead; ++i) prefetch(i);
  static const std::vector<std::vector<std::string>> kNoValues;
  for (std::size_t i = 0; i < entities.size(); ++i) {
    if (i + kAhead < entities.size()) prefetch(i + kAhead);
    const SourceEntity& e = entities[i];
    const auto& values = e.values_per_level ? *e.values_per_level : kNoValues;
    // A wrong number of levels is refused by add() before the hashes are read.
    CMG_RETURN_IF_ERROR(im.add(im.source, e.id, e.updated_at, values, "source", batch_hashes.data() + first[i]));
  }
  return Status::ok();
}

void Deduplicator::reserve(std::size_t entities) noexcept {
  // One value per level each (a hint: more simply grow the index later). Best effort: when the
  // memory cannot be had now, add_*() grows the index as it goes.
  // Capped at 12M values (an index of 128 MiB), so that a count far above what arrives (a source
  // may misreport) costs little; beyond it the index grows as before.
  constexpr std::size_t kMaxValues = 12000000;
  const std::size_t levels = std::max<std::size_t>(impl_->levels(), 1);
  (void)impl_->interner.reserve(entities >= kMaxValues / levels ? kMaxValues : entities * levels);
}

void Deduplicator::prefetch(const std::vector<std::vector<std::string>>& values_per_level) const noexcept {
  for (std::size_t level = 0; level < values_per_level.size() && level < 250; ++level)
    for (const std::string& v : values_per_level[level])
      if (!v.empty()) impl_->interner.prefetch(ValueInterner::hash(static_cast<std::uint8_t>(level), v));
}

Status Deduplicator::add_destination(std::string_view id,
                                     const std::vector<std::vector<std::string>>& values_per_level) {
  return impl_->add(impl_->destination, id, 0, values_per_level, "destination");
}

Status Deduplicator::resolve(const std::function<Status(const DedupGroup&)>& sink,
                             DedupStats* stats) const {
  return impl_->resolve(sink, stats);
}

Result<std::vector<DedupGroup>> Deduplicator::resolve() const {
  std::vector<DedupGroup> groups;
  Status s = impl_->resolve(
      [&](const DedupGroup& g) {
        groups.push_back(g);
        return Status::ok();
      },
      nullptr);
  if (!s.is_ok()) return s;
  return groups;
}

}  // namespace cmg
