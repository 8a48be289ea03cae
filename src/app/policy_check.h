// mcpmw app: `mcpmw policy check FILE`.
#pragma once

#include "src/app/cli.h"

namespace mcpmw::app {

// Parses and compiles the bundle named in `cmd` exactly as the sidecar would, without running
// anything. Prints "OK: <file>: bundle <version>, N policy rules, …" on stdout and returns 0, or
// prints the error (the file, the JSON pointer of the offending value, what is wrong) on stderr
// and returns 1.
int RunPolicyCheck(const Command& cmd);

}  // namespace mcpmw::app
