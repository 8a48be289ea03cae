#include "pool/sandbox/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool/process.h"
#include "pool/sandbox/host.h"
#include "tests/pool/child_helpers.h"

namespace mcpmw::pool::sandbox {
namespace {

using test_support::kWaitMs;
using test_support::PidfdOpen;
using test_support::ProcStatusField;
using test_support::ReadLine;
using test_support::WaitForExit;

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kProbe = MCPMW_SANDBOX_PROBE;

const HostCapabilities& Host() {
  static const HostCapabilities* host = new HostCapabilities(ProbeHost());
  return *host;
}

// One row of /proc/PID/limits: "Max open files            64                   64   files".
std::string ProcLimitsRow(pid_t pid, std::string_view name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(std::string(name), 0) == 0) {
      return line;
    }
  }
  return "";
}

// Every step off: the baseline a test switches single steps on in.
Spec NothingOn() {
  Spec spec;
  spec.no_new_privs = Requirement::kOff;
  spec.rlimits = Requirement::kOff;
  return spec;
}

absl::StatusOr<Child> SpawnProbe(const SandboxPlan* plan, std::vector<std::string> args) {
  SpawnOptions options;
  options.argv.emplace_back(kProbe);
  for (std::string& arg : args) {
    options.argv.push_back(std::move(arg));
  }
  options.sandbox = plan;
  options.worker_name = "sandbox-test";
  return Spawn(options);
}

struct ProbeRun {
  std::string line;  // the first line the probe printed
  ExitStatus exit;
};

// Runs the probe to completion under `plan` (nullptr: unconfined).
ProbeRun RunProbe(const SandboxPlan* plan, std::vector<std::string> args) {
  absl::StatusOr<Child> child = SpawnProbe(plan, std::move(args));
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) {
    return {};
  }
  ProbeRun run;
  run.line = ReadLine(child->stdout_fd.Get());
  EXPECT_TRUE(WaitForExit(child->pidfd.Get()));
  absl::StatusOr<ExitStatus> exit = Reap(*child);
  EXPECT_TRUE(exit.ok()) << exit.status();
  if (exit.ok()) {
    run.exit = *exit;
  }
  return run;
}

void KillAndReap(Child& child) {
  SignalChild(child, SIGKILL);
  ASSERT_TRUE(WaitForExit(child.pidfd.Get()));
  ASSERT_TRUE(Reap(child).ok());
}

SandboxPlan PlanOrDie(const Spec& spec, const HostCapabilities& host = Host()) {
  absl::StatusOr<SandboxPlan> plan = Plan(spec, host);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *std::move(plan) : SandboxPlan();
}

// A host that has everything, for Plan() tests that then take one feature away.
HostCapabilities FullHost() {
  HostCapabilities host;
  host.no_new_privs = {true, ""};
  host.rlimits = {true, ""};
  host.seccomp = {true, ""};
  host.can_seccomp_without_no_new_privs = true;
  for (CgroupController* controller : {&host.cgroup.memory, &host.cgroup.pids, &host.cgroup.cpu}) {
    controller->available = true;
    controller->version = CgroupVersion::kV2;
    controller->parent_dir = "/sys/fs/cgroup/mcpmw-test";
  }
  host.user_namespace = host.pid_namespace = host.net_namespace = host.mount_namespace = {true, ""};
  return host;
}

#define SKIP_UNLESS(feature)                                                         \
  do {                                                                               \
    if (!(feature).available) {                                                      \
      GTEST_SKIP() << #feature " is unavailable on this host: " << (feature).reason; \
    }                                                                                \
  } while (false)

// ---- Plan ----------------------------------------------------------------------------------

TEST(SandboxPlan, RequiredStepTheHostLacksRefusesNamingTheStepAndTheReason) {
  HostCapabilities host = FullHost();
  host.cgroup.memory = {false, CgroupVersion::kV1, "", "simulated: not mounted"};
  Spec spec = NothingOn();
  spec.cgroup = Requirement::kRequired;
  spec.cgroup_limits.memory_bytes = 64 << 20;

  absl::StatusOr<SandboxPlan> plan = Plan(spec, host);
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(plan.status().message(),
            "sandbox step `cgroup` is required but this host has no writable cgroup memory "
            "controller (simulated: not mounted)");
}

TEST(SandboxPlan, RequiredSeccompOnAHostWithoutItRefusesNamingTheStep) {
  HostCapabilities host = FullHost();
  host.seccomp = {false, "simulated: CONFIG_SECCOMP off"};
  Spec spec = NothingOn();
  spec.seccomp = Requirement::kRequired;

  absl::StatusOr<SandboxPlan> plan = Plan(spec, host);
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(plan.status().message(),
            "sandbox step `seccomp` is required but this host has no usable seccomp filters "
            "(simulated: CONFIG_SECCOMP off)");
}

TEST(SandboxPlan, OptionalStepTheHostLacksIsSkippedWithTheReason) {
  HostCapabilities host = FullHost();
  host.seccomp = {false, "simulated"};
  host.user_namespace = {false, "simulated userns off"};
  Spec spec = NothingOn();
  spec.seccomp = Requirement::kOptional;
  spec.network = Network::kNone;
  spec.namespaces = Requirement::kOptional;
  spec.namespace_set.user = true;
  spec.namespace_set.pid = true;

  absl::StatusOr<SandboxPlan> plan = Plan(spec, host);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->applies(ChildStep::kSeccomp));
  EXPECT_FALSE(plan->applies(ChildStep::kNamespaces));
  ASSERT_EQ(plan->skipped().size(), 2U);
  EXPECT_EQ(plan->skipped()[0].step, "namespaces");
  EXPECT_EQ(plan->skipped()[0].reason, "this host has no user namespaces (simulated userns off)");
  EXPECT_EQ(plan->skipped()[1].step, "seccomp");
  EXPECT_EQ(plan->skipped()[1].reason,
            "this host has no usable seccomp filters (simulated); `network: none` is not "
            "enforced");
}

TEST(SandboxPlan, OptionalStepTheHostHasApplies) {
  Spec spec = NothingOn();
  spec.no_new_privs = Requirement::kOptional;
  spec.seccomp = Requirement::kOptional;
  absl::StatusOr<SandboxPlan> plan = Plan(spec, FullHost());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->applies(ChildStep::kNoNewPrivs));
  EXPECT_TRUE(plan->applies(ChildStep::kSeccomp));
  EXPECT_GT(plan->seccomp_instructions(), 10U);
  EXPECT_TRUE(plan->skipped().empty());
}

TEST(SandboxPlan, NetworkNoneWithSeccompOffIsAContradiction) {
  Spec spec = NothingOn();
  spec.network = Network::kNone;
  absl::StatusOr<SandboxPlan> plan = Plan(spec, FullHost());
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("`seccomp`, which is off"));
}

TEST(SandboxPlan, SeccompWithoutNoNewPrivsNeedsCapSysAdmin) {
  HostCapabilities host = FullHost();
  host.can_seccomp_without_no_new_privs = false;
  Spec spec = NothingOn();
  spec.seccomp = Requirement::kRequired;
  absl::StatusOr<SandboxPlan> plan = Plan(spec, host);
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(plan.status().message()),
              StartsWith("sandbox step `seccomp` is required but this host has no way to load a "
                         "seccomp filter (the no_new_privs step is not applied"));

  spec.no_new_privs = Requirement::kRequired;
  EXPECT_TRUE(Plan(spec, host).ok());
}

TEST(SandboxPlan, CpuPercentZeroIsRejectedNamingTheStep) {
  Spec spec = NothingOn();
  spec.cgroup = Requirement::kOptional;
  spec.cgroup_limits.cpu_percent = 0;
  absl::StatusOr<SandboxPlan> plan = Plan(spec, FullHost());
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(plan.status().message(),
            "sandbox step `cgroup`: cgroup cpu_percent must be at least 1");
}

TEST(HostProbe, EveryMissingFeatureComesWithAReason) {
  const HostCapabilities& host = Host();
  for (const Feature* feature :
       {&host.no_new_privs, &host.rlimits, &host.seccomp, &host.user_namespace, &host.pid_namespace,
        &host.net_namespace, &host.mount_namespace}) {
    EXPECT_TRUE(feature->available != !feature->reason.empty()) << feature->reason;
  }
  for (const CgroupController* controller :
       {&host.cgroup.memory, &host.cgroup.pids, &host.cgroup.cpu}) {
    EXPECT_TRUE(controller->available ? !controller->parent_dir.empty()
                                      : !controller->reason.empty());
  }
  EXPECT_TRUE(host.cgroup.v2_kill_parent_dir.empty() != host.cgroup.v2_kill_reason.empty());
  // Linux has had both since 3.5; a host without them would not run mcpmw at all.
  EXPECT_TRUE(host.no_new_privs.available);
  EXPECT_TRUE(host.rlimits.available);
}

// ---- seccomp -------------------------------------------------------------------------------

SandboxPlan NetworkNonePlan() {
  Spec spec = NothingOn();
  spec.no_new_privs = Requirement::kRequired;
  spec.seccomp = Requirement::kRequired;
  spec.network = Network::kNone;
  return PlanOrDie(spec);
}

TEST(SeccompStep, NetworkNoneRefusesInetSocketsThatTheUnconfinedServerCanOpen) {
  SKIP_UNLESS(Host().seccomp);
  EXPECT_EQ(RunProbe(nullptr, {"socket", "inet"}).line, "ok");

  SandboxPlan plan = NetworkNonePlan();
  EXPECT_EQ(RunProbe(&plan, {"socket", "inet"}).line, "errno=" + std::to_string(EAFNOSUPPORT));
  EXPECT_EQ(RunProbe(&plan, {"socket", "inet6"}).line, "errno=" + std::to_string(EAFNOSUPPORT));
}

TEST(SeccompStep, NetworkNoneKeepsUnixSockets) {
  SKIP_UNLESS(Host().seccomp);
  SandboxPlan plan = NetworkNonePlan();
  EXPECT_EQ(RunProbe(&plan, {"socket", "unix"}).line, "ok");
}

TEST(SeccompStep, NetworkNoneRefusesIoUringSetup) {
  SKIP_UNLESS(Host().seccomp);
  SandboxPlan plan = NetworkNonePlan();
  EXPECT_EQ(RunProbe(&plan, {"io_uring"}).line, "errno=" + std::to_string(EPERM));
}

TEST(SeccompStep, NetworkAllowLeavesInetSocketsAlone) {
  SKIP_UNLESS(Host().seccomp);
  Spec spec = NothingOn();
  spec.no_new_privs = Requirement::kRequired;
  spec.seccomp = Requirement::kRequired;
  SandboxPlan plan = PlanOrDie(spec);
  EXPECT_EQ(RunProbe(&plan, {"socket", "inet"}).line, "ok");
}

TEST(SeccompStep, DenyListRefusesUmountPtraceAndKeyctlWithEperm) {
  SKIP_UNLESS(Host().seccomp);
  // Unconfined, each fails differently or succeeds (umount2: EINVAL/ENOENT, ptrace: 0).
  const std::string unconfined = RunProbe(nullptr, {"denied"}).line;
  EXPECT_THAT(unconfined, HasSubstr("ptrace=0"));

  Spec spec = NothingOn();
  spec.no_new_privs = Requirement::kRequired;
  spec.seccomp = Requirement::kRequired;
  SandboxPlan plan = PlanOrDie(spec);
  EXPECT_EQ(RunProbe(&plan, {"denied"}).line, "umount2=1 ptrace=1 keyctl=1");
}

TEST(NoNewPrivsStep, BitAndSeccompModeAreVisibleInProcStatus) {
  SKIP_UNLESS(Host().seccomp);
  SandboxPlan plain = PlanOrDie(NothingOn());
  absl::StatusOr<Child> unconfined = SpawnProbe(&plain, {"sleep"});
  ASSERT_TRUE(unconfined.ok()) << unconfined.status();
  EXPECT_EQ(ProcStatusField(unconfined->pid, "NoNewPrivs"),
            ProcStatusField(::getpid(), "NoNewPrivs"));
  EXPECT_EQ(ProcStatusField(unconfined->pid, "Seccomp"), ProcStatusField(::getpid(), "Seccomp"));
  KillAndReap(*unconfined);

  SandboxPlan plan = NetworkNonePlan();
  absl::StatusOr<Child> child = SpawnProbe(&plan, {"sleep"});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(ProcStatusField(child->pid, "NoNewPrivs"), "1");
  EXPECT_EQ(ProcStatusField(child->pid, "Seccomp"), "2");
  KillAndReap(*child);
}

// ---- rlimits -------------------------------------------------------------------------------

TEST(RlimitsStep, LimitsAreVisibleInProcLimitsAndCoreDumpsAreOff) {
  Spec spec = NothingOn();
  spec.rlimits = Requirement::kRequired;
  spec.rlimit_values.open_files = 64;
  spec.rlimit_values.address_space_bytes = uint64_t{1} << 32;
  spec.rlimit_values.cpu_seconds = 30;
  SandboxPlan plan = PlanOrDie(spec);
  absl::StatusOr<Child> child = SpawnProbe(&plan, {"sleep"});
  ASSERT_TRUE(child.ok()) << child.status();

  EXPECT_THAT(ProcLimitsRow(child->pid, "Max open files"),
              testing::MatchesRegex("Max open files +64 +64 +files *"));
  EXPECT_THAT(ProcLimitsRow(child->pid, "Max address space"),
              testing::MatchesRegex("Max address space +4294967296 +4294967296 +bytes *"));
  EXPECT_THAT(ProcLimitsRow(child->pid, "Max cpu time"),
              testing::MatchesRegex("Max cpu time +30 +31 +seconds *"));
  EXPECT_THAT(ProcLimitsRow(child->pid, "Max core file size"),
              testing::MatchesRegex("Max core file size +0 +0 +bytes *"));
  KillAndReap(*child);
}

TEST(RlimitsStep, AFailingSetrlimitIsReportedNamingTheStep) {
  // Above fs.nr_open even root cannot raise RLIMIT_NOFILE: setrlimit fails with EPERM.
  uint64_t nr_open = 0;
  std::ifstream("/proc/sys/fs/nr_open") >> nr_open;
  ASSERT_GT(nr_open, 0U);
  Spec spec = NothingOn();
  spec.rlimits = Requirement::kRequired;
  spec.rlimit_values.open_files = nr_open + 1;
  SandboxPlan plan = PlanOrDie(spec);
  absl::StatusOr<Child> child = SpawnProbe(&plan, {"sleep"});
  ASSERT_EQ(child.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(child.status().message()),
              HasSubstr("containment step `rlimits` failed: Operation not permitted"));
}

// ---- cgroup --------------------------------------------------------------------------------

bool Exists(const std::string& path) {
  std::error_code ignored;
  return std::filesystem::exists(path, ignored);
}

TEST(CgroupStep, WorkerRunsInItsOwnCgroupAndReapRemovesIt) {
  Spec spec = NothingOn();
  spec.cgroup = Requirement::kRequired;
  absl::StatusOr<SandboxPlan> plan = Plan(spec, Host());
  if (!plan.ok()) {
    GTEST_SKIP() << plan.status();
  }
  absl::StatusOr<Child> child = SpawnProbe(&*plan, {"sleep"});
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_FALSE(child->cgroup.empty());
  const std::vector<std::string> dirs = child->cgroup.dirs();
  absl::StatusOr<std::vector<pid_t>> pids = child->cgroup.Pids();
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_EQ(*pids, std::vector<pid_t>{child->pid});
  for (const std::string& dir : dirs) {
    EXPECT_THAT(dir, HasSubstr("/mcpmw-" + std::to_string(::getpid()) + "-sandbox-test-"));
    EXPECT_TRUE(Exists(dir));
  }

  KillAndReap(*child);
  EXPECT_TRUE(child->cgroup.empty());
  for (const std::string& dir : dirs) {
    EXPECT_FALSE(Exists(dir)) << dir;
  }
}

TEST(CgroupStep, ACgroupThatCannotBeCreatedFailsTheSpawnNamingTheStep) {
  HostCapabilities host = FullHost();
  host.cgroup.pids = {true, CgroupVersion::kV1, "/nonexistent-mcpmw-cgroup", ""};
  Spec spec = NothingOn();
  spec.cgroup = Requirement::kRequired;
  spec.cgroup_limits.pids_max = 8;
  SandboxPlan plan = PlanOrDie(spec, host);
  absl::StatusOr<Child> child = SpawnProbe(&plan, {"sleep"});
  ASSERT_EQ(child.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(child.status().message()),
              testing::MatchesRegex(
                  "cannot start `.*sandbox_probe`: sandbox step `cgroup`: cannot create cgroup "
                  "/nonexistent-mcpmw-cgroup/mcpmw-[0-9]+-sandbox-test-[0-9]+: No such file or "
                  "directory"));
}

TEST(CgroupStep, WorkerOverItsMemoryLimitIsKilledByTheOomKiller) {
  SKIP_UNLESS(Host().cgroup.memory);
  Spec spec = NothingOn();
  spec.cgroup = Requirement::kRequired;
  spec.cgroup_limits.memory_bytes = 32 << 20;
  SandboxPlan plan = PlanOrDie(spec);

  ProbeRun run = RunProbe(&plan, {"alloc", "256"});
  EXPECT_EQ(run.line, "");  // killed before it could print "ok"
  EXPECT_FALSE(run.exit.exited);
  EXPECT_EQ(run.exit.signal, SIGKILL);

  // The same allocation without the limit completes.
  EXPECT_EQ(RunProbe(nullptr, {"alloc", "256"}).line, "ok");
}

TEST(CgroupStep, PidsLimitStopsAForkBombAndTeardownEmptiesAndRemovesTheCgroup) {
  SKIP_UNLESS(Host().cgroup.pids);
  Spec spec = NothingOn();
  spec.cgroup = Requirement::kRequired;
  spec.cgroup_limits.pids_max = 8;
  SandboxPlan plan = PlanOrDie(spec);
  absl::StatusOr<Child> child = SpawnProbe(&plan, {"forkbomb", "100"});
  ASSERT_TRUE(child.ok()) << child.status();

  // The worker is one of the 8, so it forks 7 sleepers and the 8th fork fails with EAGAIN.
  EXPECT_EQ(ReadLine(child->stdout_fd.Get()), "forked=7 errno=" + std::to_string(EAGAIN));
  absl::StatusOr<std::vector<pid_t>> pids = child->cgroup.Pids();
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_EQ(pids->size(), 8U);
  std::vector<UniqueFd> pidfds;
  for (pid_t pid : *pids) {
    pidfds.emplace_back(PidfdOpen(pid));
    ASSERT_TRUE(pidfds.back().Valid());
  }
  const std::vector<std::string> dirs = child->cgroup.dirs();

  // Teardown alone, with the worker still running: it must take the worker too.
  ASSERT_TRUE(child->cgroup.Teardown().ok());
  for (const UniqueFd& pidfd : pidfds) {
    EXPECT_TRUE(WaitForExit(pidfd.Get(), 0));
  }
  for (const std::string& dir : dirs) {
    EXPECT_FALSE(Exists(dir)) << dir;
  }
  ASSERT_TRUE(WaitForExit(child->pidfd.Get()));
  absl::StatusOr<ExitStatus> exit = Reap(*child);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->signal, SIGKILL);
}

// Starts `sandbox_probe escape` under `plan`, waits for it to exit, reaps it, and returns a pidfd
// of the grandchild it left behind in its own session.
UniqueFd ReapWorkerThatLeftAGrandchild(const SandboxPlan* plan) {
  absl::StatusOr<Child> child = SpawnProbe(plan, {"escape"});
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) {
    return {};
  }
  pid_t grandchild = -1;
  const std::string line = ReadLine(child->stdout_fd.Get());
  std::from_chars(line.data(), line.data() + line.size(), grandchild);
  EXPECT_GT(grandchild, 0) << line;
  UniqueFd grandchild_fd(PidfdOpen(grandchild));
  EXPECT_TRUE(grandchild_fd.Valid());
  EXPECT_NE(::getpgid(grandchild), child->pid);  // out of reach of the process-group kill
  EXPECT_TRUE(WaitForExit(child->pidfd.Get()));
  absl::StatusOr<ExitStatus> exit = Reap(*child);
  EXPECT_TRUE(exit.ok()) << exit.status();
  return grandchild_fd;
}

TEST(CgroupStep, WithoutACgroupAGrandchildThatLeftTheGroupSurvivesReap) {
  UniqueFd grandchild = ReapWorkerThatLeftAGrandchild(nullptr);
  ASSERT_TRUE(grandchild.Valid());
  EXPECT_FALSE(WaitForExit(grandchild.Get(), 0));  // why the cgroup step exists
  ASSERT_EQ(::syscall(SYS_pidfd_send_signal, grandchild.Get(), SIGKILL, nullptr, 0), 0);
  EXPECT_TRUE(WaitForExit(grandchild.Get()));
}

TEST(CgroupStep, TeardownWithCgroupKillKillsGrandchildrenThatLeftTheProcessGroup) {
  if (Host().cgroup.v2_kill_parent_dir.empty()) {
    GTEST_SKIP() << "no cgroup v2 with cgroup.kill: " << Host().cgroup.v2_kill_reason;
  }
  Spec spec = NothingOn();
  spec.cgroup = Requirement::kRequired;
  SandboxPlan plan = PlanOrDie(spec);
  UniqueFd grandchild = ReapWorkerThatLeftAGrandchild(&plan);
  ASSERT_TRUE(grandchild.Valid());
  EXPECT_TRUE(WaitForExit(grandchild.Get()));
}

TEST(CgroupStep, TeardownWithTheV1KillLoopKillsGrandchildrenThatLeftTheProcessGroup) {
  SKIP_UNLESS(Host().cgroup.pids);
  if (Host().cgroup.pids.version != CgroupVersion::kV1) {
    GTEST_SKIP() << "the pids controller is on cgroup v2 here; the v1 kill loop is not used";
  }
  HostCapabilities host = Host();
  host.cgroup.v2_kill_parent_dir.clear();  // force the SIGKILL-until-empty loop
  host.cgroup.v2_kill_reason = "cleared by the test";
  Spec spec = NothingOn();
  spec.cgroup = Requirement::kRequired;
  spec.cgroup_limits.pids_max = 16;
  SandboxPlan plan = PlanOrDie(spec, host);
  UniqueFd grandchild = ReapWorkerThatLeftAGrandchild(&plan);
  ASSERT_TRUE(grandchild.Valid());
  EXPECT_TRUE(WaitForExit(grandchild.Get()));
}

// ---- namespaces ----------------------------------------------------------------------------

std::string NamespaceLink(pid_t pid, const char* kind) {
  char target[128] = {};
  const std::string link = "/proc/" + std::to_string(pid) + "/ns/" + kind;
  return ::readlink(link.c_str(), target, sizeof(target) - 1) > 0 ? target : "";
}

TEST(NamespacesStep, PidAndUserNamespacesMakeTheWorkerPid1) {
  SKIP_UNLESS(Host().pid_namespace);
  SKIP_UNLESS(Host().user_namespace);
  Spec spec = NothingOn();
  spec.namespaces = Requirement::kRequired;
  spec.namespace_set.pid = true;
  spec.namespace_set.user = true;
  SandboxPlan plan = PlanOrDie(spec);

  EXPECT_EQ(RunProbe(&plan, {"pid"}).line, "pid=1");

  absl::StatusOr<Child> child = SpawnProbe(&plan, {"sleep"});
  ASSERT_TRUE(child.ok()) << child.status();
  for (const char* kind : {"pid", "user"}) {
    EXPECT_NE(NamespaceLink(child->pid, kind), NamespaceLink(::getpid(), kind)) << kind;
  }
  EXPECT_EQ(NamespaceLink(child->pid, "net"), NamespaceLink(::getpid(), "net"));
  KillAndReap(*child);
}

TEST(NamespacesStep, NetAndMountNamespacesAreTheWorkersOwn) {
  SKIP_UNLESS(Host().net_namespace);
  SKIP_UNLESS(Host().mount_namespace);
  Spec spec = NothingOn();
  spec.namespaces = Requirement::kRequired;
  spec.namespace_set.net = true;
  spec.namespace_set.mount = true;
  SandboxPlan plan = PlanOrDie(spec);
  absl::StatusOr<Child> child = SpawnProbe(&plan, {"sleep"});
  ASSERT_TRUE(child.ok()) << child.status();
  for (const char* kind : {"net", "mnt"}) {
    EXPECT_NE(NamespaceLink(child->pid, kind), NamespaceLink(::getpid(), kind)) << kind;
  }
  KillAndReap(*child);
}

// ---- all together --------------------------------------------------------------------------

TEST(SandboxSpawn, EveryStepTogetherStillRunsTheServer) {
  SKIP_UNLESS(Host().seccomp);
  SKIP_UNLESS(Host().cgroup.pids);
  Spec spec;  // no_new_privs and rlimits required by default
  spec.cgroup = Requirement::kRequired;
  spec.cgroup_limits.pids_max = 32;
  spec.seccomp = Requirement::kRequired;
  spec.network = Network::kNone;
  spec.namespaces = Requirement::kOptional;
  spec.namespace_set = {.pid = true, .net = true, .mount = true, .user = true};
  SandboxPlan plan = PlanOrDie(spec);
  ProbeRun run = RunProbe(&plan, {"socket", "unix"});
  EXPECT_EQ(run.line, "ok");
  EXPECT_TRUE(run.exit.exited);
  EXPECT_EQ(run.exit.code, 0);
}

}  // namespace
}  // namespace mcpmw::pool::sandbox
