// Runs the crmmigrate CLI as a child process and captures its output and exit code.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

struct CliResult {
  int code = -1;  // exit code, or 128 + signal
  std::string out, err;
};

inline std::string slurp_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Starts the CLI with `args` (and extra environment), stdout/stderr redirected to the files.
inline pid_t spawn_cli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                       const std::string& out_path, const std::string& err_path) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    std::string exe = CMG_CLI_PATH;
    argv.push_back(exe.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

/// Exit code of a finished child, or 128 + signal.
inline int wait_exit_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline CliResult run_cli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                         const std::string& scratch = "/tmp") {
  CliResult r;
  std::string out_path = scratch + "/cli.out", err_path = scratch + "/cli.err";
  r.code = wait_exit_code(spawn_cli(args, env, out_path, err_path));
  r.out = slurp_file(out_path);
  r.err = slurp_file(err_path);
  return r;
}
