// Test helpers: the real attestation evidence under testdata/ (see its
// README for sources and licences), found through MYELIN_SOURCE_DIR, which
// CTest sets.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "src/secure/attestation/x509.h"

namespace myelin::secure::testdata {

inline std::string dir(const std::string& platform) {
  const char* src = std::getenv("MYELIN_SOURCE_DIR");
  return std::string(src != nullptr ? src : ".") + "/src/secure/attestation/testdata/" + platform;
}

inline std::vector<std::byte> read(const std::string& path) {
  auto bytes = detail::read_file_bytes(path);
  EXPECT_TRUE(bytes.has_value()) << bytes.error().to_string();
  return bytes ? std::move(*bytes) : std::vector<std::byte>{};
}

// Hex text (whitespace ignored) to bytes.
inline std::vector<std::byte> unhex(const std::vector<std::byte>& text) {
  std::vector<std::byte> out;
  int hi = -1;
  for (std::byte c : text) {
    const char ch = static_cast<char>(c);
    int v = -1;
    if (ch >= '0' && ch <= '9') v = ch - '0';
    if (ch >= 'a' && ch <= 'f') v = ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') v = ch - 'A' + 10;
    if (v < 0) continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(std::byte((hi << 4) | v));
      hi = -1;
    }
  }
  return out;
}

inline std::chrono::sys_seconds utc(int y, unsigned m, unsigned d, int hour = 0) {
  using namespace std::chrono;
  return sys_days{year{y} / month{m} / day{d}} + hours{hour};
}

}  // namespace myelin::secure::testdata
