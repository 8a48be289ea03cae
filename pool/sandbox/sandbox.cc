#include "pool/sandbox/sandbox.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pool/sandbox/no_new_privs.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::pool::sandbox {
namespace {

// Applies one step's Requirement to what the host has. Returns whether the step runs; a required
// step the host lacks fails, an optional one is added to `skipped`.
absl::StatusOr<bool> Decide(Requirement requirement, ChildStep step, bool available,
                            std::string_view lack, std::vector<SkippedStep>& skipped) {
  if (requirement == Requirement::kOff) {
    return false;
  }
  if (available) {
    return true;
  }
  const std::string reason = absl::StrCat("this host has ", Sv(lack));
  if (requirement == Requirement::kRequired) {
    return absl::FailedPreconditionError(
        absl::StrCat("sandbox step `", Sv(ChildStepName(step)), "` is required but ", reason));
  }
  skipped.push_back({std::string(ChildStepName(step)), reason});
  return false;
}

std::string WithReason(std::string_view what, std::string_view reason) {
  return absl::StrCat(Sv(what), " (", Sv(reason), ")");
}

}  // namespace

std::string_view ChildStepName(ChildStep step) {
  switch (step) {
    case ChildStep::kNoNewPrivs:
      return "no_new_privs";
    case ChildStep::kRlimits:
      return "rlimits";
    case ChildStep::kCgroup:
      return "cgroup";
    case ChildStep::kNamespaces:
      return "namespaces";
    case ChildStep::kSeccomp:
      return "seccomp";
  }
  return "unknown";
}

bool ApplyInChild(const ChildSteps& steps, ChildFailure* failure) {
  auto fail = [failure](ChildStep step, int error) {
    failure->step = step;
    failure->error = error;
    return false;
  };
  if (steps.no_new_privs) {
    if (int error = ApplyNoNewPrivs(); error != 0) {
      return fail(ChildStep::kNoNewPrivs, error);
    }
  }
  if (steps.rlimits_on) {
    if (int error = ApplyRlimits(steps.rlimits); error != 0) {
      return fail(ChildStep::kRlimits, error);
    }
  }
  if (steps.cgroup_on) {
    if (int error = JoinCgroupInChild(steps.cgroup); error != 0) {
      return fail(ChildStep::kCgroup, error);
    }
  }
  if (steps.namespaces_on) {
    if (int error = SetUpNamespacesInChild(steps.namespaces); error != 0) {
      return fail(ChildStep::kNamespaces, error);
    }
  }
  if (steps.seccomp_on) {
    if (int error = ApplySeccompInChild(steps.seccomp); error != 0) {
      return fail(ChildStep::kSeccomp, error);
    }
  }
  return true;
}

WorkerCgroup WorkerSandbox::TakeCgroup() {
  steps_.cgroup = {};
  steps_.cgroup_on = false;
  return std::move(cgroup_);
}

bool SandboxPlan::applies(ChildStep step) const {
  switch (step) {
    case ChildStep::kNoNewPrivs:
      return no_new_privs_;
    case ChildStep::kRlimits:
      return rlimits_;
    case ChildStep::kCgroup:
      return cgroup_layout_.has_value();
    case ChildStep::kNamespaces:
      return namespaces_.has_value();
    case ChildStep::kSeccomp:
      return seccomp_.has_value();
  }
  return false;
}

size_t SandboxPlan::seccomp_instructions() const {
  return seccomp_ ? seccomp_->instruction_count() : 0;
}

absl::StatusOr<WorkerSandbox> SandboxPlan::Prepare(std::string_view worker_name) const {
  WorkerSandbox worker;
  ChildSteps& steps = worker.steps_;
  steps.no_new_privs = no_new_privs_;
  steps.rlimits_on = rlimits_;
  steps.rlimits = rlimit_values_;
  if (cgroup_layout_) {
    absl::StatusOr<WorkerCgroup> cgroup =
        WorkerCgroup::Create(*cgroup_layout_, spec_.cgroup_limits, worker_name);
    if (!cgroup.ok()) {
      return absl::Status(cgroup.status().code(),
                          absl::StrCat("sandbox step `cgroup`: ", cgroup.status().message()));
    }
    worker.cgroup_ = *std::move(cgroup);
    steps.cgroup_on = true;
    steps.cgroup = worker.cgroup_.join();
  }
  if (namespaces_) {
    steps.namespaces_on = true;
    steps.namespaces = *namespaces_;
  }
  if (seccomp_) {
    steps.seccomp_on = true;
    steps.seccomp = seccomp_->Program();
  }
  return worker;
}

absl::StatusOr<SandboxPlan> Plan(const Spec& spec, const HostCapabilities& host) {
  SandboxPlan plan;
  plan.spec_ = spec;
  std::vector<SkippedStep>& skipped = plan.skipped_;

  if (spec.network == Network::kNone && spec.seccomp == Requirement::kOff) {
    return absl::InvalidArgumentError(
        "`network: none` is enforced by the sandbox step `seccomp`, which is off; set it to "
        "optional or required");
  }

  MCPMW_ASSIGN_OR_RETURN(
      plan.no_new_privs_,
      Decide(spec.no_new_privs, ChildStep::kNoNewPrivs, host.no_new_privs.available,
             WithReason("no PR_SET_NO_NEW_PRIVS", host.no_new_privs.reason), skipped));

  MCPMW_ASSIGN_OR_RETURN(plan.rlimits_,
                         Decide(spec.rlimits, ChildStep::kRlimits, host.rlimits.available,
                                WithReason("no working setrlimit", host.rlimits.reason), skipped));
  if (plan.rlimits_) {
    plan.rlimit_values_ = PrepareRlimits(spec.rlimit_values);
  }

  if (spec.cgroup != Requirement::kOff) {
    absl::StatusOr<CgroupLayout> layout = LayOutCgroup(spec.cgroup_limits, host.cgroup);
    if (!layout.ok() && !absl::IsFailedPrecondition(layout.status())) {
      return absl::Status(layout.status().code(),
                          absl::StrCat("sandbox step `cgroup`: ", layout.status().message()));
    }
    MCPMW_ASSIGN_OR_RETURN(
        bool use,
        Decide(spec.cgroup, ChildStep::kCgroup, layout.ok(),
               layout.ok() ? std::string_view() : Sv(layout.status().message()), skipped));
    if (use) {
      plan.cgroup_layout_ = *std::move(layout);
    }
  }

  if (spec.namespaces != Requirement::kOff) {
    const Namespaces& wanted = spec.namespace_set;
    std::vector<std::string> lacking;
    struct Kind {
      bool wanted;
      const char* name;
      const Feature& feature;
    };
    for (const Kind& kind :
         {Kind{wanted.user, "user", host.user_namespace},
          Kind{wanted.pid, "pid", host.pid_namespace}, Kind{wanted.net, "net", host.net_namespace},
          Kind{wanted.mount, "mount", host.mount_namespace}}) {
      if (kind.wanted && !kind.feature.available) {
        lacking.push_back(
            WithReason(absl::StrCat("no ", kind.name, " namespaces"), kind.feature.reason));
      }
    }
    MCPMW_ASSIGN_OR_RETURN(bool use,
                           Decide(spec.namespaces, ChildStep::kNamespaces, lacking.empty(),
                                  absl::StrJoin(lacking, ", "), skipped));
    if (use && (wanted.user || wanted.pid || wanted.net || wanted.mount)) {
      plan.namespaces_ = PrepareNamespaces(wanted);
    }
  }

  if (spec.seccomp != Requirement::kOff) {
    // Without no_new_privs the kernel loads a filter only for a process with CAP_SYS_ADMIN.
    const bool loadable = plan.no_new_privs_ || host.can_seccomp_without_no_new_privs;
    std::string lack =
        !host.seccomp.available
            ? WithReason("no usable seccomp filters", host.seccomp.reason)
            : "no way to load a seccomp filter (the no_new_privs step is not applied and mcpmw "
              "lacks CAP_SYS_ADMIN)";
    if (spec.network == Network::kNone) {
      absl::StrAppend(&lack, "; `network: none` is not enforced");
    }
    MCPMW_ASSIGN_OR_RETURN(bool use, Decide(spec.seccomp, ChildStep::kSeccomp,
                                            host.seccomp.available && loadable, lack, skipped));
    if (use) {
      MCPMW_ASSIGN_OR_RETURN(SeccompFilter filter, SeccompFilter::Build(spec.network));
      plan.seccomp_ = std::move(filter);
    }
  }
  return plan;
}

}  // namespace mcpmw::pool::sandbox
