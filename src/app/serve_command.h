// mcpmw app: `mcpmw serve --config FILE`, the shared gateway (ARCHITECTURE.md §1, §7).
//
// Wires the globals of one gateway process: the config, the policy chain and audit log
// (Governance), identity, the worker pools (their own reactor thread), and one HTTP reactor
// serving the MCP endpoints and, on a separate listener, the admin API. SIGTERM or SIGINT (or
// POST /admin/drain) drains: stop accepting, finish the calls in flight (up to drainTimeoutMs),
// end the sessions, stop and reap every worker, flush the audit log, exit 0. SIGHUP reloads the
// policy bundle and the identity keys.
#pragma once

#include "src/app/cli.h"

namespace mcpmw::app {

// Runs the gateway until it is drained; the process exit code (0 after a clean drain, 1 when it
// could not start, with the reason logged).
int RunServe(const Command& cmd);

// `mcpmw hash-api-key`: reads a key from stdin (one trailing newline dropped) and prints its
// SHA-256 hex digest, what identity.apiKeys[].sha256 holds. Exit 0, or 2 for an empty key.
int RunHashApiKey();

}  // namespace mcpmw::app
