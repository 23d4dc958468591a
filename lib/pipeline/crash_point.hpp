// Crash points: named places on the durability boundaries where a test can make the process die
// (as SIGKILL would) to prove that resume never duplicates or loses a record.
//
// Armed by the environment, read once: CMG_CRASH_POINT=<name> and CMG_CRASH_AFTER=<n> (default 1)
// kill the process with _exit(99) at the n-th time <name> is reached. Unset = no cost beyond a
// branch. Names:
//   before_intents, after_intents, after_send, after_confirm   (write.cpp, once per write batch)
//   commit   the process dies just before the n-th commit of the migration state (the LMDB
//            environment opened by Migration::open, counted from 1 in this process). Every state
//            change is one commit, so this covers before/after the intent commit, the confirm commit,
//            mid-audit, mid-queue-fix and mid-reprocess. The sandbox's own LMDB (the destination) is
//            not counted: a crash there is "after send".
//
// Storage faults: CMG_FAIL_COMMIT_AT=<n> makes the n-th commit of the migration state, and every
// later one (a full disk stays full), fail as the disk would — the transaction is aborted, so nothing
// of its batch is committed — with ENOSPC, or EIO when CMG_FAIL_COMMIT_ERRNO=EIO. The command stops
// with that error; running it again (without the variable) resumes.
//
// Test aid: CMG_COMMIT_COUNT_FILE=<path> writes the number of state commits this process made to
// <path> when it exits normally (used by the crash harness to spread commit-level crashes over a
// command). Unset = nothing installed.
#pragma once

namespace cmg {

namespace store {
class Env;
}

void crash_point(const char* name);

/// Installs the commit-level crash point, the commit failure and/or the commit counter on `env` when
/// the environment asks for them (CMG_CRASH_POINT=commit, CMG_FAIL_COMMIT_AT, CMG_COMMIT_COUNT_FILE);
/// otherwise does nothing and the
/// Env has no hook at all.
void arm_commit_crash_point(store::Env& env);

}  // namespace cmg
