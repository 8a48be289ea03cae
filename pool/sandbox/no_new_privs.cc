#include "pool/sandbox/no_new_privs.h"

#include <sys/prctl.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "src/common/log.h"

namespace mcpmw::pool::sandbox {

Feature ProbeNoNewPrivs() {
  // PR_GET_NO_NEW_PRIVS exists exactly when PR_SET_NO_NEW_PRIVS does.
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) < 0) {
    return {false, absl::StrCat("prctl(PR_GET_NO_NEW_PRIVS) failed: ", ErrnoText(errno),
                                " (needs Linux 3.5+)")};
  }
  return {true, ""};
}

int ApplyNoNewPrivs() { return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 ? 0 : errno; }

}  // namespace mcpmw::pool::sandbox
