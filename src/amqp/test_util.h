// Helpers shared by the amqp codec tests: byte literals and hex dumps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace myelin::amqp::wire::testing {

inline std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  out.reserve(v.size());
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

inline std::vector<std::byte> bytes(std::string_view s) {
  std::vector<std::byte> out;
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

inline std::string hex(std::span<const std::byte> b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::byte x : b) {
    const auto v = std::to_integer<unsigned>(x);
    s += digits[v >> 4];
    s += digits[v & 15];
    s += ' ';
  }
  if (!s.empty()) s.pop_back();
  return s;
}

}  // namespace myelin::amqp::wire::testing
