// mcpmw pool: launching and confining one child process.
//
// The governor decides whether a command may run; Spawn() runs it. Containment is one ordered
// list of steps in the child before exec (nsjail style), each failing with an error that names
// the step: own process group, PR_SET_PDEATHSIG(SIGKILL) (so SIGKILL of mcpmw takes the child
// with it), parent-still-alive check, stdio wiring, signal mask and dispositions reset, every
// other fd closed, exec. The parent holds the child by pidfd, so signals and waits can never hit
// a recycled pid.
//
// Threading: PR_SET_PDEATHSIG fires when the *thread* that forked exits, so call Spawn() from a
// thread that lives as long as the child should (the reactor thread).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/common/fd.h"

namespace mcpmw::pool {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH when it has no '/'
  // When true the child's stderr is mcpmw's stderr (MCP servers log there); else /dev/null.
  bool inherit_stderr = true;
};

struct Child {
  pid_t pid = -1;
  UniqueFd pidfd;      // POLLIN when the child exits; used for signals and reaping
  UniqueFd stdin_fd;   // write end of the child's stdin (non-CLOEXEC in child only)
  UniqueFd stdout_fd;  // read end of the child's stdout
};

// Starts the child. Fails with NotFound when argv[0] cannot be found, PermissionDenied when it
// is not executable, or Internal naming the containment step that failed; the message is ready
// for an operator ("cannot start `nosuch`: no such file on PATH").
absl::StatusOr<Child> Spawn(const SpawnOptions& options);

// Sends `signo` to the child's whole process group (so helpers it started go too), falling back
// to the child itself via its pidfd. Safe to call after the child exited but before it is reaped.
void SignalChild(const Child& child, int signo);

struct ExitStatus {
  bool exited = false;  // true: normal exit with `code`; false: killed by `signal`
  int code = 0;
  int signal = 0;
  // "exit code 3" / "signal 9 (Killed)".
  std::string Describe() const;
};

// Reaps the child once its pidfd is readable (call after WaitPidfd). Also SIGKILLs whatever is
// left in its process group, so no grandchild outlives it. Fails only if the child is not done.
absl::StatusOr<ExitStatus> Reap(Child& child);

}  // namespace mcpmw::pool
