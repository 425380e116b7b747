// Subcommand registration for the `myelin` CLI. Each subcommand lives in its
// own file and adds itself to the app here; main.cc only wires them.
//
// Exit codes: 0 success, 1 the command ran and failed (I/O, a benchmark that
// could not run), 2 bad usage or a bad value (with a one-line error).
#pragma once

#include <CLI/CLI.hpp>

namespace myelin::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Where a subcommand's callback leaves its exit code.
struct Context {
  int exit_code = kExitOk;
};

void register_estimate(CLI::App& app, Context& ctx);
void register_bench(CLI::App& app, Context& ctx);
void register_predict(CLI::App& app, Context& ctx);
void register_inspect(CLI::App& app, Context& ctx);
void register_compile(CLI::App& app, Context& ctx);
void register_serve(CLI::App& app, Context& ctx);
void register_infer(CLI::App& app, Context& ctx);
void register_attest(CLI::App& app, Context& ctx);
void register_faultproxy(CLI::App& app, Context& ctx);

}  // namespace myelin::cli
