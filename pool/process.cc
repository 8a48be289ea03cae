#include "pool/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "pool/path_lookup.h"
#include "pool/sandbox/sandbox.h"
#include "src/common/log.h"
#include "src/common/status.h"
#include "src/common/strings.h"

extern char** environ;

namespace mcpmw::pool {
namespace {

// The containment steps run in the child, in order. The child reports a failure as
// (step, errno) over the error pipe; the parent turns it into a message naming the step.
enum class Step : int32_t {
  kSetProcessGroup = 1,
  kSetParentDeathSignal,
  kCheckParentAlive,
  kWireStdin,
  kWireStdout,
  kWireStderr,
  kResetSignalDispositions,
  kClearSignalMask,
  kChdir,
  kCloseOtherFds,
  kExec,
};

// A sandbox step is reported as kSandboxStepBase + sandbox::ChildStep.
constexpr int32_t kSandboxStepBase = 100;

std::string_view StepName(Step step) {
  switch (step) {
    case Step::kSetProcessGroup:
      return "setpgid (own process group)";
    case Step::kSetParentDeathSignal:
      return "prctl(PR_SET_PDEATHSIG, SIGKILL)";
    case Step::kCheckParentAlive:
      return "parent-alive check";
    case Step::kWireStdin:
      return "dup2 stdin";
    case Step::kWireStdout:
      return "dup2 stdout";
    case Step::kWireStderr:
      return "dup2 stderr";
    case Step::kResetSignalDispositions:
      return "reset signal dispositions";
    case Step::kClearSignalMask:
      return "clear signal mask";
    case Step::kChdir:
      return "chdir";
    case Step::kCloseOtherFds:
      return "close inherited descriptors";
    case Step::kExec:
      return "exec";
  }
  return "unknown step";
}

struct ChildReport {
  int32_t step;
  int32_t error;
};

// Every Spawn() failure reads "cannot start `PROGRAM`: …" so the operator sees what was refused.
absl::Status CannotStart(std::string_view program, const absl::Status& status) {
  return {status.code(), absl::StrCat("cannot start `", Sv(program), "`: ", status.message())};
}

absl::Status ErrnoStatus(int error, std::string_view what) {
  return {absl::ErrnoToStatusCode(error), absl::StrCat(Sv(what), ": ", ErrnoText(error))};
}

// The kernel's struct sigaction for rt_sigaction(2) on Linux (not glibc's layout).
struct KernelSigaction {
  __sighandler_t handler;
  unsigned long flags;  // NOLINT(google-runtime-int): the kernel ABI type
  void (*restorer)();
  uint64_t mask;
};

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int PidfdSendSignal(int pidfd, int signo) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
}

// Makes a pipe whose both ends are CLOEXEC and above 0..2, so the child's dup2 onto its stdio
// never overwrites (or becomes a no-op on) a descriptor it still needs, even when mcpmw itself
// was started with stdin or stdout closed.
absl::Status MakePipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return ErrnoStatus(errno, "pipe2");
  }
  UniqueFd ends[2] = {UniqueFd(fds[0]), UniqueFd(fds[1])};
  for (UniqueFd& end : ends) {
    if (end.Get() <= STDERR_FILENO) {
      int moved = ::fcntl(end.Get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
      if (moved < 0) {
        return ErrnoStatus(errno, "fcntl(F_DUPFD_CLOEXEC)");
      }
      end.Reset(moved);
    }
  }
  read_end = std::move(ends[0]);
  write_end = std::move(ends[1]);
  return absl::OkStatus();
}

// Everything the child needs, prepared before fork so the child allocates nothing.
struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  pid_t parent;
  int parent_pidfd;  // >= 0 only in a new pid namespace, where getppid() is 0
  int stdin_read;
  int stdout_write;
  int stderr_null;  // /dev/null or the capture pipe; -1: inherit
  int report_write;
  const char* cwd;                   // nullptr: stay where mcpmw is
  const sandbox::ChildSteps* steps;  // nullptr: no sandbox
};

[[noreturn]] void FailInChild(int report_fd, int32_t step, int error) {
  ChildReport report{step, error};
  // One small write to a pipe is atomic; if it fails the parent sees EOF-less exit 127 anyway.
  ssize_t ignored = ::write(report_fd, &report, sizeof(report));
  (void)ignored;
  ::_exit(127);
}

[[noreturn]] void FailInChild(int report_fd, Step step, int error) {
  FailInChild(report_fd, static_cast<int32_t>(step), error);
}

// Runs in the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void RunChild(const ChildPlan& plan) {
  const int report = plan.report_write;
  if (::setpgid(0, 0) != 0) {
    FailInChild(report, Step::kSetProcessGroup, errno);
  }
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
    FailInChild(report, Step::kSetParentDeathSignal, errno);
  }
  // The parent may have died before PR_SET_PDEATHSIG was armed; then nobody will kill us later.
  // In a new pid namespace the parent is invisible (getppid() is 0); its pidfd turns readable
  // when it exits.
  if (plan.parent_pidfd >= 0) {
    pollfd parent{plan.parent_pidfd, POLLIN, 0};
    if (::poll(&parent, 1, 0) != 0) {
      FailInChild(report, Step::kCheckParentAlive, ESRCH);
    }
  } else if (::getppid() != plan.parent) {
    FailInChild(report, Step::kCheckParentAlive, ESRCH);
  }
  // Sources are all > 2 (MakePipe), so dup2 always makes a new, non-CLOEXEC descriptor.
  if (::dup2(plan.stdin_read, STDIN_FILENO) < 0) {
    FailInChild(report, Step::kWireStdin, errno);
  }
  if (::dup2(plan.stdout_write, STDOUT_FILENO) < 0) {
    FailInChild(report, Step::kWireStdout, errno);
  }
  if (plan.stderr_null >= 0 && ::dup2(plan.stderr_null, STDERR_FILENO) < 0) {
    FailInChild(report, Step::kWireStderr, errno);
  }
  // Dispositions first, mask second: with the mask still full (the parent blocked everything
  // around fork) no handler copied from mcpmw can run in the child. Ignored signals would
  // survive exec, so they are reset too (an MCP server expects SIGPIPE to be default).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) {
      continue;
    }
    if (::sigaction(sig, &dfl, nullptr) == 0) {
      continue;
    }
    if (errno != EINVAL) {
      FailInChild(report, Step::kResetSignalDispositions, errno);
    }
    // glibc refuses the numbers it reserves for itself (32, 33), yet an ignored disposition
    // there is inherited across exec like any other: reset them with the raw system call.
    KernelSigaction raw{};
    raw.handler = SIG_DFL;
    if (::syscall(SYS_rt_sigaction, sig, &raw, nullptr, sizeof(raw.mask)) != 0 && errno != EINVAL) {
      FailInChild(report, Step::kResetSignalDispositions, errno);
    }
  }
  sigset_t empty;
  ::sigemptyset(&empty);
  // The child has a single thread, so the process-wide call is well defined here.
  if (::sigprocmask(SIG_SETMASK, &empty, nullptr) != 0) {  // NOLINT(concurrency-mt-unsafe)
    FailInChild(report, Step::kClearSignalMask, errno);
  }
  if (plan.steps != nullptr) {
    sandbox::ChildFailure failure;
    if (!sandbox::ApplyInChild(*plan.steps, &failure)) {
      FailInChild(report, kSandboxStepBase + static_cast<int32_t>(failure.step), failure.error);
    }
  }
  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) {
    FailInChild(report, Step::kChdir, errno);
  }
  // Close everything above stdio except the report pipe, which is CLOEXEC and closes itself on
  // a successful exec (that EOF is how the parent learns exec worked).
  if (report > STDERR_FILENO + 1 && ::close_range(STDERR_FILENO + 1, report - 1, 0) != 0) {
    FailInChild(report, Step::kCloseOtherFds, errno);
  }
  if (::close_range(report + 1, ~0U, 0) != 0) {
    FailInChild(report, Step::kCloseOtherFds, errno);
  }
  // execve of the path resolved before fork (not execvp): execve is async-signal-safe, and the
  // child runs exactly the file the parent checked.
  ::execve(plan.path, plan.argv, plan.envp);
  FailInChild(report, Step::kExec, errno);
}

// Turns the child's report into the operator-facing status.
absl::Status ReportStatus(std::string_view program, const ChildReport& report) {
  if (report.step >= kSandboxStepBase) {
    const auto step = static_cast<sandbox::ChildStep>(report.step - kSandboxStepBase);
    return CannotStart(program, absl::InternalError(absl::StrCat(
                                    "containment step `", Sv(sandbox::ChildStepName(step)),
                                    "` failed: ", ErrnoText(report.error))));
  }
  const Step step = static_cast<Step>(report.step);
  if (step == Step::kExec) {
    // errno's canonical code: ENOENT → NotFound, EACCES/EPERM → PermissionDenied, …
    return CannotStart(program, ErrnoStatus(report.error, "exec failed"));
  }
  return CannotStart(program,
                     absl::InternalError(absl::StrCat("containment step `", Sv(StepName(step)),
                                                      "` failed: ", ErrnoText(report.error))));
}

// clone3(2)'s argument block (linux/sched.h's struct clone_args, which cannot be included next
// to glibc's <sched.h>).
struct CloneArgs {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};

// fork(2) plus `namespace_flags` and CLONE_PIDFD, so the parent holds a pidfd from the first
// instant (no window where the pid could be reaped and reused) and the child can be pid 1 of a
// new pid namespace. Returns the pid in the parent and 0 in the child, which shares nothing with
// the parent (no stack or thread is shared, exactly as after fork). clone3 needs Linux 5.3;
// container seccomp profiles that refuse it with ENOSYS get clone(2), whose third argument is
// the pidfd slot on every architecture mcpmw builds for (x86-64, arm64).
pid_t CloneChild(uint64_t namespace_flags, int* pidfd) {
  CloneArgs args{};
  args.flags = CLONE_PIDFD | namespace_flags;
  args.pidfd = reinterpret_cast<uintptr_t>(pidfd);
  args.exit_signal = SIGCHLD;
  long rc = ::syscall(SYS_clone3, &args, sizeof(args));  // NOLINT(google-runtime-int)
  if (rc < 0 && errno == ENOSYS) {
    rc = ::syscall(SYS_clone, CLONE_PIDFD | namespace_flags | SIGCHLD, nullptr, pidfd, nullptr,
                   nullptr);
  }
  return static_cast<pid_t>(rc);
}

// Blocks every signal on this thread for its lifetime, restoring the old mask afterwards. Keeps
// mcpmw's handlers from running in the child before it resets them.
class ScopedBlockAllSignals {
 public:
  ScopedBlockAllSignals() {
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved_);
  }
  ~ScopedBlockAllSignals() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  ScopedBlockAllSignals(const ScopedBlockAllSignals&) = delete;
  ScopedBlockAllSignals& operator=(const ScopedBlockAllSignals&) = delete;

 private:
  sigset_t saved_;
};

}  // namespace

absl::StatusOr<Child> Spawn(const SpawnOptions& options) {
  if (options.argv.empty() || options.argv.front().empty()) {
    return absl::InvalidArgumentError("cannot start a process: the command is empty");
  }
  const std::string& program = options.argv.front();
  for (const std::string& arg : options.argv) {
    if (arg.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot start `", program, "`: an argument contains a NUL byte"));
    }
  }
  std::vector<char*> envp;
  if (options.env) {
    envp.reserve(options.env->size() + 1);
    for (const std::string& entry : *options.env) {
      if (entry.find('\0') != std::string::npos || entry.find('=') == std::string::npos ||
          entry.front() == '=') {
        return absl::InvalidArgumentError(absl::StrCat("cannot start `", program,
                                                       "`: environment entry \"",
                                                       entry.substr(0, 64), "\" is not KEY=VALUE"));
      }
      envp.push_back(const_cast<char*>(entry.c_str()));
    }
    envp.push_back(nullptr);
  }
  if (options.cwd.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot start `", program, "`: the working directory contains a NUL byte"));
  }
  // "./server" in a profile with a cwd means the server in that directory, as in a shell after cd.
  const bool relative_to_cwd =
      !options.cwd.empty() && program.front() != '/' && program.find('/') != std::string::npos;
  absl::StatusOr<std::string> path = FindExecutable(
      relative_to_cwd ? absl::StrCat(options.cwd, "/", program) : program, EffectiveSearchPath());
  if (!path.ok()) {
    return CannotStart(program, path.status());
  }
  if (!options.cwd.empty() && path->front() != '/') {
    // Still relative (a relative cwd, or "." on PATH): anchor it before the child changes
    // directory, so exec runs the file that was checked.
    char here[PATH_MAX];
    if (::getcwd(here, sizeof(here)) == nullptr) {
      return CannotStart(program, ErrnoStatus(errno, "getcwd"));
    }
    *path = absl::StrCat(here, "/", *path);
  }

  std::optional<sandbox::WorkerSandbox> worker_sandbox;
  if (options.sandbox != nullptr) {
    absl::StatusOr<sandbox::WorkerSandbox> prepared = options.sandbox->Prepare(
        options.worker_name.empty() ? std::string_view(program) : options.worker_name);
    if (!prepared.ok()) {
      return CannotStart(program, prepared.status());
    }
    worker_sandbox = *std::move(prepared);
  }
  const uint64_t namespace_flags = worker_sandbox ? worker_sandbox->clone_flags() : 0;
  UniqueFd parent_pidfd;
  if ((namespace_flags & CLONE_NEWPID) != 0) {
    parent_pidfd.Reset(PidfdOpen(::getpid()));
    if (!parent_pidfd.Valid()) {
      return CannotStart(program, ErrnoStatus(errno, "pidfd_open (needs Linux 5.3+)"));
    }
  }

  std::vector<char*> argv;
  argv.reserve(options.argv.size() + 1);
  for (const std::string& arg : options.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);

  UniqueFd stdin_read, stdin_write, stdout_read, stdout_write, report_read, report_write;
  for (auto [read_end, write_end] :
       {std::pair{&stdin_read, &stdin_write}, std::pair{&stdout_read, &stdout_write},
        std::pair{&report_read, &report_write}}) {
    if (absl::Status made = MakePipe(*read_end, *write_end); !made.ok()) {
      return CannotStart(program, made);
    }
  }
  UniqueFd stderr_read, stderr_write;
  if (options.capture_stderr) {
    if (absl::Status made = MakePipe(stderr_read, stderr_write); !made.ok()) {
      return CannotStart(program, made);
    }
  }
  UniqueFd dev_null;
  if (!options.inherit_stderr && !options.capture_stderr) {
    dev_null.Reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (!dev_null.Valid()) {
      return CannotStart(program, ErrnoStatus(errno, "open /dev/null"));
    }
  }

  const int stderr_target = options.capture_stderr ? stderr_write.Get() : dev_null.Get();
  const ChildPlan plan{
      .path = path->c_str(),
      .argv = argv.data(),
      .envp = options.env ? envp.data() : environ,
      .parent = ::getpid(),
      .parent_pidfd = parent_pidfd.Get(),
      .stdin_read = stdin_read.Get(),
      .stdout_write = stdout_write.Get(),
      .stderr_null = stderr_target,
      .report_write = report_write.Get(),
      .cwd = options.cwd.empty() ? nullptr : options.cwd.c_str(),
      .steps = worker_sandbox ? &worker_sandbox->child_steps() : nullptr,
  };
  pid_t pid;
  int pidfd = -1;
  int fork_error = 0;
  {
    ScopedBlockAllSignals blocked;
    pid = CloneChild(namespace_flags, &pidfd);
    if (pid == 0) {
      RunChild(plan);
    }
    fork_error = errno;  // before the mask is restored
  }
  if (pid < 0) {
    const bool namespaces = namespace_flags != 0;
    return CannotStart(program, ErrnoStatus(fork_error, namespaces ? "clone with new namespaces"
                                                                   : "clone (fork)"));
  }

  // Only the child's copies of these may stay open, or EOF would never arrive on either pipe.
  stdin_read.Reset();
  stdout_write.Reset();
  report_write.Reset();
  dev_null.Reset();
  stderr_write.Reset();

  parent_pidfd.Reset();

  Child child;
  child.pid = pid;
  child.pidfd.Reset(pidfd);
  if (worker_sandbox) {
    // From here the Child owns the cgroup: a failed start below tears it down with the Child.
    child.cgroup = worker_sandbox->TakeCgroup();
    child.cgroup.CloseJoinFds();
  }

  ChildReport report{};
  ssize_t got;
  do {
    got = ::read(report_read.Get(), &report, sizeof(report));
  } while (got < 0 && errno == EINTR);

  absl::Status failure;
  if (got == static_cast<ssize_t>(sizeof(report))) {
    failure = ReportStatus(program, report);
  } else if (got != 0) {
    failure = CannotStart(program, absl::InternalError("lost the child's start-up report"));
  }
  if (!failure.ok()) {
    // The child has exited or is about to; make sure of it and leave no zombie behind.
    ::kill(pid, SIGKILL);
    int ignored_status;
    while (::waitpid(pid, &ignored_status, 0) < 0 && errno == EINTR) {
    }
    return failure;
  }
  child.stdin_fd = std::move(stdin_write);
  child.stdout_fd = std::move(stdout_read);
  child.stderr_fd = std::move(stderr_read);
  return child;
}

void SignalChild(const Child& child, int signo) {
  if (child.pid <= 0) {
    return;
  }
  // The child leads its own group (pgid == pid), and an unreaped child keeps that id from being
  // reused, so the group kill cannot reach strangers.
  if (::kill(-child.pid, signo) == 0) {
    return;
  }
  if (child.pidfd.Valid()) {
    PidfdSendSignal(child.pidfd.Get(), signo);  // ESRCH: already gone, nothing to do
  }
}

absl::StatusOr<ExitStatus> Reap(Child& child) {
  if (child.pid <= 0) {
    return absl::FailedPreconditionError("no child to reap (already reaped or never started)");
  }
  // Peek first (WNOWAIT): the zombie must still hold its pid while its group is killed below.
  siginfo_t info{};
  int rc;
  const bool by_pidfd = child.pidfd.Valid();
  do {
    rc = by_pidfd ? ::waitid(P_PIDFD, child.pidfd.Get(), &info, WEXITED | WNOHANG | WNOWAIT) : -1;
    if (rc < 0 && (!by_pidfd || errno == EINVAL)) {
      // P_PIDFD needs Linux 5.4; the pid is still safe to use because the child is unreaped.
      rc = ::waitid(P_PID, child.pid, &info, WEXITED | WNOHANG | WNOWAIT);
    }
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    return ErrnoStatus(errno, absl::StrCat("waitid for child ", child.pid));
  }
  if (info.si_pid == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("child ", child.pid, " has not exited yet; wait for its pidfd first"));
  }

  // Helpers the child started (a shell's background jobs, npx's node) would otherwise outlive it.
  ::kill(-child.pid, SIGKILL);
  // The cgroup also holds those that left the process group (setsid, double fork).
  if (absl::Status torn = child.cgroup.Teardown(); !torn.ok()) {
    LogError("worker ", child.pid, ": ", torn.message());
  }

  info = {};
  do {
    rc = ::waitid(P_PID, child.pid, &info, WEXITED | WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    return ErrnoStatus(errno, absl::StrCat("waitid for child ", child.pid));
  }
  ExitStatus status;
  if (info.si_code == CLD_EXITED) {
    status.exited = true;
    status.code = info.si_status;
  } else {
    status.signal = info.si_status;
  }
  // The pid is free for reuse from here on; forget it so a late SignalChild cannot hit a stranger.
  child.pid = -1;
  child.pidfd.Reset();
  return status;
}

std::string ExitStatus::Describe() const {
  if (exited) {
    return absl::StrCat("exit code ", code);
  }
  // sigdescr_np (not strsignal): thread-safe, and the description without a locale lookup.
  const char* name = ::sigdescr_np(signal);
  return absl::StrCat("signal ", signal, " (", name != nullptr ? name : "unknown signal", ")");
}

}  // namespace mcpmw::pool
