#include "pool/sandbox/seccomp.h"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/fd.h"
#include "src/common/log.h"
#include "src/common/strings.h"

namespace mcpmw::pool::sandbox {
namespace {

// Refused with EPERM. Names unknown on this architecture are skipped (libseccomp resolves them).
constexpr const char* kDenied[] = {
    // Mounting and changing the root, through the old and the new mount API.
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    // The machine itself.
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "syslog",
    "iopl",
    "ioperm",
    "quotactl",
    "vhangup",
    // Other processes' memory and the kernel's programmable hooks.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    // The kernel keyring, shared across the user's processes.
    "keyctl",
    "add_key",
    "request_key",
    // Opening files by handle sidesteps path-based checks (the "shocker" container escape).
    "open_by_handle_at",
};

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

absl::Status RuleError(int rc, std::string_view rule) {
  return absl::InternalError(absl::StrCat("sandbox step `seccomp`: libseccomp refused the rule ",
                                          Sv(rule), ": ", ErrnoText(-rc)));
}

}  // namespace

Feature ProbeSeccomp() {
  if (::prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
    return {false, absl::StrCat("prctl(PR_GET_SECCOMP) failed: ", ErrnoText(errno),
                                " (kernel built without CONFIG_SECCOMP)")};
  }
  // SECCOMP_GET_ACTION_AVAIL needs Linux 4.14; an older kernel with filters has RET_ERRNO anyway.
  uint32_t action = SECCOMP_RET_ERRNO;
  if (::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) != 0 && errno != EINVAL &&
      errno != ENOSYS) {
    return {false, absl::StrCat("seccomp(SECCOMP_GET_ACTION_AVAIL, RET_ERRNO) failed: ",
                                ErrnoText(errno))};
  }
  absl::StatusOr<SeccompFilter> filter = SeccompFilter::Build(Network::kNone);
  if (!filter.ok()) {
    return {false, std::string(filter.status().message())};
  }
  return {true, ""};
}

bool CanSeccompWithoutNoNewPrivs() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      size_t start = line.find_first_not_of(" \t", 7);
      uint64_t caps = 0;
      if (start == std::string::npos) {
        return false;
      }
      std::from_chars(line.data() + start, line.data() + line.size(), caps, 16);
      constexpr int kCapSysAdmin = 21;
      return (caps >> kCapSysAdmin) & 1U;
    }
  }
  return false;
}

absl::StatusOr<SeccompFilter> SeccompFilter::Build(Network network) {
  std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (ctx == nullptr) {
    return absl::InternalError(
        "sandbox step `seccomp`: libseccomp cannot build a filter for this architecture");
  }
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
      continue;
    }
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0); rc < 0) {
      return RuleError(rc, name);
    }
  }
  if (network == Network::kNone) {
    // The _32 comparison looks at the low 32 bits only, as the kernel does for an int argument,
    // so garbage in the upper half can neither let AF_INET through nor refuse AF_UNIX.
    for (int nr : {SCMP_SYS(socket), SCMP_SYS(socketpair)}) {
      if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                                    SCMP_A0_32(SCMP_CMP_NE, AF_UNIX));
          rc < 0) {
        return RuleError(rc, "socket family != AF_UNIX");
      }
    }
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0);
        rc < 0) {
      return RuleError(rc, "io_uring_setup");
    }
  }
  // libseccomp 2.5 exports only to a descriptor; a memfd keeps it off the file system.
  UniqueFd out(::memfd_create("mcpmw-seccomp", MFD_CLOEXEC));
  if (!out.Valid()) {
    return absl::InternalError(
        absl::StrCat("sandbox step `seccomp`: memfd_create failed: ", ErrnoText(errno)));
  }
  if (int rc = seccomp_export_bpf(ctx.get(), out.Get()); rc < 0) {
    return absl::InternalError(
        absl::StrCat("sandbox step `seccomp`: exporting the filter failed: ", ErrnoText(-rc)));
  }
  struct stat st {};
  if (::fstat(out.Get(), &st) != 0 || st.st_size <= 0 ||
      st.st_size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    return absl::InternalError("sandbox step `seccomp`: the exported filter is malformed");
  }
  SeccompFilter filter;
  filter.instructions_.resize(static_cast<size_t>(st.st_size) / sizeof(sock_filter));
  if (::pread(out.Get(), filter.instructions_.data(), static_cast<size_t>(st.st_size), 0) !=
      st.st_size) {
    return absl::InternalError(
        absl::StrCat("sandbox step `seccomp`: reading the filter back failed: ", ErrnoText(errno)));
  }
  return filter;
}

sock_fprog SeccompFilter::Program() const {
  return {static_cast<unsigned short>(instructions_.size()),  // NOLINT(google-runtime-int)
          const_cast<sock_filter*>(instructions_.data())};
}

int ApplySeccompInChild(const sock_fprog& program) {
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) == 0 ? 0 : errno;
}

}  // namespace mcpmw::pool::sandbox
