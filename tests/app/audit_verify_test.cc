#include "src/app/audit_verify.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "src/audit/audit_sink.h"
#include "src/audit/signer.h"

namespace mcpmw::app {
namespace {

std::string WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AuditVerifyCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/audit-verify-" + std::to_string(::getpid());
    ::mkdir(dir_.c_str(), 0700);
    key_ = WriteFile(dir_ + "/key", "0123456789abcdef0123456789abcdef");
    log_ = dir_ + "/audit.jsonl";
    ::unlink(log_.c_str());
    auto signer = audit::Signer::FromKeyFile(key_);
    ASSERT_TRUE(signer.ok()) << signer.status();
    audit::AuditOptions options;
    options.path = log_;
    options.signer = *signer;
    options.segment_records = 4;
    auto sink = audit::AuditSink::Open(std::move(options));
    ASSERT_TRUE(sink.ok()) << sink.status();
    auto producer = (*sink)->NewProducer();
    ASSERT_TRUE(producer.ok()) << producer.status();
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE((*producer)->Append(R"({"tool":"echo","n":)" + std::to_string(i) + "}").ok());
    }
    ASSERT_TRUE((*sink)->Close().ok());
  }

  void TearDown() override {
    ::unlink(log_.c_str());
    ::unlink(key_.c_str());
    ::rmdir(dir_.c_str());
  }

  std::string dir_, key_, log_;
};

TEST_F(AuditVerifyCommand, ExitsZeroForAnIntactLog) {
  Command cmd{.verb = Verb::kAuditVerify, .audit_file = log_, .key_file = key_};
  EXPECT_EQ(RunAuditVerify(cmd), 0);
}

TEST_F(AuditVerifyCommand, ExitsOneWhenAByteWasChanged) {
  std::string text = ReadFile(log_);
  size_t at = text.find(R"("n":5)");
  ASSERT_NE(at, std::string::npos);
  text[at + 4] = '6';
  WriteFile(log_, text);
  Command cmd{.verb = Verb::kAuditVerify, .audit_file = log_, .key_file = key_};
  EXPECT_EQ(RunAuditVerify(cmd), 1);
}

TEST_F(AuditVerifyCommand, ExitsTwoWhenTheKeyCannotBeLoaded) {
  Command cmd{.verb = Verb::kAuditVerify, .audit_file = log_, .key_file = dir_ + "/missing"};
  EXPECT_EQ(RunAuditVerify(cmd), 2);
}

}  // namespace
}  // namespace mcpmw::app
