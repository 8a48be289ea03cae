// mcpmw policy: the running bundle and the versions before it.
//
// The store is the one place a bundle becomes current. Install() takes a bundle that already
// parsed and compiled (ParseBundle); anything that failed there never reaches the store, so the
// running bundle stays. The previous versions are kept (newest first, bounded) so an operator
// can roll back to the last good one. Sessions read current() at a message boundary and pin the
// snapshot for the exchanges that started under it.
//
// Not thread-safe: owned by one reactor (the sidecar's, or the gateway's control reactor, which
// then publishes snapshots to the others).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "src/policy/bundle.h"

namespace mcpmw::policy {

class BundleStore {
 public:
  explicit BundleStore(size_t history = 8) : history_limit_(history) {}

  // Makes `bundle` current. Returns false (and changes nothing) when it is byte-for-byte the
  // running bundle, so a file touched without a change is not a new version.
  bool Install(std::shared_ptr<const Bundle> bundle);

  // Makes the previous version current again (the current one is dropped).
  // FailedPrecondition when there is no earlier version.
  absl::Status Rollback();

  const std::shared_ptr<const Bundle>& current() const { return current_; }
  // Bumped by every Install and Rollback that changed the current bundle.
  uint64_t generation() const { return generation_; }
  // Versions, the current one first.
  std::vector<std::string> versions() const;

 private:
  size_t history_limit_;
  std::shared_ptr<const Bundle> current_;
  std::deque<std::shared_ptr<const Bundle>> previous_;  // newest first
  uint64_t generation_ = 0;
};

}  // namespace mcpmw::policy
