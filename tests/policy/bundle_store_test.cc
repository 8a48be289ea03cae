#include "src/policy/bundle_store.h"

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/policy/bundle.h"

namespace mcpmw::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::shared_ptr<const Bundle> Version(std::string_view version) {
  absl::StatusOr<std::shared_ptr<const Bundle>> b =
      ParseBundle(R"({"bundleVersion":")" + std::string(version) + R"("})");
  EXPECT_TRUE(b.ok()) << b.status();
  return *b;
}

TEST(BundleStore, StartsEmpty) {
  BundleStore store;
  EXPECT_EQ(store.current(), nullptr);
  EXPECT_EQ(store.generation(), 0u);
  EXPECT_THAT(store.versions(), IsEmpty());
}

TEST(BundleStore, InstallMakesTheBundleCurrent) {
  BundleStore store;
  std::shared_ptr<const Bundle> v1 = Version("v1");
  EXPECT_TRUE(store.Install(v1));
  EXPECT_EQ(store.current(), v1);
  EXPECT_EQ(store.generation(), 1u);
  EXPECT_THAT(store.versions(), ElementsAre("v1"));
}

TEST(BundleStore, InstallingTheSameBytesAgainChangesNothing) {
  BundleStore store;
  std::shared_ptr<const Bundle> first = Version("v1");
  ASSERT_TRUE(store.Install(first));
  // A separately parsed copy of the same document: same sha256, so not a new version.
  EXPECT_FALSE(store.Install(Version("v1")));
  EXPECT_EQ(store.current(), first);
  EXPECT_EQ(store.generation(), 1u);
  EXPECT_THAT(store.versions(), ElementsAre("v1"));
}

TEST(BundleStore, ListsVersionsNewestFirst) {
  BundleStore store;
  store.Install(Version("v1"));
  store.Install(Version("v2"));
  store.Install(Version("v3"));
  EXPECT_THAT(store.versions(), ElementsAre("v3", "v2", "v1"));
  EXPECT_EQ(store.generation(), 3u);
}

TEST(BundleStore, KeepsAtMostTheConfiguredHistory) {
  BundleStore store(/*history=*/2);
  for (std::string_view v : {"v1", "v2", "v3", "v4", "v5"}) {
    store.Install(Version(v));
  }
  EXPECT_THAT(store.versions(), ElementsAre("v5", "v4", "v3"));
}

TEST(BundleStore, RollbackRestoresThePreviousVersionAndDropsTheCurrent) {
  BundleStore store;
  std::shared_ptr<const Bundle> v1 = Version("v1");
  store.Install(v1);
  store.Install(Version("v2"));
  ASSERT_TRUE(store.Rollback().ok());
  EXPECT_EQ(store.current(), v1);
  EXPECT_EQ(store.generation(), 3u);
  EXPECT_THAT(store.versions(), ElementsAre("v1"));
}

TEST(BundleStore, RollbackWithoutHistoryFailsAndKeepsTheCurrent) {
  BundleStore store;
  std::shared_ptr<const Bundle> v1 = Version("v1");
  store.Install(v1);
  absl::Status status = store.Rollback();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(status.message()), "there is no earlier bundle version to roll back to");
  EXPECT_EQ(store.current(), v1);
  EXPECT_EQ(store.generation(), 1u);

  BundleStore empty;
  EXPECT_EQ(empty.Rollback().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(empty.current(), nullptr);
}

TEST(BundleStore, ReinstallingARolledBackVersionIsANewVersion) {
  BundleStore store;
  store.Install(Version("v1"));
  store.Install(Version("v2"));
  ASSERT_TRUE(store.Rollback().ok());
  EXPECT_TRUE(store.Install(Version("v2")));
  EXPECT_THAT(store.versions(), ElementsAre("v2", "v1"));
  EXPECT_EQ(store.generation(), 4u);
}

}  // namespace
}  // namespace mcpmw::policy
