// Crash points: named places on the durability boundaries where a test can make the process die
// (as SIGKILL would) to prove that resume never duplicates or loses a record.
//
// Armed by the environment, read once: CMG_CRASH_POINT=<name> and CMG_CRASH_AFTER=<n> (default 1)
// kill the process with _exit(99) at the n-th time <name> is reached. Unset = no cost beyond a
// branch. Names: before_intents, after_intents, after_send, after_confirm.
#pragma once

namespace cmg {

void crash_point(const char* name);

}  // namespace cmg
