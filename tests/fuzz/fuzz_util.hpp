// Helpers shared by the libFuzzer targets in tests/fuzz/ and their corpus replays.
//
// A target is built two ways from the same source: with -fsanitize=fuzzer (CMG_FUZZ, clang only),
// where libFuzzer supplies main(), and with CMG_FUZZ_REPLAY, where replay_main.cpp calls
// LLVMFuzzerTestOneInput on every file of the committed seed corpus (ctest fuzz_replay_*).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crmmigrate/core/status.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace cmg::fuzz {

/// Reports a broken invariant and aborts, which libFuzzer records as a crash (with the input)
/// and the replay turns into a failed test.
[[noreturn]] inline void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n  %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

/// Every error a reader or parser returns for bad bytes must carry `code` and a message that
/// starts with `prefix` (the file name, so a person can find the input).
inline void check_error(const Status& st, Code code, std::string_view prefix) {
  if (st.is_ok()) fail("an error Status was expected", "got OK");
  if (st.code() != code) fail("unexpected error code", st.to_string());
  if (st.message().compare(0, prefix.size(), prefix) != 0) fail("message does not name the input", st.message());
}

}  // namespace cmg::fuzz

#define CMG_FUZZ_CHECK(cond, detail)                       \
  do {                                                     \
    if (!(cond)) ::cmg::fuzz::fail(#cond, (detail));       \
  } while (0)
