// Test support for tests on a real io_uring: skipping where the kernel offers none, and pipes.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "gtest/gtest.h"
#include "src/common/fd.h"

// Skips the test, with Ring::Create's explanation, where the kernel or its sandbox offers no
// io_uring (io_uring_disabled, a seccomp profile).
#define SKIP_WITHOUT_IO_URING(ring_or)                                    \
  if (!(ring_or).ok()) {                                                  \
    GTEST_SKIP() << "no io_uring here: " << (ring_or).status().message(); \
  }

namespace mcpmw::testing_support {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

enum class ReadEnd { kBlocking, kNonBlocking };

// A close-on-exec pipe; with kNonBlocking a test can look at what it holds without waiting.
inline Pipe MakePipe(ReadEnd read_end = ReadEnd::kBlocking) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::generic_category().message(errno);
    return {};
  }
  if (read_end == ReadEnd::kNonBlocking && ::fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
    ADD_FAILURE() << "fcntl O_NONBLOCK: " << std::generic_category().message(errno);
  }
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace mcpmw::testing_support
