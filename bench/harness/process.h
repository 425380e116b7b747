// Running a peer (a Python or Node script, a helper executable) from a bench
// part: quoting for /bin/sh and a bounded run that captures its output.
//
// run_command() never waits without bound: past the timeout the whole
// process group is killed (SIGKILL) and the result says so. Output is
// captured up to a cap so a runaway peer cannot exhaust memory. Call from
// any thread; it blocks the caller.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "myelin/base/result.h"

namespace myelin::bench::harness {

// `s` as one /bin/sh word: single-quoted, with embedded quotes escaped.
std::string shell_quote(std::string_view s);

struct CommandResult {
  int exit_code = -1;      // the command's status; 128 + signal when killed by one
  bool timed_out = false;  // killed at the deadline
  std::string output;      // stdout and stderr, interleaved, up to max_output bytes
  bool truncated = false;  // output went past max_output
};

struct CommandOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  std::size_t max_output = std::size_t{64} << 20;
};

// Runs `command` with /bin/sh -c in its own process group, stdin from
// /dev/null. An error only when it could not be started; a command that
// fails or times out is a CommandResult saying so.
Result<CommandResult> run_command(const std::string& command, const CommandOptions& options = {});

// The directory holding the running executable (from /proc/self/exe).
Result<std::string> executable_directory();

}  // namespace myelin::bench::harness
