// mcpmw pool: launching and confining one child process.
//
// The governor decides whether a command may run; Spawn() runs it. Containment is one ordered
// list of steps in the child before exec (nsjail style), each failing with an error that names
// the step: own process group, PR_SET_PDEATHSIG(SIGKILL) (so SIGKILL of mcpmw takes the child
// with it), parent-still-alive check, stdio wiring, signal mask and dispositions reset, then the
// sandbox steps of a prepared plan (pool/sandbox/sandbox.h: no_new_privs, rlimits, cgroup,
// namespaces, seccomp), chdir, every other fd closed, exec with the given or inherited
// environment. The child is started with clone(CLONE_PIDFD) (plus CLONE_NEW* when the plan asks
// for namespaces), so the parent holds it by pidfd from the first instant, and signals and waits
// can never hit a recycled pid.
//
// Threading: PR_SET_PDEATHSIG fires when the *thread* that forked exits, so call Spawn() from a
// thread that lives as long as the child should (the reactor thread).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/sandbox/cgroup.h"
#include "pool/sandbox/sandbox.h"
#include "src/common/fd.h"

namespace mcpmw::pool {

struct SpawnOptions {
  // argv[0] is looked up on mcpmw's PATH when it has no '/' (never on `env`'s PATH, so the
  // governor's allowlist check and the exec see the same file); a relative path with a '/' is
  // relative to `cwd` when that is set.
  std::vector<std::string> argv;
  // When true the child's stderr is mcpmw's stderr (MCP servers log there); else /dev/null.
  bool inherit_stderr = true;
  // When true the child's stderr is a pipe read through Child::stderr_fd (the pool logs each line
  // tagged with the worker); takes precedence over inherit_stderr.
  bool capture_stderr = false;
  // When set, the child's complete environment, each entry "KEY=VALUE"; nothing of mcpmw's own
  // environment is passed. When unset the child inherits mcpmw's environment.
  std::optional<std::vector<std::string>> env;
  // When non-empty, the child's working directory (containment step `chdir`).
  std::string cwd;
  // When set, the sandbox applied to the child: Spawn calls sandbox->Prepare(worker_name) (which
  // creates the worker's cgroup, named after `worker_name`, or argv[0] when that is empty) and
  // the child runs its steps. Needs to stay alive for the Spawn call only.
  const sandbox::SandboxPlan* sandbox = nullptr;
  std::string worker_name;
};

struct Child {
  pid_t pid = -1;
  UniqueFd pidfd;      // POLLIN when the child exits; used for signals and reaping
  UniqueFd stdin_fd;   // write end of the child's stdin (non-CLOEXEC in child only)
  UniqueFd stdout_fd;  // read end of the child's stdout
  UniqueFd stderr_fd;  // read end of the child's stderr (only with SpawnOptions::capture_stderr)
  // The worker's cgroup when its sandbox has the cgroup step (else empty). Reap() kills whatever
  // is left in it and removes it; destroying an unreaped Child does the same, but leaves the
  // child itself a zombie, so reap first.
  sandbox::WorkerCgroup cgroup;
};

// Starts the child. Fails with NotFound when argv[0] cannot be found, PermissionDenied when it
// is not executable, InvalidArgument for a malformed argv/env/cwd, the sandbox's error when its
// per-worker preparation fails, or Internal naming the containment step that failed; the message
// is ready for an operator ("cannot start `nosuch`: no such file on PATH", "cannot start `srv`:
// containment step `seccomp` failed: Permission denied").
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
// left in its process group and, when it has a cgroup, everything in the cgroup (grandchildren
// that left the group with setsid) before removing the cgroup, so no grandchild outlives it.
// Fails only if the child is not done; a cgroup that cannot be removed is logged.
absl::StatusOr<ExitStatus> Reap(Child& child);

}  // namespace mcpmw::pool
