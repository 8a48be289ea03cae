#include "src/app/eval_command.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/eval/json_value.h"
#include "tests/eval/vectors.h"

namespace mcpmw::app {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kE2e01Summary =
    "MCP Middleware Report\n"
    "Invocation: 6f4bd6181f09732e011ad125ba1e45071f5e869a88516a0398993418127b0401\n"
    "Trace: cc21057085de2d0d87401b8edb94c1d57b9fc620c1cc55827fdb875b300bfa9a\n"
    "Final Status: served\n"
    "Passed: true\n"
    "Errors: 0\n"
    "Warnings: 2\n"
    "Categories: cost-meter, trace\n"
    "HTTP Status: 200\n"
    "Dispatched: true\n"
    "Cost USD: 0.038\n"
    "Tokens: 200\n";

// A temporary file holding `text`, removed when the object dies.
class TempFile {
 public:
  explicit TempFile(std::string_view text) {
    const char* tmp = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe)
    path_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/mcpmw-eval-XXXXXX";
    int fd = ::mkstemp(path_.data());
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The `input` of a vector file as a document of its own.
std::string VectorInput(const std::string& file) {
  const eval::JsonValue vector = eval::testing::LoadVectorFile(file);
  return eval::StringifyJson(*vector.Find("input"));
}

struct Outcome {
  int exit_code;
  std::string out;
  std::string err;
};

std::string Drain(std::FILE* f) {
  std::rewind(f);
  std::string text;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    text.append(buf, n);
  }
  std::fclose(f);
  return text;
}

// $MCPMW_BUILD_DIR, else the build tree this test binary sits in (<build>/tests/eval/eval_test):
// mcpmw_test's ENVIRONMENT list reaches ctest as two properties, and only the first is set.
std::string BuildDir() {
  if (const char* dir = std::getenv("MCPMW_BUILD_DIR")) {  // NOLINT(concurrency-mt-unsafe)
    return dir;
  }
  std::string self(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size());
  self.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return self.substr(0, self.rfind("/tests/eval/"));
}

Outcome Eval(std::vector<std::string_view> args) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  const int code = RunEval(args, out, err);
  return {code, Drain(out), Drain(err)};
}

TEST(EvalCommand, PrintsThePrototypesTwelveLinesAndExitsZeroWhenServed) {
  TempFile input(VectorInput("e2e-01-clean-input-passes.json"));
  Outcome o = Eval({input.path()});
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, kE2e01Summary);
  EXPECT_EQ(o.err, "");
}

TEST(EvalCommand, ExitsOneWhenTheReportIsBlocked) {
  TempFile input(VectorInput("e2e-02-input-with-errors-fails.json"));
  Outcome o = Eval({input.path()});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_THAT(o.out,
              HasSubstr("\nFinal Status: blocked\nPassed: false\nErrors: 7\nWarnings: 2\n"
                        "Categories: authenticate, cost-meter, dispatch, policy, rate-limit, "
                        "request-redaction, response-redaction, tool-filter, trace\n"
                        "HTTP Status: 403\nDispatched: false\nCost USD: 0.022\n"
                        "Tokens: 120\n"));
}

TEST(EvalCommand, JsonFlagPrintsTheFullReportAsOneLine) {
  const eval::JsonValue vector = eval::testing::LoadVectorFile("e2e-03-warnings-only-passes.json");
  TempFile input(eval::StringifyJson(*vector.Find("input")));
  Outcome o = Eval({"--json", input.path()});
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, eval::StringifyJson(*vector.Find("seedOutputWithStandardRateLimitSha")) + "\n");
}

TEST(EvalCommand, UnreadableFileIsAUsageErrorNamingTheFile) {
  Outcome o = Eval({"/nonexistent/input.json"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "mcpmw eval: cannot read /nonexistent/input.json: No such file or directory\n");
}

TEST(EvalCommand, InvalidJsonIsAUsageErrorThatSaysSo) {
  TempFile input("{\"envelope\": ");
  Outcome o = Eval({input.path()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.err, StartsWith("mcpmw eval: " + input.path() + " is not valid JSON: "));
}

TEST(EvalCommand, JsonThatIsNotAnObjectIsRejected) {
  TempFile input("[]");
  Outcome o = Eval({input.path()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.err, HasSubstr("must hold one JSON object"));
}

TEST(EvalCommand, BadArgumentsExitTwoWithUsage) {
  Outcome none = Eval({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("no FILE given; usage: mcpmw eval FILE [--json]"));
  Outcome unknown = Eval({"--yaml", "x.json"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown option `--yaml`"));
  Outcome two = Eval({"a.json", "b.json"});
  EXPECT_EQ(two.exit_code, 2);
  EXPECT_THAT(two.err, HasSubstr("one FILE at a time"));
}

// The built binary, end to end: argv parsing, the verb's wiring in main, stdout and exit code.
TEST(EvalCommand, BinaryPrintsTheSummaryForAFileAndForStdin) {
  const std::string binary = BuildDir() + "/src/app/mcpmw";
  ASSERT_EQ(::access(binary.c_str(), X_OK), 0) << binary << " is not built";
  TempFile input(VectorInput("e2e-01-clean-input-passes.json"));

  for (bool from_stdin : {false, true}) {
    SCOPED_TRACE(from_stdin ? "stdin" : "file");
    int out_pipe[2];
    ASSERT_EQ(::pipe(out_pipe), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::dup2(out_pipe[1], STDOUT_FILENO);
      ::close(out_pipe[0]);
      ::close(out_pipe[1]);
      if (from_stdin) {
        int fd = ::open(input.path().c_str(), O_RDONLY);
        ::dup2(fd, STDIN_FILENO);
        ::execl(binary.c_str(), "mcpmw", "eval", "-", static_cast<char*>(nullptr));
      } else {
        ::execl(binary.c_str(), "mcpmw", "eval", input.path().c_str(), static_cast<char*>(nullptr));
      }
      ::_exit(127);
    }
    ::close(out_pipe[1]);
    std::string out;
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(out_pipe[0], buf, sizeof(buf))) > 0) {
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(out_pipe[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(out, kE2e01Summary);
  }
}

}  // namespace
}  // namespace mcpmw::app
