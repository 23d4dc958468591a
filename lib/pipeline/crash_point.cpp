#include "crash_point.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
  Armed() {
    if (const char* n = std::getenv("CMG_CRASH_POINT")) name = n;
    if (const char* a = std::getenv("CMG_CRASH_AFTER")) after = std::max(1L, std::strtol(a, nullptr, 10));
    if (const char* f = std::getenv("CMG_COMMIT_COUNT_FILE")) count_file = f;
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
  if (!crash && !count) return;
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
  env.set_commit_hook([crash, after](std::uint64_t) -> Status {
    std::uint64_t n = ++g_commits;
    if (crash && n >= static_cast<std::uint64_t>(after)) ::_exit(99);
    return Status::ok();
  });
}

}  // namespace cmg
