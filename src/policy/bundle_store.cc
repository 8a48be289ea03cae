#include "src/policy/bundle_store.h"

namespace mcpmw::policy {

bool BundleStore::Install(std::shared_ptr<const Bundle> bundle) {
  if (current_ != nullptr && current_->sha256 == bundle->sha256) {
    return false;
  }
  if (current_ != nullptr) {
    previous_.push_front(std::move(current_));
    if (previous_.size() > history_limit_) {
      previous_.pop_back();
    }
  }
  current_ = std::move(bundle);
  ++generation_;
  return true;
}

absl::Status BundleStore::Rollback() {
  if (previous_.empty()) {
    return absl::FailedPreconditionError("there is no earlier bundle version to roll back to");
  }
  current_ = std::move(previous_.front());
  previous_.pop_front();
  ++generation_;
  return absl::OkStatus();
}

std::vector<std::string> BundleStore::versions() const {
  std::vector<std::string> out;
  if (current_ != nullptr) {
    out.push_back(current_->version);
  }
  for (const auto& b : previous_) {
    out.push_back(b->version);
  }
  return out;
}

}  // namespace mcpmw::policy
