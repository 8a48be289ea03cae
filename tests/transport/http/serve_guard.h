// Test helper: serve an HttpServer on a test's ring, and force it closed if a drain hangs.
//
// `H` is a test harness with `std::unique_ptr<io::Ring> ring`, `std::unique_ptr<HttpServer>
// server`, and the flags `serve_returned` (Serve() finished by itself) and `forced_close` (the
// guard had to call CloseAll, which a test treats as a failure to drain).
#pragma once

#include <cerrno>

#include "src/common/clock.h"
#include "src/io/ring.h"
#include "src/io/task.h"

namespace mcpmw::http::testing_support {

// Runs the server until Serve() returns, then cancels the close guard if one is waiting.
template <typename H>
io::Task<void> ServeThenCancelGuard(H& h, io::SleepOp*& guard) {
  co_await h.server->Serve();
  h.serve_returned = true;
  if (guard != nullptr) {
    h.ring->Cancel(guard);
  }
}

// After `limit`, closes every connection of a server that has not finished draining.
template <typename H>
io::Task<void> CloseAfter(H& h, io::SleepOp*& guard, Duration limit) {
  io::SleepOp sleep(*h.ring, limit);
  guard = &sleep;
  int rc = co_await sleep;
  guard = nullptr;
  if (rc == -ETIME) {
    h.forced_close = true;
    h.server->CloseAll();
  }
}

}  // namespace mcpmw::http::testing_support
