// Test support: a fresh directory under gtest's temp dir, and reading a file whole.
#pragma once

#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mcpmw::testing_support {

// A new empty directory named `<prefix>_XXXXXX` under ::testing::TempDir(); its path.
inline std::string MakeTempDir(const char* prefix) {
  std::string pattern = absl::StrCat(::testing::TempDir(), "/", prefix, "_XXXXXX");
  EXPECT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
  return pattern;
}

// The file's bytes ("" when it cannot be read).
inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace mcpmw::testing_support
