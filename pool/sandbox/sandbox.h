// mcpmw pool sandbox: turning a profile's Spec into the confinement of each worker.
//
// Three phases, so that nothing after fork allocates or decides:
//
//   once per profile   Plan(spec, host): checks every step against what the host provides. A
//                      required step the host lacks refuses the profile ("sandbox step `cgroup` is
//                      required but this host has no writable cgroup memory controller (…)"); an
//                      optional one is recorded in skipped() with the reason, for the caller to
//                      log. Compiles the seccomp filter and lays out the cgroup.
//   per worker,        SandboxPlan::Prepare(worker name): creates the worker's cgroup and fills
//   parent, pre-fork   ChildSteps, plain data the child only reads.
//   child, pre-exec    ApplyInChild(steps): no_new_privs, rlimits, cgroup, namespaces, seccomp,
//                      in that order, stopping at the first failure with (step, errno).
//
// pool/process.h runs ApplyInChild inside its own ordered containment list (after the process
// group, parent-death signal and stdio steps, before the environment, cwd and descriptor steps)
// and moves the worker's cgroup into the Child, whose Reap() tears it down.
//
// Order versus ARCHITECTURE.md §6: the namespaces themselves are created by the clone that starts
// the child (see namespaces.h for why), and their in-child setup runs before seccomp because it
// needs mount(2), which the seccomp deny list refuses.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/sandbox/cgroup.h"
#include "pool/sandbox/host.h"
#include "pool/sandbox/namespaces.h"
#include "pool/sandbox/rlimits.h"
#include "pool/sandbox/seccomp.h"
#include "pool/sandbox/spec.h"

namespace mcpmw::pool::sandbox {

// The steps that run in the child, in the order they run.
enum class ChildStep : int32_t { kNoNewPrivs, kRlimits, kCgroup, kNamespaces, kSeccomp };

// "no_new_privs", "rlimits", "cgroup", "namespaces", "seccomp": the names used in Spec, in
// messages and in logs.
std::string_view ChildStepName(ChildStep step);

// An optional step the host cannot provide; the caller logs it.
struct SkippedStep {
  std::string step;    // "seccomp"
  std::string reason;  // "this host has no usable seccomp filters (…)"
};

// Everything the child applies, computed before fork. Points into the WorkerSandbox it came from
// (cgroup descriptors) and the SandboxPlan (seccomp program): both must outlive the fork.
struct ChildSteps {
  bool no_new_privs = false;
  bool rlimits_on = false;
  PreparedRlimits rlimits;
  bool cgroup_on = false;
  CgroupJoin cgroup;
  bool namespaces_on = false;
  PreparedNamespaces namespaces;
  bool seccomp_on = false;
  sock_fprog seccomp{};
};

struct ChildFailure {
  ChildStep step = ChildStep::kNoNewPrivs;
  int error = 0;
};

// Child side, between fork and exec: runs the steps that are on, in ChildStep order.
// Async-signal-safe; allocates nothing. Returns false and fills `failure` at the first step that
// fails.
bool ApplyInChild(const ChildSteps& steps, ChildFailure* failure);

// One worker's share of a plan: its cgroup (owned) and the child's steps. Move-only.
class WorkerSandbox {
 public:
  const ChildSteps& child_steps() const { return steps_; }
  // CLONE_NEW* flags the child must be cloned with (0 when no namespace is asked for).
  uint64_t clone_flags() const { return steps_.namespaces_on ? steps_.namespaces.clone_flags : 0; }
  // Hand this to the Child after the fork; the child's copies of its descriptors are its own.
  WorkerCgroup TakeCgroup();

 private:
  friend class SandboxPlan;
  ChildSteps steps_;
  WorkerCgroup cgroup_;
};

// The outcome of Plan() for one profile. Immutable after Plan(); Prepare() may be called from any
// thread, concurrently. Movable; moving keeps the compiled filter where it is.
class SandboxPlan {
 public:
  // Whether `step` will run in every worker of this plan.
  bool applies(ChildStep step) const;
  // The optional steps this host cannot provide, in ChildStep order.
  const std::vector<SkippedStep>& skipped() const { return skipped_; }
  // The compiled filter's length in BPF instructions (0 when seccomp does not apply).
  size_t seccomp_instructions() const;

  // Parent side, per worker, before fork: creates the worker's cgroup (named after
  // `worker_name`) and computes the child's steps. Fails with the cgroup error, naming the step
  // ("sandbox step `cgroup`: cannot create cgroup …: Permission denied").
  absl::StatusOr<WorkerSandbox> Prepare(std::string_view worker_name) const;

 private:
  friend absl::StatusOr<SandboxPlan> Plan(const Spec& spec, const HostCapabilities& host);

  Spec spec_;
  bool no_new_privs_ = false;
  bool rlimits_ = false;
  PreparedRlimits rlimit_values_;
  std::optional<CgroupLayout> cgroup_layout_;
  std::optional<PreparedNamespaces> namespaces_;
  std::optional<SeccompFilter> seccomp_;
  std::vector<SkippedStep> skipped_;
};

// Checks `spec` against `host` (see the file comment). Fails with FailedPrecondition for a
// required step the host lacks, InvalidArgument for a Spec that contradicts itself (`network:
// none` with seccomp off, cpu_percent 0), Internal when libseccomp cannot compile the filter.
// Every message names the step.
absl::StatusOr<SandboxPlan> Plan(const Spec& spec, const HostCapabilities& host);

}  // namespace mcpmw::pool::sandbox
