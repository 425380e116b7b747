// `myelin compile model.onnx -o model.mylm`: ONNX → the .mylm plan
// (docs/model-format.md), verified by loading it back before writing.
#include <cstdio>
#include <filesystem>
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

// Reads the ONNX file, refusing before any read what could not be a model:
// a device, a pipe or a directory (/dev/zero would grow until bad_alloc), or
// a file over the 2 GiB protobuf limit `predict` applies.
Result<std::vector<char>> read_model(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec) return io_error(path + ": " + ec.message());
  if (!std::filesystem::is_regular_file(status))
    return invalid_argument(path + ": not a regular file");
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return io_error(path + ": " + ec.message());
  if (size > model::kMaxOnnxFileBytes)
    return out_of_range(path + ": " + std::to_string(size) +
                        " bytes; ONNX files larger than 2 GiB are not supported");
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path + ": cannot read");
  std::vector<char> bytes(static_cast<std::size_t>(size));
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<std::uintmax_t>(in.gcount()) != size)
    return io_error(path + ": short read (the file changed while reading)");
  return bytes;
}

int run_compile(const CompileFlags& f) {
  auto read = read_model(f.input);
  if (!read) {
    std::fprintf(stderr, "myelin compile: %s\n", read.error().to_string().c_str());
    return read.error().code() == ErrorCode::kIoError ? kExitFailure : kExitUsage;
  }
  const std::vector<char>& bytes = *read;
  const std::span<const std::byte> view(reinterpret_cast<const std::byte*>(bytes.data()),
                                        bytes.size());
  auto image = model::Model::compile_onnx(view, f.input);
  if (!image) {
    std::fprintf(stderr, "myelin compile: %s\n", image.error().to_string().c_str());
    return kExitUsage;
  }
  // Bind the result before writing: a file we write must load. A refusal
  // here (over a memory budget, say) is about the input model: name it.
  if (auto check = model::Model::load(*image, {}, f.input); !check) {
    std::fprintf(stderr, "myelin compile: %s\n", check.error().to_string().c_str());
    return kExitUsage;
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
