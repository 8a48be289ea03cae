#include "src/common/clock.h"

namespace mcpmw {

SteadyClock& SteadyClock::Instance() {
  static SteadyClock clock;
  return clock;
}

}  // namespace mcpmw
