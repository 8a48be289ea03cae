// A tiny worker for the sandbox tests: each command tries one thing the sandbox should allow or
// refuse and prints the outcome as one line ("ok" or "errno=N"), so the tests can assert on the
// exact errno the kernel returned inside the sandbox.
//
//   sandbox_probe socket inet|inet6|unix   socket(2) of that family
//   sandbox_probe io_uring                 io_uring_setup(2)
//   sandbox_probe denied                   umount2, ptrace(TRACEME), keyctl: "umount2=N ptrace=N
//                                          keyctl=N"
//   sandbox_probe alloc MIB                allocates and touches MIB mebibytes, then prints "ok"
//   sandbox_probe forkbomb N               forks up to N sleeping children; prints "forked=K
//                                          errno=E" (E = 0 when all N forked), then sleeps
//   sandbox_probe escape                   forks a child that calls setsid() and sleeps; prints
//                                          its pid, then exits 0
//   sandbox_probe pid                      prints "pid=N" as the worker sees itself
//   sandbox_probe sleep                    sleeps until killed
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

void Report(long rc) {  // NOLINT(google-runtime-int): syscall(2) returns long
  if (rc < 0) {
    std::printf("errno=%d\n", errno);
  } else {
    std::printf("ok\n");
  }
  std::fflush(stdout);
}

[[noreturn]] void SleepForever() {
  while (true) {
    ::pause();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: sandbox_probe COMMAND [ARG]\n");
    return 2;
  }
  const std::string command = argv[1];
  const std::string arg = argc > 2 ? argv[2] : "";
  if (command == "socket") {
    int family = arg == "inet" ? AF_INET : arg == "inet6" ? AF_INET6 : AF_UNIX;
    Report(::socket(family, SOCK_STREAM, 0));
    return 0;
  }
  if (command == "io_uring") {
    unsigned char params[120] = {};  // struct io_uring_params
    Report(::syscall(__NR_io_uring_setup, 1, params));
    return 0;
  }
  if (command == "denied") {
    int umount_errno = ::umount2("/nonexistent-mcpmw", 0) == 0 ? 0 : errno;
    int ptrace_errno = ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0 ? 0 : errno;
    int keyctl_errno = ::syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0) >= 0 ? 0 : errno;
    std::printf("umount2=%d ptrace=%d keyctl=%d\n", umount_errno, ptrace_errno, keyctl_errno);
    return 0;
  }
  if (command == "alloc") {
    const size_t mib = std::strtoul(arg.c_str(), nullptr, 10);
    for (size_t i = 0; i < mib; ++i) {
      void* block =
          ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (block == MAP_FAILED) {
        std::printf("errno=%d\n", errno);
        return 1;
      }
      std::memset(block, 0x5a, 1 << 20);
    }
    std::printf("ok\n");
    return 0;
  }
  if (command == "forkbomb") {
    const int wanted = std::atoi(arg.c_str());
    int forked = 0;
    int error = 0;
    for (; forked < wanted; ++forked) {
      pid_t pid = ::fork();
      if (pid < 0) {
        error = errno;
        break;
      }
      if (pid == 0) {
        SleepForever();
      }
    }
    std::printf("forked=%d errno=%d\n", forked, error);
    std::fflush(stdout);
    SleepForever();
  }
  if (command == "escape") {
    int ready[2];
    if (::pipe(ready) != 0) {
      return 1;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setsid();
      ::close(ready[0]);
      ::close(ready[1]);  // EOF tells the parent setsid() is done
      SleepForever();
    }
    ::close(ready[1]);
    char ignored;
    while (::read(ready[0], &ignored, 1) > 0) {
    }
    std::printf("%d\n", pid);
    return 0;
  }
  if (command == "pid") {
    std::printf("pid=%d\n", ::getpid());
    return 0;
  }
  if (command == "sleep") {
    SleepForever();
  }
  std::fprintf(stderr, "sandbox_probe: unknown command %s\n", command.c_str());
  return 2;
}
