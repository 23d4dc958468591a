#include "crash_point.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <string>

#include "crmmigrate/store/lmdb_env.hpp"

namespace cmg {

namespace {
struct Armed {
  std::string name;
  long after = 1;
  std::atomic<long> hits{0};
  std::string count_file;
  long fail_commit_at = 0;  // 0 = never
  int fail_errno = ENOSPC;
  Armed() {
    if (const char* n = std::getenv("CMG_CRASH_POINT")) name = n;
    if (const char* a = std::getenv("CMG_CRASH_AFTER")) after = std::max(1L, std::strtol(a, nullptr, 10));
    if (const char* f = std::getenv("CMG_COMMIT_COUNT_FILE")) count_file = f;
    if (const char* n = std::getenv("CMG_FAIL_COMMIT_AT")) fail_commit_at = std::max(0L, std::strtol(n, nullptr, 10));
    if (const char* e = std::getenv("CMG_FAIL_COMMIT_ERRNO")) fail_errno = std::strcmp(e, "EIO") == 0 ? EIO : ENOSPC;
  }
};
Armed& armed() {
  static Armed a;
  return a;
}

std::atomic<std::uint64_t> g_commits{0};

void write_commit_count() {
  const std::string& path = armed().count_file;
  if (path.empty()) return;
  if (std::FILE* f = std::fopen(path.c_str(), "w")) {
    std::fprintf(f, "%llu\n", static_cast<unsigned long long>(g_commits.load()));
    std::fclose(f);
  }
}
}  // namespace

void crash_point(const char* name) {
  Armed& a = armed();
  if (a.name.empty() || a.name != name) return;
  if (++a.hits >= a.after) ::_exit(99);
}

void arm_commit_crash_point(store::Env& env) {
  Armed& a = armed();
  const bool crash = a.name == "commit";
  const bool count = !a.count_file.empty();
  const long fail_at = a.fail_commit_at;
  if (!crash && !count && fail_at == 0) return;
  if (count) {
    static bool registered = false;
    if (!registered) {
      registered = true;
      std::atexit(write_commit_count);
    }
  }
  // Commit numbers are counted across every Env armed here, so a process that opens the state
  // twice still dies at its n-th state commit.
  const long after = a.after;
  const int fail_errno = a.fail_errno;
  const std::string path = env.path();
  env.set_commit_hook([crash, after, fail_at, fail_errno, path](std::uint64_t) -> Status {
    // A failed commit is not counted: nothing reached the disk.
    if (fail_at > 0 && g_commits.load() + 1 >= static_cast<std::uint64_t>(fail_at))
      return io_error("committing the migration state in " + path + ": " + std::strerror(fail_errno) +
                      " (injected by CMG_FAIL_COMMIT_AT)");
    std::uint64_t n = ++g_commits;
    if (crash && n >= static_cast<std::uint64_t>(after)) ::_exit(99);
    return Status::ok();
  });
}

}  // namespace cmg
