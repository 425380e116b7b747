// myelin: the command-line entry point. Wires the subcommands (one file each)
// and turns parse errors into a one-line message and exit code 2.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "apps/myelin/commands.h"

#ifndef MYELIN_VERSION
#define MYELIN_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{
      "myelin: a runtime that moves ML inference requests fast and safely, "
      "and measures how fast."};
  app.set_version_flag("--version", "myelin " MYELIN_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);

  myelin::cli::Context ctx;
  myelin::cli::register_estimate(app, ctx);
  myelin::cli::register_bench(app, ctx);
  myelin::cli::register_predict(app, ctx);
  myelin::cli::register_inspect(app, ctx);
  myelin::cli::register_compile(app, ctx);
  myelin::cli::register_serve(app, ctx);
  myelin::cli::register_infer(app, ctx);
  myelin::cli::register_attest(app, ctx);
  myelin::cli::register_faultproxy(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return myelin::cli::kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return myelin::cli::kExitOk;
  } catch (const CLI::CallForVersion& e) {
    std::puts(e.what());
    return myelin::cli::kExitOk;
  } catch (const CLI::ParseError& e) {
    // A subcommand's own --help surfaces as CallForHelp above; everything
    // else here is a usage error: one line, exit 2.
    std::fprintf(stderr, "myelin: error: %s (see --help)\n", e.what());
    return myelin::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "myelin: internal error: %s\n", e.what());
    return myelin::cli::kExitFailure;
  }
  return ctx.exit_code;
}
