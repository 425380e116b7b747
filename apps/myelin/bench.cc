// `myelin bench <part> [args]`: runs the benchmark executable, myelin-bench,
// found next to this binary, with the arguments after `bench`.
//
// The benchmarks link every peer they measure against (libuv, asio, XGBoost,
// the TLS peer, ...); keeping them in their own executable keeps those
// libraries out of the `myelin` binary that users deploy.
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "apps/myelin/commands.h"

namespace myelin::cli {
namespace {

constexpr const char* kBenchBinary = "myelin-bench";

// The directory of the running executable, or "" when /proc cannot say.
std::string own_directory() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return {};
  std::string path(buf, static_cast<std::size_t>(n));
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string{} : path.substr(0, slash);
}

// Replaces this process with myelin-bench; returns an exit code only when
// that fails.
int exec_bench(const std::vector<std::string>& args) {
  const std::string dir = own_directory();
  if (dir.empty()) {
    std::fprintf(stderr, "myelin bench: cannot locate this executable (/proc/self/exe): %s\n",
                 std::strerror(errno));
    return kExitFailure;
  }
  std::string bin = dir + "/" + kBenchBinary;
  std::vector<char*> argv;
  argv.reserve(args.size() + 2);
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;  // execv wants mutable strings
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execv(bin.c_str(), argv.data());
  const int e = errno;
  if (e == ENOENT) {
    std::fprintf(stderr,
                 "myelin bench: %s not found; the benchmarks are built beside myelin "
                 "(cmake --build --preset release --target myelin-bench)\n",
                 bin.c_str());
  } else {
    std::fprintf(stderr, "myelin bench: cannot run %s: %s\n", bin.c_str(), std::strerror(e));
  }
  return kExitFailure;
}

}  // namespace

void register_bench(CLI::App& app, Context& ctx) {
  CLI::App* bench = app.add_subcommand(
      "bench", "Measure a part of myelin beside its peers and write reports/<part>.md");
  // Every argument after `bench`, --help included, is myelin-bench's.
  bench->set_help_flag();
  bench->prefix_command();
  bench->allow_extras();
  bench->callback([bench, &ctx] { ctx.exit_code = exec_bench(bench->remaining()); });
}

}  // namespace myelin::cli
