#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "crmmigrate/store/lmdb_env.hpp"
#include "test_util.hpp"

using namespace cmg;
using namespace cmg::store;

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
  EnvOptions opts;
  opts.initial_map_size = 64 * 1024;
  auto env = Env::open(dir.path(), opts);
  REQUIRE(env.is_ok());
  std::string big(4096, 'x');
  REQUIRE((*env)->write([&](Txn& t) {
    for (int i = 0; i < 2000; ++i) CMG_RETURN_IF_ERROR(t.put("blob", be64(static_cast<std::uint64_t>(i)), big));
    return Status::ok();
  }).is_ok());
  CHECK((*env)->map_size() > opts.initial_map_size);
  std::uint64_t n = 0;
  REQUIRE((*env)->read([&](Txn& t) {
    CMG_ASSIGN_OR_RETURN(n, t.count("blob"));
    return Status::ok();
  }).is_ok());
  CHECK(n == 2000);
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
