// mcpmw common: a JSON value rendered where it is consumed rather than where it is produced.
//
// The report stage captures what a report says on the reactor thread (copying the exchange's
// fields into a report object, which is cheap) and the audit writer renders the text on its own
// thread, so escaping and formatting stay off the message path. The writer hands rendered
// objects back to their producer (audit::Producer::TakeSpent) to be filled again.
#pragma once

#include <string>

namespace mcpmw {

class DeferredJson {
 public:
  virtual ~DeferredJson() = default;
  // Appends exactly one JSON value, on one line, to `out`. May run on any thread, once or more.
  virtual void AppendTo(std::string* out) const = 0;
};

}  // namespace mcpmw
