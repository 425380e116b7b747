// `myelin inspect FILE`: what a model (ONNX or .mylm) computes — inputs,
// outputs, plan steps and their parameter sizes.
#include <cstdio>
#include <memory>
#include <string>

#include "apps/myelin/commands.h"
#include "apps/myelin/model_cli.h"
#include "myelin/model/model.h"

namespace myelin::cli {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

int run_inspect(const std::string& path) {
  auto m = model::Model::load(path);
  if (!m) {
    std::fprintf(stderr, "myelin inspect: %s\n", m.error().to_string().c_str());
    return m.error().code() == ErrorCode::kIoError ? kExitFailure : kExitUsage;
  }
  std::printf("model:   %s\nsource:  %s\nplan:    %zu bytes\nkernels: %s\n", path.c_str(),
              std::string(m->source()).c_str(), m->plan_bytes().size(),
              std::string(model::to_string(m->isa())).c_str());
  std::printf("inputs:\n");
  for (const auto& t : m->inputs())
    std::printf("  %s: %s\n", t.name.c_str(), t.to_string().c_str());
  std::printf("outputs:\n");
  for (const auto& t : m->outputs())
    std::printf("  %s: %s\n", t.name.c_str(), t.to_string().c_str());
  const auto steps = m->steps();
  std::printf("steps (%zu):\n", steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto& s = steps[i];
    std::printf("  %2zu %-16s %-24s (%s) -> (%s)  %zu param bytes\n", i, s.op.c_str(),
                s.name.c_str(), join(s.inputs).c_str(), join(s.outputs).c_str(), s.param_bytes);
  }
  return kExitOk;
}

}  // namespace

std::optional<model::Isa> parse_isa(std::string_view name) {
  if (name == "auto") return model::Isa::kAuto;
  if (name == "scalar") return model::Isa::kScalar;
  if (name == "avx2") return model::Isa::kAvx2;
  if (name == "avx512") return model::Isa::kAvx512;
  return std::nullopt;
}

void register_inspect(CLI::App& app, Context& ctx) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd =
      app.add_subcommand("inspect", "Show a model's inputs, outputs, plan steps and sizes");
  cmd->add_option("model", *path, "ONNX or .mylm file")->required();
  cmd->callback([path, &ctx] { ctx.exit_code = run_inspect(*path); });
}

}  // namespace myelin::cli
