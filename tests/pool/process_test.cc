#include "pool/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "tests/pool/child_helpers.h"

namespace mcpmw::pool {
namespace {

using test_support::kWaitMs;
using test_support::PidfdOpen;
using test_support::ProcStatusField;
using test_support::ReadLine;
using test_support::WaitForExit;

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Spawn() holds children by pidfd (Linux 5.3+); without it every test here is meaningless.
class ProcessTest : public testing::Test {
 protected:
  void SetUp() override {
    UniqueFd self(PidfdOpen(::getpid()));
    if (!self.Valid()) {
      GTEST_SKIP() << "pidfd_open is unavailable (" << std::generic_category().message(errno)
                   << "); Spawn needs Linux 5.3+";
    }
  }
};

// True once the process behind `pidfd` has exited (it may still be unreaped).
Child SpawnOrDie(std::vector<std::string> argv, bool inherit_stderr = true) {
  absl::StatusOr<Child> child = Spawn({std::move(argv), inherit_stderr});
  EXPECT_TRUE(child.ok()) << child.status();
  return child.ok() ? *std::move(child) : Child{};
}

// Kills and reaps a child a test left running.
void KillAndReap(Child& child) {
  SignalChild(child, SIGKILL);
  ASSERT_TRUE(WaitForExit(child.pidfd.Get()));
  ASSERT_TRUE(Reap(child).ok());
}

pid_t ParsePid(std::string_view text) {
  pid_t pid = -1;
  std::from_chars(text.data(), text.data() + text.size(), pid);
  return pid;
}

TEST_F(ProcessTest, SpawnRoundTripsBytesThroughCat) {
  Child child = SpawnOrDie({"cat"});
  ASSERT_GT(child.pid, 0);
  const std::string sent = "hello\n{\"jsonrpc\":\"2.0\"}\n\x01\xff no newline";
  ASSERT_EQ(::write(child.stdin_fd.Get(), sent.data(), sent.size()),
            static_cast<ssize_t>(sent.size()));
  child.stdin_fd.Reset();  // EOF makes cat exit

  std::string received;
  char buf[256];
  while (true) {
    pollfd pfd{child.stdout_fd.Get(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, kWaitMs), 1);
    ssize_t n = ::read(child.stdout_fd.Get(), buf, sizeof(buf));
    ASSERT_GE(n, 0);
    if (n == 0) {
      break;
    }
    received.append(buf, n);
  }
  EXPECT_EQ(received, sent);

  ASSERT_TRUE(WaitForExit(child.pidfd.Get()));
  absl::StatusOr<ExitStatus> status = Reap(child);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 0);
}

TEST_F(ProcessTest, SpawnReportsMissingBinaryAsNotFound) {
  absl::StatusOr<Child> child = Spawn({{"nosuchbinary-mcpmw", "--flag"}});
  ASSERT_EQ(child.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(child.status().message()),
              StartsWith("cannot start `nosuchbinary-mcpmw`: not found on PATH (PATH="));
}

TEST_F(ProcessTest, SpawnReportsMissingPathAsNotFound) {
  absl::StatusOr<Child> child = Spawn({{"/nonexistent-mcpmw/server"}});
  ASSERT_EQ(child.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(child.status().message()),
            "cannot start `/nonexistent-mcpmw/server`: no such file");
}

TEST_F(ProcessTest, SpawnReportsNonExecutableFileAsPermissionDenied) {
  const std::string dir = mcpmw::testing_support::MakeTempDir("process_test");
  const std::string script = dir + "/server.sh";
  std::ofstream(script) << "#!/bin/sh\n";
  ASSERT_EQ(::chmod(script.c_str(), 0644), 0);

  absl::StatusOr<Child> child = Spawn({{script}});
  ASSERT_EQ(child.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(child.status().message()), HasSubstr("the file is not executable"));
}

TEST_F(ProcessTest, SpawnRejectsEmptyArgv) {
  EXPECT_EQ(Spawn({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Spawn({{""}}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ProcessTest, SpawnPutsChildInItsOwnProcessGroup) {
  Child child = SpawnOrDie({"sleep", "30"});
  ASSERT_GT(child.pid, 0);
  EXPECT_EQ(::getpgid(child.pid), child.pid);
  EXPECT_NE(::getpgid(child.pid), ::getpgrp());
  KillAndReap(child);
}

TEST_F(ProcessTest, SpawnSendsStderrToDevNullWhenNotInherited) {
  Child child = SpawnOrDie({"sleep", "30"}, /*inherit_stderr=*/false);
  ASSERT_GT(child.pid, 0);
  char target[256] = {};
  const std::string link = "/proc/" + std::to_string(child.pid) + "/fd/2";
  ASSERT_GT(::readlink(link.c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "/dev/null");
  KillAndReap(child);
}

// The NUL-separated entries of /proc/PID/environ.
std::vector<std::string> ProcEnviron(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
  std::vector<std::string> entries;
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    entries.push_back(entry);
  }
  return entries;
}

std::string ProcCwd(pid_t pid) {
  std::error_code error;
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd", error).string();
}

std::string MakeTempDir() {
  return std::filesystem::canonical(mcpmw::testing_support::MakeTempDir("process_test")).string();
}

TEST_F(ProcessTest, SpawnGivesTheChildExactlyTheEnvironmentItIsGiven) {
  SpawnOptions options{.argv = {"sleep", "30"}};
  options.env = std::vector<std::string>{"A=1", "MCPMW_NOTE=two words", "EMPTY="};
  absl::StatusOr<Child> child = Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(ProcEnviron(child->pid),
            (std::vector<std::string>{"A=1", "MCPMW_NOTE=two words", "EMPTY="}));
  KillAndReap(*child);
}

TEST_F(ProcessTest, SpawnWithAnEmptyEnvironmentScrubsEverything) {
  SpawnOptions options{.argv = {"sleep", "30"}};
  options.env = std::vector<std::string>{};
  absl::StatusOr<Child> child = Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_TRUE(ProcEnviron(child->pid).empty());
  KillAndReap(*child);
}

TEST_F(ProcessTest, SpawnWithoutEnvironmentInheritsMcpmws) {
  ASSERT_NE(std::getenv("PATH"), nullptr);  // NOLINT(concurrency-mt-unsafe)
  Child child = SpawnOrDie({"sleep", "30"});
  ASSERT_GT(child.pid, 0);
  EXPECT_THAT(ProcEnviron(child.pid),
              testing::Contains(std::string("PATH=") + std::getenv("PATH")));  // NOLINT
  KillAndReap(child);
}

TEST_F(ProcessTest, SpawnRejectsAnEnvironmentEntryWithoutEquals) {
  SpawnOptions options{.argv = {"sleep", "30"}};
  options.env = std::vector<std::string>{"A=1", "NOEQUALS"};
  absl::StatusOr<Child> child = Spawn(options);
  ASSERT_EQ(child.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(child.status().message()),
            "cannot start `sleep`: environment entry \"NOEQUALS\" is not KEY=VALUE");
}

TEST_F(ProcessTest, SpawnRunsTheChildInItsWorkingDirectory) {
  const std::string dir = MakeTempDir();
  SpawnOptions options{.argv = {"sleep", "30"}};
  options.cwd = dir;
  absl::StatusOr<Child> child = Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(ProcCwd(child->pid), dir);
  KillAndReap(*child);
}

TEST_F(ProcessTest, SpawnResolvesARelativeProgramAgainstTheWorkingDirectory) {
  const std::string dir = MakeTempDir();
  std::ofstream(dir + "/server.sh") << "#!/bin/sh\nexec sleep 30\n";
  ASSERT_EQ(::chmod((dir + "/server.sh").c_str(), 0755), 0);
  SpawnOptions options{.argv = {"./server.sh"}};
  options.cwd = dir;
  absl::StatusOr<Child> child = Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(ProcCwd(child->pid), dir);
  KillAndReap(*child);
}

TEST_F(ProcessTest, SpawnReportsAMissingWorkingDirectoryNamingTheChdirStep) {
  SpawnOptions options{.argv = {"sleep", "30"}};
  options.cwd = "/nonexistent-mcpmw-dir";
  absl::StatusOr<Child> child = Spawn(options);
  ASSERT_EQ(child.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(std::string(child.status().message()),
            "cannot start `sleep`: containment step `chdir` failed: No such file or directory");
}

TEST_F(ProcessTest, SpawnClosesEveryDescriptorAboveStdio) {
  int leaked[2];
  ASSERT_EQ(::pipe(leaked), 0);  // deliberately not CLOEXEC
  Child child = SpawnOrDie({"sleep", "30"});
  ::close(leaked[0]);
  ::close(leaked[1]);
  ASSERT_GT(child.pid, 0);

  // Spawn returns after exec succeeded, so the table is the server's own. Right after exec the
  // dynamic loader may briefly hold a library open (it closes it within milliseconds); an
  // inherited descriptor would stay for the whole `sleep 30`, so look until the table is stdio
  // only, for up to two seconds.
  const std::set<std::string> stdio{"0", "1", "2"};
  std::set<std::string> fds;
  for (int attempt = 0; attempt < 200; ++attempt) {
    fds.clear();
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(child.pid) + "/fd")) {
      fds.insert(entry.path().filename());
    }
    if (fds == stdio) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(fds, stdio);
  KillAndReap(child);
}

TEST_F(ProcessTest, SpawnResetsSignalMaskAndIgnoredSignals) {
  struct sigaction ignore {
  }, saved_pipe{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &saved_pipe), 0);
  sigset_t usr2, saved_mask;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr2, &saved_mask), 0);

  Child child = SpawnOrDie({"sleep", "30"});

  ::sigaction(SIGPIPE, &saved_pipe, nullptr);
  ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  ASSERT_GT(child.pid, 0);
  EXPECT_EQ(ProcStatusField(child.pid, "SigBlk"), "0000000000000000");
  EXPECT_EQ(ProcStatusField(child.pid, "SigIgn"), "0000000000000000");
  KillAndReap(child);
}

TEST_F(ProcessTest, ReapReportsExitCode) {
  Child child = SpawnOrDie({"sh", "-c", "exit 3"});
  ASSERT_TRUE(WaitForExit(child.pidfd.Get()));
  absl::StatusOr<ExitStatus> status = Reap(child);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 3);
  EXPECT_EQ(status->Describe(), "exit code 3");
  EXPECT_EQ(child.pid, -1);  // forgotten: the pid may be reused now
}

TEST_F(ProcessTest, ReapFailsWhileChildIsRunning) {
  Child child = SpawnOrDie({"sleep", "30"});
  absl::StatusOr<ExitStatus> status = Reap(child);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_GT(child.pid, 0);
  KillAndReap(child);
}

TEST_F(ProcessTest, ReapKillsHelpersLeftInTheProcessGroup) {
  Child child = SpawnOrDie({"sh", "-c", "sleep 30 & echo $!"});
  pid_t helper = ParsePid(ReadLine(child.stdout_fd.Get()));
  ASSERT_GT(helper, 0);
  UniqueFd helper_fd(PidfdOpen(helper));
  ASSERT_TRUE(helper_fd.Valid());

  ASSERT_TRUE(WaitForExit(child.pidfd.Get()));
  absl::StatusOr<ExitStatus> status = Reap(child);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->Describe(), "exit code 0");
  EXPECT_TRUE(WaitForExit(helper_fd.Get()));
}

TEST_F(ProcessTest, SignalChildSigtermIsReportedAsSignal15) {
  Child child = SpawnOrDie({"sleep", "30"});
  SignalChild(child, SIGTERM);
  ASSERT_TRUE(WaitForExit(child.pidfd.Get()));
  absl::StatusOr<ExitStatus> status = Reap(child);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->exited);
  EXPECT_EQ(status->signal, SIGTERM);
  EXPECT_EQ(status->Describe(), "signal 15 (Terminated)");
}

TEST_F(ProcessTest, SignalChildSigkillTakesGrandchildrenToo) {
  Child child = SpawnOrDie({"sh", "-c", "sleep 30 & echo $!; wait"});
  pid_t grandchild = ParsePid(ReadLine(child.stdout_fd.Get()));
  ASSERT_GT(grandchild, 0);
  UniqueFd grandchild_fd(PidfdOpen(grandchild));
  ASSERT_TRUE(grandchild_fd.Valid());

  SignalChild(child, SIGKILL);
  ASSERT_TRUE(WaitForExit(child.pidfd.Get()));
  absl::StatusOr<ExitStatus> status = Reap(child);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->Describe(), "signal 9 (Killed)");
  EXPECT_TRUE(WaitForExit(grandchild_fd.Get()));
}

TEST_F(ProcessTest, SignalChildAfterExitButBeforeReapIsHarmless) {
  Child child = SpawnOrDie({"sh", "-c", "exit 0"});
  ASSERT_TRUE(WaitForExit(child.pidfd.Get()));
  SignalChild(child, SIGTERM);
  absl::StatusOr<ExitStatus> status = Reap(child);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->Describe(), "exit code 0");
  SignalChild(child, SIGTERM);  // after Reap: a no-op, never a signal to a reused pid
}

// PR_SET_PDEATHSIG: when the process that spawned the server dies (even by SIGKILL), the server
// dies with it. A forked helper plays mcpmw.
TEST_F(ProcessTest, ChildDiesWhenItsSpawnerIsKilled) {
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  UniqueFd report_read(report[0]), report_write(report[1]);

  pid_t spawner = ::fork();
  ASSERT_GE(spawner, 0);
  if (spawner == 0) {
    absl::StatusOr<Child> child = Spawn({{"sleep", "30"}});
    pid_t pid = child.ok() ? child->pid : -1;
    if (::write(report_write.Get(), &pid, sizeof(pid)) != sizeof(pid) || pid < 0) {
      ::_exit(1);
    }
    while (true) {
      ::pause();
    }
  }
  report_write.Reset();
  UniqueFd spawner_fd(PidfdOpen(spawner));
  ASSERT_TRUE(spawner_fd.Valid());

  pid_t server = -1;
  pollfd pfd{report_read.Get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, kWaitMs), 1);
  ASSERT_EQ(::read(report_read.Get(), &server, sizeof(server)),
            static_cast<ssize_t>(sizeof(server)));
  ASSERT_GT(server, 0);
  UniqueFd server_fd(PidfdOpen(server));
  ASSERT_TRUE(server_fd.Valid());
  EXPECT_FALSE(WaitForExit(server_fd.Get(), 0));  // alive while its spawner is

  ASSERT_EQ(::kill(spawner, SIGKILL), 0);
  int ignored;
  ASSERT_EQ(::waitpid(spawner, &ignored, 0), spawner);
  EXPECT_TRUE(WaitForExit(server_fd.Get()));
}

TEST(ProcessExitStatus, DescribesExitCodesAndSignals) {
  EXPECT_EQ((ExitStatus{.exited = true, .code = 3}).Describe(), "exit code 3");
  EXPECT_EQ((ExitStatus{.exited = false, .signal = 9}).Describe(), "signal 9 (Killed)");
  EXPECT_EQ((ExitStatus{.exited = false, .signal = 11}).Describe(),
            "signal 11 (Segmentation fault)");
}

}  // namespace
}  // namespace mcpmw::pool
