// mcpmw transport/stdio: runs the sidecar on this process's own stdin and stdout.
//
// Owns what a sidecar process needs around the session: the kernel check, one io_uring ring on
// the calling thread, SIGINT/SIGTERM/SIGHUP turned into a signalfd the session reads (so a signal
// means an orderly shutdown, never a handler racing the ring), SIGPIPE ignored (a vanished peer
// is an EPIPE result, not a death), and the server's sandbox: `options.server.sandbox` planned
// against this host (pool/sandbox/sandbox.h) once, optional steps the host lacks logged, and the
// plan handed to the session for every start of the server.
#pragma once

#include <optional>

#include "src/proxy/governance.h"
#include "src/proxy/sidecar.h"

namespace mcpmw::transport {

// Runs the sidecar to completion on the calling thread and returns the process exit code
// (proxy::kExitFailure when a required sandbox step is unavailable on this host).
// Call from the main thread: children are tied to it by PR_SET_PDEATHSIG.
int RunStdioSidecar(proxy::SidecarOptions options,
                    std::optional<proxy::GovernanceOptions> governance = std::nullopt);

}  // namespace mcpmw::transport
