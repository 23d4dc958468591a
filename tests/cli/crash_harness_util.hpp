// Process and directory helpers for the crash harness (tests/cli/crash_harness_test.cpp).
//
// The harness runs several schedules at once from worker threads, so the child is started with
// everything prepared before fork(): the child only calls async-signal-safe functions (open, dup2,
// execve, _exit) — no setenv or allocation between fork and exec.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace crash_harness {

/// How a child ended.
struct ChildEnd {
  int code = -1;         // exit code, or 128 + signal
  bool killed = false;   // we sent SIGKILL and the child died of it
};

/// Runs the CLI with `args`; `env` entries override (and CMG_CRASH_* / CMG_COMMIT_COUNT_FILE of the
/// test's own environment are never inherited). With `kill_after_ms` >= 0 the child is sent SIGKILL
/// after that many milliseconds unless it has exited by then.
inline ChildEnd run_child(const std::string& exe, const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env, const std::string& out_path,
                          const std::string& err_path, int kill_after_ms = -1) {
  std::vector<std::string> envs;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    std::string k = kv.substr(0, kv.find('='));
    if (k.rfind("CMG_CRASH_", 0) == 0 || k == "CMG_COMMIT_COUNT_FILE" || env.count(k)) continue;
    envs.push_back(std::move(kv));
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<std::string> argv_s;
  argv_s.push_back(exe);
  for (const auto& a : args) argv_s.push_back(a);
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0) ::_exit(126);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ChildEnd end;
  if (pid < 0) return end;
  int status = 0;
  if (kill_after_ms >= 0) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kill_after_ms);
    for (;;) {
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) break;  // exited before the kill
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid, SIGKILL);  // still our unreaped child: the pid cannot have been reused
        ::waitpid(pid, &status, 0);
        end.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  } else {
    ::waitpid(pid, &status, 0);
  }
  end.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return end;
}

/// Copies a schedule directory (config, sandboxes, state) without LMDB lock files: the copy
/// starts with no reader table and no run lock, as after a reboot.
inline void copy_tree(const std::filesystem::path& from, const std::filesystem::path& to) {
  namespace fs = std::filesystem;
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) {
    const auto name = e.path().filename();
    if (name == "lock.mdb" || name == "run.lock") continue;
    if (e.is_directory()) copy_tree(e.path(), to / name);
    else fs::copy_file(e.path(), to / name, fs::copy_options::overwrite_existing);
  }
}

}  // namespace crash_harness
