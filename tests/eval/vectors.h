// Test helpers for tests/eval: loading the prototype's vector files from testdata/.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "src/eval/json_value.h"

namespace mcpmw::eval {

// gtest prints JsonValues as compact JSON.
inline void PrintTo(const JsonValue& v, std::ostream* os) { *os << StringifyJson(v); }

namespace testing {

// The path of tests/eval/testdata/<name> (MCPMW_SOURCE_DIR is set by ctest).
inline std::string TestdataPath(const std::string& name) {
  const char* source_dir = std::getenv("MCPMW_SOURCE_DIR");  // NOLINT(concurrency-mt-unsafe)
  return std::string(source_dir != nullptr ? source_dir : ".") + "/tests/eval/testdata/" + name;
}

// The parsed file; a failed assertion (and null) when it is missing or not JSON.
inline JsonValue LoadVectorFile(const std::string& name) {
  std::ifstream in(TestdataPath(name), std::ios::binary);
  EXPECT_TRUE(in.good())
      << TestdataPath(name)
      << " is missing: run through ctest, or set MCPMW_SOURCE_DIR to the repo root";
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<JsonValue> parsed = ParseJson(text.str());
  EXPECT_TRUE(parsed.ok()) << name << ": " << parsed.status();
  return parsed.ok() ? *parsed : JsonValue();
}

}  // namespace testing
}  // namespace mcpmw::eval
