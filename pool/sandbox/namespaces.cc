#include "pool/sandbox/namespaces.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "src/common/log.h"

namespace mcpmw::pool::sandbox {
namespace {

int WriteWhole(const char* path, const char* data, size_t size) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno;
  }
  int error = ::write(fd, data, size) == static_cast<ssize_t>(size) ? 0 : errno;
  ::close(fd);
  return error;
}

size_t FormatMap(char* out, size_t capacity, unsigned outside_id) {
  int n = std::snprintf(out, capacity, "0 %u 1\n", outside_id);
  return n > 0 && static_cast<size_t>(n) < capacity ? static_cast<size_t>(n) : 0;
}

}  // namespace

PreparedNamespaces PrepareNamespaces(const Namespaces& wanted) {
  PreparedNamespaces prepared;
  if (wanted.user) {
    prepared.clone_flags |= CLONE_NEWUSER;
    prepared.user = true;
    prepared.uid_map_size = FormatMap(prepared.uid_map, sizeof(prepared.uid_map), ::geteuid());
    prepared.gid_map_size = FormatMap(prepared.gid_map, sizeof(prepared.gid_map), ::getegid());
  }
  if (wanted.pid) {
    prepared.clone_flags |= CLONE_NEWPID;
  }
  if (wanted.net) {
    prepared.clone_flags |= CLONE_NEWNET;
  }
  if (wanted.mount) {
    prepared.clone_flags |= CLONE_NEWNS;
    prepared.mount = true;
  }
  return prepared;
}

int SetUpNamespacesInChild(const PreparedNamespaces& prepared) {
  if (prepared.user) {
    if (int error = WriteWhole("/proc/self/setgroups", "deny", 4); error != 0) {
      return error;
    }
    if (int error = WriteWhole("/proc/self/uid_map", prepared.uid_map, prepared.uid_map_size);
        error != 0) {
      return error;
    }
    if (int error = WriteWhole("/proc/self/gid_map", prepared.gid_map, prepared.gid_map_size);
        error != 0) {
      return error;
    }
  }
  if (prepared.mount && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return errno;
  }
  return 0;
}

Feature ProbeNamespace(int clone_flag, const char* name) {
  Namespaces wanted;
  wanted.user = clone_flag == CLONE_NEWUSER;
  wanted.pid = clone_flag == CLONE_NEWPID;
  wanted.net = clone_flag == CLONE_NEWNET;
  wanted.mount = clone_flag == CLONE_NEWNS;
  const PreparedNamespaces prepared = PrepareNamespaces(wanted);
  pid_t pid = ::fork();
  if (pid < 0) {
    return {false, absl::StrCat("cannot fork to probe ", name, " namespaces: ", ErrnoText(errno))};
  }
  if (pid == 0) {
    if (::unshare(clone_flag) != 0) {
      ::_exit(errno & 0xff);
    }
    ::_exit(SetUpNamespacesInChild(prepared) & 0xff);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status)) {
    return {false, absl::StrCat("the ", name, " namespace probe died (status ", status, ")")};
  }
  if (int error = WEXITSTATUS(status); error != 0) {
    return {false, absl::StrCat("creating a ", name, " namespace failed: ", ErrnoText(error))};
  }
  return {true, ""};
}

}  // namespace mcpmw::pool::sandbox
