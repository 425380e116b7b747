// `myelin compile model.onnx -o model.mylm`: ONNX → the .mylm plan
// (docs/model-format.md), verified by loading it back before writing.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "apps/myelin/commands.h"
#include "myelin/model/model.h"
#include "myelin/perf/report.h"

namespace myelin::cli {
namespace {

struct CompileFlags {
  std::string input;
  std::string output;
};

int run_compile(const CompileFlags& f) {
  std::ifstream in(f.input, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "myelin compile: cannot read %s\n", f.input.c_str());
    return kExitFailure;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  const std::span<const std::byte> view(reinterpret_cast<const std::byte*>(bytes.data()),
                                        bytes.size());
  auto image = model::Model::compile_onnx(view, f.input);
  if (!image) {
    std::fprintf(stderr, "myelin compile: %s\n", image.error().to_string().c_str());
    return kExitUsage;
  }
  // Bind the result before writing: a file we write must load.
  if (auto check = model::Model::load(*image, {}, f.output); !check) {
    std::fprintf(stderr, "myelin compile: internal: %s\n", check.error().to_string().c_str());
    return kExitFailure;
  }
  const std::string_view text(reinterpret_cast<const char*>(image->data()), image->size());
  if (Status s = perf::write_file_atomic(f.output, text); !s.ok()) {
    std::fprintf(stderr, "myelin compile: %s\n", s.to_string().c_str());
    return kExitFailure;
  }
  std::fprintf(stderr, "myelin compile: wrote %s (%zu bytes, from %zu bytes of ONNX)\n",
               f.output.c_str(), image->size(), bytes.size());
  return kExitOk;
}

}  // namespace

void register_compile(CLI::App& app, Context& ctx) {
  auto flags = std::make_shared<CompileFlags>();
  CLI::App* cmd = app.add_subcommand(
      "compile", "Compile an ONNX model to myelin's .mylm plan (mmap-ready, checksummed)");
  cmd->add_option("model", flags->input, "ONNX model file")->required();
  cmd->add_option("-o,--output", flags->output, "Output .mylm file")->required();
  cmd->callback([flags, &ctx] { ctx.exit_code = run_compile(*flags); });
}

}  // namespace myelin::cli
