// mcpmw app: `mcpmw audit verify FILE --key KEYFILE`.
#pragma once

#include "src/app/cli.h"

namespace mcpmw::app {

// Verifies the audit log named in `cmd`, prints one line on stdout ("OK: …" or
// "FAILED (kind): record N (line L): …"), and returns the exit code: 0 intact, 1 not intact or
// unreadable, 2 a key that cannot be loaded.
int RunAuditVerify(const Command& cmd);

}  // namespace mcpmw::app
