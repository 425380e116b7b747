// MachineInfo: what a measured report ran on.
//
// Absolute times do not carry across machines; ratios do. Every measured
// report therefore states the CPU, core count, memory, kernel, compiler,
// build type and source revision it was measured with.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace myelin::perf {

struct MachineInfo {
  std::string cpu_model;
  unsigned logical_cpus = 0;
  std::string cpu_flags;   // SIMD features myelin dispatches on
  std::string memory;      // "23.4 GiB"
  std::string os;          // PRETTY_NAME from /etc/os-release
  std::string kernel;      // uname -r
  std::string compiler;    // "g++ 12.2.0"
  std::string build_type;  // "Release", "Debug", ... (the preset's CMAKE_BUILD_TYPE)
  std::string revision;    // git revision of the source tree, "+dirty" if modified

  // Reads /proc, uname and the build's own constants.
  static MachineInfo detect();

  // (label, value) pairs in display order.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> fields() const;
};

}  // namespace myelin::perf
