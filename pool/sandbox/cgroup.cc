#include "pool/sandbox/cgroup.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "src/common/log.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::pool::sandbox {
namespace {

// How long Teardown waits for SIGKILLed processes to leave the cgroup. Exit after SIGKILL takes
// microseconds; only a process stuck in an uninterruptible sleep (a hung NFS read) takes longer.
constexpr std::chrono::seconds kTeardownBound{5};
// cgroup v1 has no notification when a cgroup empties, so the kill loop rechecks this often.
constexpr std::chrono::milliseconds kRecheckEvery{1};
constexpr uint64_t kCpuPeriodUs = 100000;

absl::Status ErrnoStatus(int error, std::string_view what) {
  return {absl::ErrnoToStatusCode(error), absl::StrCat(Sv(what), ": ", ErrnoText(error))};
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.Valid()) {
    return ErrnoStatus(errno, absl::StrCat("cannot open ", path));
  }
  std::string text;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd.Get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return ErrnoStatus(errno, absl::StrCat("cannot read ", path));
    }
    if (n == 0) {
      return text;
    }
    text.append(buf, static_cast<size_t>(n));
  }
}

absl::Status WriteFile(const std::string& path, std::string_view value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.Valid()) {
    return ErrnoStatus(errno, absl::StrCat("cannot open ", path));
  }
  ssize_t n;
  do {
    n = ::write(fd.Get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(value.size())) {
    return ErrnoStatus(n < 0 ? errno : EIO,
                       absl::StrCat("cannot write \"", Sv(value), "\" to ", path));
  }
  return absl::OkStatus();
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountField(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      int value = 0;
      auto [end, ec] = std::from_chars(field.data() + i + 1, field.data() + i + 4, value, 8);
      if (ec == std::errc() && end == field.data() + i + 4) {
        out.push_back(static_cast<char>(value));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

struct CgroupMount {
  bool v2 = false;
  std::string root;         // the hierarchy path mounted there ("/" unless a bind or cgroupns)
  std::string mount_point;  // where it is mounted
  std::vector<std::string> controllers;  // v1 only
};

std::vector<CgroupMount> ReadCgroupMounts() {
  std::vector<CgroupMount> mounts;
  absl::StatusOr<std::string> text = ReadFile("/proc/self/mountinfo");
  if (!text.ok()) {
    return mounts;
  }
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    // id parent dev root mount-point options [optional...] - fstype source super-options
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") {
      ++dash;
    }
    if (dash + 3 >= fields.size()) {
      continue;
    }
    absl::string_view fstype = fields[dash + 1];
    if (fstype != "cgroup" && fstype != "cgroup2") {
      continue;
    }
    CgroupMount mount;
    mount.v2 = fstype == "cgroup2";
    mount.root = UnescapeMountField(Sv(fields[3]));
    mount.mount_point = UnescapeMountField(Sv(fields[4]));
    if (!mount.v2) {
      for (absl::string_view option : absl::StrSplit(fields[dash + 3], ',')) {
        mount.controllers.emplace_back(option);
      }
    }
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

// mcpmw's own cgroup paths from /proc/self/cgroup: the v2 one and one per v1 controller.
struct Membership {
  std::optional<std::string> v2_path;
  std::vector<std::pair<std::string, std::string>> v1_paths;  // controller, path
};

Membership ReadMembership() {
  Membership membership;
  absl::StatusOr<std::string> text = ReadFile("/proc/self/cgroup");
  if (!text.ok()) {
    return membership;
  }
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    // hierarchy-id:controller-list:path (the path itself may contain ':')
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) {
      continue;
    }
    if (parts[0] == "0" && parts[1].empty()) {
      membership.v2_path = std::string(parts[2]);
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
      membership.v1_paths.emplace_back(std::string(controller), std::string(parts[2]));
    }
  }
  return membership;
}

// The directory of cgroup `path` under `mount`, or nullopt when the mount does not show it.
std::optional<std::string> DirUnder(const CgroupMount& mount, const std::string& path) {
  std::string relative;
  if (mount.root == "/") {
    relative = path;
  } else if (path == mount.root || absl::StartsWith(path, absl::StrCat(mount.root, "/"))) {
    relative = path.substr(mount.root.size());
  } else {
    return std::nullopt;
  }
  if (relative == "/") {
    relative.clear();
  }
  return absl::StrCat(mount.mount_point, relative);
}

bool Writable(const std::string& dir, std::string* reason) {
  if (::access(dir.c_str(), W_OK) == 0) {
    return true;
  }
  *reason = absl::StrCat(dir, " is not writable: ", ErrnoText(errno));
  return false;
}

CgroupController ProbeController(const std::string& name, const std::vector<CgroupMount>& mounts,
                                 const Membership& membership,
                                 const std::optional<std::string>& v2_dir) {
  CgroupController controller;
  std::string v2_note = "no cgroup v2 hierarchy";
  if (v2_dir) {
    absl::StatusOr<std::string> enabled =
        ReadFile(absl::StrCat(*v2_dir, "/cgroup.subtree_control"));
    bool delegated = false;
    if (enabled.ok()) {
      for (absl::string_view token :
           absl::StrSplit(*enabled, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
        delegated = delegated || token == name;
      }
    }
    if (delegated && Writable(*v2_dir, &v2_note)) {
      controller.available = true;
      controller.version = CgroupVersion::kV2;
      controller.parent_dir = *v2_dir;
      return controller;
    }
    if (!delegated) {
      v2_note = absl::StrCat("cgroup v2: `", name, "` is not in ", *v2_dir,
                             "/cgroup.subtree_control (not delegated to mcpmw's cgroup)");
    }
  }
  std::string v1_note = absl::StrCat("cgroup v1: no hierarchy with `", name, "` is mounted");
  for (const auto& [v1_controller, path] : membership.v1_paths) {
    if (v1_controller != name) {
      continue;
    }
    for (const CgroupMount& mount : mounts) {
      bool carries = false;
      for (const std::string& c : mount.controllers) {
        carries = carries || c == name;
      }
      if (mount.v2 || !carries) {
        continue;
      }
      std::optional<std::string> dir = DirUnder(mount, path);
      if (!dir) {
        v1_note = absl::StrCat("cgroup v1: mcpmw's cgroup ", path, " is outside the mount at ",
                               mount.mount_point);
        continue;
      }
      if (Writable(*dir, &v1_note)) {
        controller.available = true;
        controller.version = CgroupVersion::kV1;
        controller.parent_dir = *dir;
        return controller;
      }
      v1_note = absl::StrCat("cgroup v1: ", v1_note);
    }
  }
  controller.reason = absl::StrCat(v2_note, "; ", v1_note);
  return controller;
}

std::string SanitizedName(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, 48)) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
    out.push_back(plain ? c : '_');
  }
  return out.empty() || out == "." || out == ".." ? "worker" : out;
}

std::vector<pid_t> ParsePids(std::string_view text) {
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(Sv(text), '\n', absl::SkipEmpty())) {
    pid_t pid = 0;
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), pid);
    if (ec == std::errc() && pid > 0) {
      pids.push_back(pid);
    }
  }
  return pids;
}

absl::Status WriteLimits(const CgroupLayout::Hierarchy& hierarchy, const std::string& dir,
                         const CgroupLimits& limits) {
  const bool v2 = hierarchy.version == CgroupVersion::kV2;
  if (hierarchy.memory && limits.memory_bytes) {
    const std::string bytes = absl::StrCat(*limits.memory_bytes);
    MCPMW_RETURN_IF_ERROR(
        WriteFile(absl::StrCat(dir, v2 ? "/memory.max" : "/memory.limit_in_bytes"), bytes));
    // Best effort: without swap accounting (or swap) these files are absent, and then there is
    // no swap to escape into either. oom.group makes the OOM killer take the whole worker.
    if (v2) {
      (void)WriteFile(absl::StrCat(dir, "/memory.swap.max"), "0");
      (void)WriteFile(absl::StrCat(dir, "/memory.oom.group"), "1");
    } else {
      (void)WriteFile(absl::StrCat(dir, "/memory.memsw.limit_in_bytes"), bytes);
    }
  }
  if (hierarchy.pids && limits.pids_max) {
    MCPMW_RETURN_IF_ERROR(
        WriteFile(absl::StrCat(dir, "/pids.max"), absl::StrCat(*limits.pids_max)));
  }
  if (hierarchy.cpu && limits.cpu_percent) {
    const uint64_t quota = uint64_t{*limits.cpu_percent} * kCpuPeriodUs / 100;
    if (v2) {
      MCPMW_RETURN_IF_ERROR(
          WriteFile(absl::StrCat(dir, "/cpu.max"), absl::StrCat(quota, " ", kCpuPeriodUs)));
    } else {
      MCPMW_RETURN_IF_ERROR(
          WriteFile(absl::StrCat(dir, "/cpu.cfs_period_us"), absl::StrCat(kCpuPeriodUs)));
      MCPMW_RETURN_IF_ERROR(WriteFile(absl::StrCat(dir, "/cpu.cfs_quota_us"), absl::StrCat(quota)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

CgroupHost ProbeCgroups() {
  CgroupHost host;
  const std::vector<CgroupMount> mounts = ReadCgroupMounts();
  const Membership membership = ReadMembership();
  std::optional<std::string> v2_dir;
  std::string v2_reason = "no cgroup v2 hierarchy is mounted";
  if (!membership.v2_path) {
    v2_reason = "/proc/self/cgroup has no cgroup v2 line";
  } else {
    for (const CgroupMount& mount : mounts) {
      if (mount.v2) {
        v2_dir = DirUnder(mount, *membership.v2_path);
        if (!v2_dir) {
          v2_reason = absl::StrCat("mcpmw's cgroup ", *membership.v2_path,
                                   " is outside the cgroup v2 mount at ", mount.mount_point);
        }
        break;
      }
    }
  }
  host.memory = ProbeController("memory", mounts, membership, v2_dir);
  host.pids = ProbeController("pids", mounts, membership, v2_dir);
  host.cpu = ProbeController("cpu", mounts, membership, v2_dir);

  // cgroup.kill only exists in non-root cgroups, so the only way to know whether worker cgroups
  // would have it is to make one.
  if (v2_dir && Writable(*v2_dir, &v2_reason)) {
    const std::string probe = absl::StrCat(*v2_dir, "/mcpmw-probe-", ::getpid());
    if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) {
      v2_reason = absl::StrCat("cannot create a cgroup under ", *v2_dir, ": ", ErrnoText(errno));
    } else {
      if (::access(absl::StrCat(probe, "/cgroup.kill").c_str(), F_OK) == 0) {
        host.v2_kill_parent_dir = *v2_dir;
      } else {
        v2_reason = "cgroup v2 has no cgroup.kill (needs Linux 5.14+)";
      }
      ::rmdir(probe.c_str());
    }
  }
  if (host.v2_kill_parent_dir.empty()) {
    host.v2_kill_reason = v2_reason;
  }
  return host;
}

absl::StatusOr<CgroupLayout> LayOutCgroup(const CgroupLimits& limits, const CgroupHost& host) {
  if (limits.cpu_percent && *limits.cpu_percent == 0) {
    return absl::InvalidArgumentError("cgroup cpu_percent must be at least 1");
  }
  CgroupLayout layout;
  auto use = [&layout](const CgroupController& controller) -> CgroupLayout::Hierarchy& {
    for (CgroupLayout::Hierarchy& hierarchy : layout.hierarchies) {
      if (hierarchy.parent_dir == controller.parent_dir) {
        return hierarchy;
      }
    }
    layout.hierarchies.push_back({controller.version, controller.parent_dir});
    return layout.hierarchies.back();
  };
  struct Need {
    bool wanted;
    const char* name;
    const CgroupController& controller;
    bool CgroupLayout::Hierarchy::*flag;
  };
  const Need needs[] = {
      {limits.memory_bytes.has_value(), "memory", host.memory, &CgroupLayout::Hierarchy::memory},
      {limits.pids_max.has_value(), "pids", host.pids, &CgroupLayout::Hierarchy::pids},
      {limits.cpu_percent.has_value(), "cpu", host.cpu, &CgroupLayout::Hierarchy::cpu},
  };
  for (const Need& need : needs) {
    if (!need.wanted) {
      continue;
    }
    if (!need.controller.available) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no writable cgroup ", need.name, " controller (", need.controller.reason, ")"));
    }
    use(need.controller).*need.flag = true;
  }
  bool has_v2 = false;
  for (const CgroupLayout::Hierarchy& hierarchy : layout.hierarchies) {
    has_v2 = has_v2 || hierarchy.version == CgroupVersion::kV2;
  }
  if (!has_v2 && !host.v2_kill_parent_dir.empty()) {
    layout.hierarchies.push_back({CgroupVersion::kV2, host.v2_kill_parent_dir});
  }
  if (layout.hierarchies.empty()) {
    // No limits and no v2: any writable hierarchy still tracks the worker's processes.
    for (const CgroupController* controller : {&host.pids, &host.memory, &host.cpu}) {
      if (controller->available) {
        use(*controller);
        break;
      }
    }
  }
  if (layout.hierarchies.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no writable cgroup hierarchy (", host.v2_kill_reason, "; pids: ", host.pids.reason, ")"));
  }
  return layout;
}

int JoinCgroupInChild(const CgroupJoin& join) {
  // "0" is the writing process itself, in any pid namespace.
  for (int i = 0; i < join.count; ++i) {
    if (::write(join.fds[i], "0", 1) != 1) {
      return errno;
    }
  }
  return 0;
}

WorkerCgroup::WorkerCgroup(WorkerCgroup&& other) noexcept
    : dirs_(std::exchange(other.dirs_, {})),
      kill_file_dir_(std::exchange(other.kill_file_dir_, -1)),
      join_fds_(std::exchange(other.join_fds_, {})) {}

WorkerCgroup& WorkerCgroup::operator=(WorkerCgroup&& other) noexcept {
  if (this != &other) {
    if (absl::Status torn = Teardown(); !torn.ok()) {
      LogError("cannot remove a worker cgroup: ", torn.message());
    }
    dirs_ = std::exchange(other.dirs_, {});
    kill_file_dir_ = std::exchange(other.kill_file_dir_, -1);
    join_fds_ = std::exchange(other.join_fds_, {});
  }
  return *this;
}

WorkerCgroup::~WorkerCgroup() {
  if (absl::Status torn = Teardown(); !torn.ok()) {
    LogError("cannot remove a worker cgroup: ", torn.message());
  }
}

absl::StatusOr<WorkerCgroup> WorkerCgroup::Create(const CgroupLayout& layout,
                                                  const CgroupLimits& limits,
                                                  std::string_view worker_name) {
  static std::atomic<uint64_t> serial{0};
  const std::string name = absl::StrCat("mcpmw-", ::getpid(), "-", SanitizedName(worker_name), "-",
                                        serial.fetch_add(1, std::memory_order_relaxed) + 1);
  // On any failure `cgroup` goes out of scope and its destructor removes what was made.
  WorkerCgroup cgroup;
  for (const CgroupLayout::Hierarchy& hierarchy : layout.hierarchies) {
    std::string dir = absl::StrCat(hierarchy.parent_dir, "/", name);
    if (::mkdir(dir.c_str(), 0755) != 0) {
      return ErrnoStatus(errno, absl::StrCat("cannot create cgroup ", dir));
    }
    cgroup.dirs_.push_back(dir);
    MCPMW_RETURN_IF_ERROR(WriteLimits(hierarchy, dir, limits));
    if (hierarchy.version == CgroupVersion::kV2 && cgroup.kill_file_dir_ < 0 &&
        ::access(absl::StrCat(dir, "/cgroup.kill").c_str(), W_OK) == 0) {
      cgroup.kill_file_dir_ = static_cast<int>(cgroup.dirs_.size()) - 1;
    }
    const std::string procs = absl::StrCat(dir, "/cgroup.procs");
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.Valid()) {
      return ErrnoStatus(errno, absl::StrCat("cannot open ", procs));
    }
    cgroup.join_fds_.push_back(std::move(fd));
  }
  return cgroup;
}

CgroupJoin WorkerCgroup::join() const {
  CgroupJoin join;
  for (const UniqueFd& fd : join_fds_) {
    if (join.count < static_cast<int>(join.fds.size())) {
      join.fds[join.count++] = fd.Get();
    }
  }
  return join;
}

void WorkerCgroup::CloseJoinFds() { join_fds_.clear(); }

absl::StatusOr<std::vector<pid_t>> WorkerCgroup::Pids() const {
  if (dirs_.empty()) {
    return std::vector<pid_t>{};
  }
  MCPMW_ASSIGN_OR_RETURN(std::string text, ReadFile(absl::StrCat(dirs_.front(), "/cgroup.procs")));
  return ParsePids(text);
}

absl::Status WorkerCgroup::Teardown() {
  if (dirs_.empty()) {
    return absl::OkStatus();
  }
  join_fds_.clear();
  const auto deadline = std::chrono::steady_clock::now() + kTeardownBound;
  bool killed_by_file = false;
  UniqueFd events;
  if (kill_file_dir_ >= 0) {
    const std::string& dir = dirs_[kill_file_dir_];
    // cgroup.kill SIGKILLs every process in the cgroup and its descendants atomically, with no
    // pid reuse race and no escape by forking; cgroup.events then reports "populated 0".
    killed_by_file = WriteFile(absl::StrCat(dir, "/cgroup.kill"), "1").ok();
    events.Reset(::open(absl::StrCat(dir, "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC));
  }
  while (true) {
    absl::StatusOr<std::vector<pid_t>> pids = Pids();
    if (!pids.ok() || pids->empty()) {
      break;  // an unreadable cgroup.procs means the directory is already gone
    }
    if (!killed_by_file) {
      // v1: kill every listed process, round after round, until none is left; a process forked
      // between reading the list and the kill is in the next round's list. (A listed process
      // that exits and whose pid is reused within one round is the one race v1 leaves open.)
      for (pid_t pid : *pids) {
        ::kill(pid, SIGKILL);
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          pids->size(), " process(es) of worker cgroup ", dirs_.front(), " are still alive ",
          kTeardownBound.count(), " s after SIGKILL (pids: ", absl::StrJoin(*pids, " "), ")"));
    }
    if (events.Valid()) {
      pollfd pfd{events.Get(), POLLPRI, 0};
      ::poll(&pfd, 1, 10);
      char buf[256];
      (void)::pread(events.Get(), buf, sizeof(buf), 0);  // re-arms the notification
    } else {
      std::this_thread::sleep_for(kRecheckEvery);
    }
  }
  // Remove in reverse creation order; EBUSY can linger for a moment while a killed process
  // finishes leaving a second hierarchy.
  while (!dirs_.empty()) {
    const std::string& dir = dirs_.back();
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) {
      if (kill_file_dir_ == static_cast<int>(dirs_.size()) - 1) {
        kill_file_dir_ = -1;
      }
      dirs_.pop_back();
      continue;
    }
    const int error = errno;
    if (error != EBUSY || std::chrono::steady_clock::now() >= deadline) {
      return ErrnoStatus(error, absl::StrCat("cannot remove cgroup ", dir));
    }
    std::this_thread::sleep_for(kRecheckEvery);
  }
  kill_file_dir_ = -1;
  return absl::OkStatus();
}

}  // namespace mcpmw::pool::sandbox
