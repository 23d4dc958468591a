#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>

#include "crmmigrate/store/lmdb_env.hpp"
#include "test_util.hpp"

using namespace cmg;
using namespace cmg::store;

namespace {
// An Env in `dir` whose map starts at `map_size` bytes (small: a transaction makes it grow).
std::unique_ptr<Env> open_with_map(const TempDir& dir, std::size_t map_size) {
  EnvOptions opts;
  opts.initial_map_size = map_size;
  auto env = Env::open(dir.path(), opts);
  REQUIRE(env.is_ok());
  return std::move(*env);
}
}  // namespace

TEST_CASE("values written in one transaction are read back after reopening") {
  TempDir dir;
  {
    auto env = Env::open(dir.path());
    REQUIRE(env.is_ok());
    REQUIRE((*env)->write([](Txn& t) {
      CMG_RETURN_IF_ERROR(t.put("records", key_of({"contacts", "1"}), "{\"a\":1}"));
      return t.put("records", key_of({"contacts", "2"}), "{\"a\":2}");
    }).is_ok());
  }
  auto env = Env::open(dir.path());
  REQUIRE(env.is_ok());
  std::string got;
  REQUIRE((*env)->read([&](Txn& t) {
    CMG_ASSIGN_OR_RETURN(auto v, t.get("records", key_of({"contacts", "2"})));
    if (v) got = std::string(*v);
    return Status::ok();
  }).is_ok());
  CHECK(got == "{\"a\":2}");
}

TEST_CASE("a failing transaction function leaves nothing behind") {
  TempDir dir;
  auto env = Env::open(dir.path());
  REQUIRE(env.is_ok());
  Status st = (*env)->write([](Txn& t) {
    CMG_RETURN_IF_ERROR(t.put("q", "k", "v"));
    return Status(Code::kInternal, "boom");
  });
  CHECK(st.code() == Code::kInternal);
  std::uint64_t n = 99;
  REQUIRE((*env)->read([&](Txn& t) {
    CMG_ASSIGN_OR_RETURN(n, t.count("q"));
    return Status::ok();
  }).is_ok());
  CHECK(n == 0);
}

TEST_CASE("the map grows when a transaction does not fit") {
  TempDir dir;
  const std::size_t initial = 64 * 1024;
  auto env = open_with_map(dir, initial);
  std::string big(4096, 'x');
  REQUIRE(env->write([&](Txn& t) {
    for (int i = 0; i < 2000; ++i) CMG_RETURN_IF_ERROR(t.put("blob", be64(static_cast<std::uint64_t>(i)), big));
    return Status::ok();
  }).is_ok());
  CHECK(env->map_size() > initial);
  std::uint64_t n = 0;
  REQUIRE(env->read([&](Txn& t) {
    CMG_ASSIGN_OR_RETURN(n, t.count("blob"));
    return Status::ok();
  }).is_ok());
  CHECK(n == 2000);
}

TEST_CASE("puts in any order mixed with deletes, reads and scans leave what a map model holds") {
  // Txn keeps one put cursor per database for the whole transaction; the other operations (and
  // the page splits the puts cause) must never leave it pointing at the wrong place. A small
  // initial map makes the body run again after MDB_MAP_FULL, with new cursors.
  TempDir dir;
  auto env = open_with_map(dir, 256 * 1024);
  std::map<std::string, std::string> model[2];
  const char* dbs[2] = {"a", "b"};
  std::mt19937 rng(7);
  for (int txn = 0; txn < 4; ++txn) {
    std::map<std::string, std::string> next[2] = {model[0], model[1]};
    std::vector<std::tuple<int, int, std::string, std::string>> ops;  // (op, db, key, value)
    for (int i = 0; i < 3000; ++i) {
      const int op = static_cast<int>(rng() % 10);  // 0-5 put, 6 put_if_absent, 7 del, 8 get, 9 scan, 10 clear
      const int db = static_cast<int>(rng() % 2);
      // Runs of ascending keys (the usual batch) and keys anywhere, values of varied sizes.
      const std::string key = i % 50 < 30 ? "k" + std::to_string(100000 + txn * 3000 + i) : "k" + std::to_string(rng() % 200000);
      ops.emplace_back(i == 1500 && txn == 2 ? 10 : op, db, key, std::string(rng() % 300, static_cast<char>('a' + rng() % 26)));
    }
    for (auto& [op, db, key, value] : ops) {
      if (op <= 5) next[db][key] = value;
      else if (op == 6) next[db].emplace(key, value);
      else if (op == 7) next[db].erase(key);
      else if (op == 10) next[db].clear();
    }
    int attempts = 0;
    REQUIRE(env->write([&](Txn& t) -> Status {
      ++attempts;
      for (auto& [op, db, key, value] : ops) {
        if (op <= 5) {
          CMG_RETURN_IF_ERROR(t.put(dbs[db], key, value));
        } else if (op == 6) {
          CMG_RETURN_IF_ERROR(t.put_if_absent(dbs[db], key, value).status());
        } else if (op == 7) {
          CMG_RETURN_IF_ERROR(t.del(dbs[db], key).status());
        } else if (op == 8) {
          CMG_RETURN_IF_ERROR(t.get(dbs[db], key).status());
        } else if (op == 10) {
          CMG_RETURN_IF_ERROR(t.clear(dbs[db]));  // emptied mid-transaction
        } else {
          int seen = 0;
          CMG_RETURN_IF_ERROR(t.scan(dbs[db], "k1", [&](std::string_view, std::string_view) { return ++seen < 20; }));
        }
      }
      return Status::ok();
    }).is_ok());
    if (txn == 0) CHECK(attempts > 1);  // the map had to grow: the body ran again
    model[0] = std::move(next[0]);
    model[1] = std::move(next[1]);
  }
  for (int db = 0; db < 2; ++db) {
    std::map<std::string, std::string> got;
    REQUIRE(env->read([&](Txn& t) {
      return t.scan(dbs[db], "", [&](std::string_view k, std::string_view v) {
        got.emplace(std::string(k), std::string(v));
        return true;
      });
    }).is_ok());
    CHECK(got.size() == model[db].size());
    CHECK(got == model[db]);
  }
}

TEST_CASE("scan visits keys with a prefix in order and can resume after a key") {
  TempDir dir;
  auto env = Env::open(dir.path());
  REQUIRE(env.is_ok());
  REQUIRE((*env)->write([](Txn& t) {
    for (const char* id : {"a", "b", "c"}) CMG_RETURN_IF_ERROR(t.put("r", key_of({"deals", id}), id));
    return t.put("r", key_of({"notes", "a"}), "n");
  }).is_ok());
  std::string seen, rev;
  REQUIRE((*env)->read([&](Txn& t) {
    CMG_RETURN_IF_ERROR(t.scan("r", key_of({"deals", ""}), [&](std::string_view, std::string_view v) {
      seen += std::string(v);
      return true;
    }, key_of({"deals", "a"})));
    return t.scan_reverse("r", key_of({"deals", ""}), [&](std::string_view, std::string_view v) {
      rev += std::string(v);
      return true;
    });
  }).is_ok());
  CHECK(seen == "bc");
  CHECK(rev == "cba");
}

TEST_CASE("a commit hook failure aborts the transaction with the hook's status") {
  TempDir dir;
  auto env = Env::open(dir.path());
  REQUIRE(env.is_ok());
  (*env)->set_commit_hook([](std::uint64_t n) {
    return n == 2 ? Status(Code::kIO, "injected: disk full") : Status::ok();
  });
  CHECK((*env)->write([](Txn& t) { return t.put("x", "1", "a"); }).is_ok());
  Status st = (*env)->write([](Txn& t) { return t.put("x", "2", "b"); });
  CHECK(st.code() == Code::kIO);
  CHECK(st.message() == "injected: disk full");
  bool has2 = true;
  REQUIRE((*env)->read([&](Txn& t) {
    CMG_ASSIGN_OR_RETURN(auto v, t.get("x", "2"));
    has2 = v.has_value();
    return Status::ok();
  }).is_ok());
  CHECK_FALSE(has2);
}

TEST_CASE("a second run lock on the same migration is refused") {
  TempDir dir;
  auto first = RunLock::acquire(dir.path());
  REQUIRE(first.is_ok());
  auto second = RunLock::acquire(dir.path());
  CHECK(second.status().code() == Code::kLocked);
  first = Status(Code::kInternal, "released");  // drops the first lock
  auto third = RunLock::acquire(dir.path());
  CHECK(third.is_ok());
}

TEST_CASE("composite keys split back into their parts and big-endian keys sort numerically") {
  auto k = key_of({"contacts", "42", "x"});
  auto parts = split_key(k);
  REQUIRE(parts.size() == 3);
  CHECK(parts[1] == "42");
  CHECK(be64(9) < be64(10));
  CHECK(from_be64(be64(123456789)) == 123456789u);
}

namespace {

// Natural order as EnvOptions::natural_order documents it, written plainly: parts compared in
// turn, a shorter part first, parts of one length by bytes; a key that runs out of parts first.
bool natural_less(const std::string& a, const std::string& b) {
  auto pa = split_key(a), pb = split_key(b);
  for (std::size_t i = 0; i < pa.size() && i < pb.size(); ++i) {
    if (pa[i].size() != pb[i].size()) return pa[i].size() < pb[i].size();
    if (pa[i] != pb[i]) return pa[i] < pb[i];
  }
  return pa.size() < pb.size();
}

std::vector<std::string> scan_keys(Env& env, std::string_view db, std::string_view prefix) {
  std::vector<std::string> keys;
  REQUIRE(env.read([&](Txn& t) {
    return t.scan(db, prefix, [&](std::string_view k, std::string_view) {
      keys.emplace_back(k);
      return true;
    });
  }).is_ok());
  return keys;
}

}  // namespace

TEST_CASE("natural order: shorter ids first, so numbered ids sort by value; only in the databases named at creation") {
  TempDir dir;
  EnvOptions opts;
  opts.natural_order = {"records"};
  {
    auto env = Env::open(dir.path(), opts);
    REQUIRE(env.is_ok());
    REQUIRE((*env)->write([](Txn& t) {
      for (const char* id : {"10", "9", "100", "x", "010", "", "1a", "2"}) {
        CMG_RETURN_IF_ERROR(t.put("records", key_of({"c", id}), id));
        CMG_RETURN_IF_ERROR(t.put("other", key_of({"c", id}), id));
      }
      CMG_RETURN_IF_ERROR(t.put("records", key_of({"b", "5"}), ""));
      return t.put("records", key_of({"c", "9", "x"}), "");
    }).is_ok());
    CHECK(scan_keys(**env, "records", key_of({"c", ""})) ==
          std::vector<std::string>{key_of({"c", ""}), key_of({"c", "2"}), key_of({"c", "9"}), key_of({"c", "9", "x"}),
                                   key_of({"c", "x"}), key_of({"c", "10"}), key_of({"c", "1a"}),
                                   key_of({"c", "010"}), key_of({"c", "100"})});
    // Another database keeps byte order.
    CHECK(scan_keys(**env, "other", "").front() == key_of({"c", ""}));
    CHECK(scan_keys(**env, "other", "")[1] == key_of({"c", "010"}));
    // A whole key as the prefix selects it and its longer keys, not the ids it starts.
    CHECK(scan_keys(**env, "records", key_of({"c", "9"})) ==
          std::vector<std::string>{key_of({"c", "9"}), key_of({"c", "9", "x"})});
    std::string got;
    REQUIRE((*env)->read([&](Txn& t) {
      CMG_ASSIGN_OR_RETURN(auto v, t.get("records", key_of({"c", "010"})));
      if (v) got = std::string(*v);
      return Status::ok();
    }).is_ok());
    CHECK(got == "010");
  }
  // Reopened without options, and with other names: the order recorded at creation holds.
  for (std::vector<std::string> names : {std::vector<std::string>{}, std::vector<std::string>{"other"}}) {
    EnvOptions again;
    again.natural_order = names;
    auto env = Env::open(dir.path(), again);
    REQUIRE(env.is_ok());
    auto keys = scan_keys(**env, "records", key_of({"c", ""}));
    REQUIRE(keys.size() == 9);
    CHECK(keys[2] == key_of({"c", "9"}));
    CHECK(scan_keys(**env, "other", "")[1] == key_of({"c", "010"}));
  }
}

TEST_CASE("natural order is not given to an environment that already has databases") {
  TempDir dir;
  {
    auto env = Env::open(dir.path());
    REQUIRE(env.is_ok());
    REQUIRE((*env)->write([](Txn& t) { return t.put("records", key_of({"c", "10"}), ""); }).is_ok());
  }
  EnvOptions opts;
  opts.natural_order = {"records"};
  auto env = Env::open(dir.path(), opts);
  REQUIRE(env.is_ok());
  REQUIRE((*env)->write([](Txn& t) { return t.put("records", key_of({"c", "9"}), ""); }).is_ok());
  CHECK(scan_keys(**env, "records", "") == std::vector<std::string>{key_of({"c", "10"}), key_of({"c", "9"})});
}

TEST_CASE("natural order agrees with its definition on random keys, in any insertion order") {
  TempDir dir;
  EnvOptions opts;
  opts.natural_order = {"d"};
  opts.initial_map_size = std::size_t{8} << 20;
  auto env = Env::open(dir.path(), opts);
  REQUIRE(env.is_ok());
  std::mt19937 rng(7);
  const std::string alphabet = "0019a\x1f";
  std::set<std::string> keys;
  while (keys.size() < 3000) {
    std::string k = rng() % 2 ? "obj\x1f" : "";
    const std::size_t len = rng() % 12;
    for (std::size_t i = 0; i < len; ++i) k += alphabet[rng() % alphabet.size()];
    if (rng() % 3 == 0) k += std::to_string(rng() % 100000);
    if (!k.empty()) keys.insert(k);
  }
  std::vector<std::string> shuffled(keys.begin(), keys.end());
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  // In three transactions: each starts appending and falls back when a key does not come last.
  for (std::size_t part = 0; part < 3; ++part) {
    REQUIRE((*env)->write([&](Txn& t) -> Status {
      for (std::size_t i = part; i < shuffled.size(); i += 3) {
        CMG_ASSIGN_OR_RETURN(bool fresh, t.put_if_absent("d", shuffled[i], shuffled[i]));
        if (!fresh) return Status(Code::kInternal, "a new key was found present");
      }
      return Status::ok();
    }).is_ok());
  }
  std::vector<std::string> want(keys.begin(), keys.end());
  std::sort(want.begin(), want.end(), natural_less);
  CHECK(scan_keys(**env, "d", "") == want);
  // Every key is found, and is present for put_if_absent.
  REQUIRE((*env)->write([&](Txn& t) -> Status {
    for (const auto& k : keys) {
      CMG_ASSIGN_OR_RETURN(auto v, t.get("d", k));
      if (!v || *v != k) return Status(Code::kInternal, "lost key");
      CMG_ASSIGN_OR_RETURN(bool fresh, t.put_if_absent("d", k, "x"));
      if (fresh) return Status(Code::kInternal, "a present key was put again");
    }
    return Status::ok();
  }).is_ok());
  // A prefix ending at a part boundary selects exactly the keys that start with it.
  std::vector<std::string> in_obj;
  for (const auto& k : want)
    if (k.rfind("obj\x1f", 0) == 0) in_obj.push_back(k);
  CHECK(scan_keys(**env, "d", "obj\x1f") == in_obj);
}

TEST_CASE("keys put in order are appended: the pages stay full") {
  // 20,000 numbered ids put in numeric order, in natural and in byte order: appended in natural
  // order, they take far fewer pages than when each page splits in half.
  auto pages = [](bool natural) {
    TempDir dir;
    EnvOptions opts;
    if (natural) opts.natural_order = {"d"};
    auto env = Env::open(dir.path(), opts);
    REQUIRE(env.is_ok());
    for (int batch = 0; batch < 40; ++batch) {
      REQUIRE((*env)->write([&](Txn& t) -> Status {
        for (int i = batch * 500 + 1; i <= (batch + 1) * 500; ++i)
          CMG_RETURN_IF_ERROR(t.put("d", key_of({"contacts", std::to_string(i)}), "{\"s\":\"planned\"}"));
        return Status::ok();
      }).is_ok());
    }
    CHECK(scan_keys(**env, "d", "").size() == 20000);
    return std::filesystem::file_size(dir.path() + "/data.mdb");
  };
  const auto natural = pages(true), bytes = pages(false);
  CAPTURE(natural);
  CAPTURE(bytes);
  CHECK(natural * 10 < bytes * 7);
}
