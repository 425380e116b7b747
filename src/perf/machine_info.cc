#include "myelin/perf/machine_info.h"

#include <sys/utsname.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "myelin/base/cpu_features.h"
#include "myelin/perf/format.h"
#include "src/perf/build_info.h"

namespace myelin::perf {
namespace {

// First value of "key<ws>: value" in a /proc-style file, or "".
std::string proc_field(const char* path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? std::string() : line.substr(start);
  }
  return {};
}

std::string os_pretty_name() {
  std::ifstream in("/etc/os-release");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("PRETTY_NAME=", 0) != 0) continue;
    std::string v = line.substr(12);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return v;
  }
  return "unknown";
}

std::string compiler_name() {
#if defined(__clang__)
  return std::string("clang++ ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("g++ ") + __VERSION__;
#else
  return "unknown";
#endif
}

}  // namespace

MachineInfo MachineInfo::detect() {
  MachineInfo m;
  m.cpu_model = proc_field("/proc/cpuinfo", "model name");
  if (m.cpu_model.empty()) m.cpu_model = "unknown";
  m.logical_cpus = std::thread::hardware_concurrency();
  m.cpu_flags = cpu_features().to_string();
  const std::string mem_kb = proc_field("/proc/meminfo", "MemTotal");
  m.memory = mem_kb.empty()
                 ? "unknown"
                 : fixed(std::strtod(mem_kb.c_str(), nullptr) / (1024.0 * 1024.0), 1) + " GiB";
  m.os = os_pretty_name();
  utsname u{};
  m.kernel = uname(&u) == 0 ? u.release : "unknown";
  m.compiler = compiler_name();
  m.build_type = detail::kBuildType;
  m.revision = detail::kGitRevision;
  return m;
}

std::vector<std::pair<std::string, std::string>> MachineInfo::fields() const {
  return {
      {"CPU", cpu_model},
      {"Logical CPUs", std::to_string(logical_cpus)},
      {"SIMD", cpu_flags},
      {"Memory", memory},
      {"OS", os},
      {"Kernel", kernel},
      {"Compiler", compiler},
      {"Build type", build_type},
      {"Revision", revision},
  };
}

}  // namespace myelin::perf
