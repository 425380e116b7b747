// `myelin infer --url http[s]://HOST:PORT --model NAME [--input FILE]`: a
// client of `myelin serve` (or any Open Inference Protocol server); https
// takes --cacert FILE (else the system's CAs) or --insecure.
//
// Input: the JSON `myelin predict` reads ({"X": [[...]]} keyed by input name,
// or a bare nested array for the model's only input, whose name is then
// read from the model's metadata). Output: the same JSON `myelin predict`
// prints, one entry per output. Exit 1 when the server answers an error (its
// message is printed), 2 for bad flags or input.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/myelin/commands.h"
#include "apps/myelin/model_cli.h"
#include "myelin/serve/http_client.h"

namespace myelin::cli {
namespace {

struct InferFlags {
  std::string url = "http://127.0.0.1:8000";
  std::string model;
  std::string version;
  std::string input = "-";
  std::string datatype = "FP32";
  int timeout_ms = 30000;
  std::string cacert;
  bool insecure = false;
};

int fail(int code, const std::string& msg) {
  std::fprintf(stderr, "myelin infer: %s\n", msg.c_str());
  return code;
}

int run_infer(const InferFlags& f) {
  std::string text;
  if (f.input == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(f.input);
    if (!in) return fail(kExitUsage, "--input: cannot read " + f.input);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return fail(kExitUsage, "input is not valid JSON");
  const Nanos timeout = std::chrono::milliseconds(f.timeout_ms);
  net::TlsClientOptions tls;
  tls.ca_file = f.cacert;
  tls.insecure = f.insecure;
  auto client = serve::HttpClient::connect(f.url, timeout, tls);
  if (!client)
    return fail(client.error().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailure,
                client.error().to_string());
  const std::string base =
      "/v2/models/" + f.model + (f.version.empty() ? "" : "/versions/" + f.version);

  nlohmann::json inputs = nlohmann::json::object();
  if (doc.is_object()) {
    inputs = doc;
  } else {  // a bare array: the model's only input
    auto meta = (*client)->request("GET", base, "", {}, timeout);
    if (!meta) return fail(kExitFailure, meta.error().to_string());
    const auto m = nlohmann::json::parse(meta->body, nullptr, false);
    if (meta->status != 200 || m.is_discarded()) {
      return fail(kExitFailure,
                  "GET " + base + ": HTTP " + std::to_string(meta->status) + " " + meta->body);
    }
    if (!m.contains("inputs") || m["inputs"].size() != 1) {
      return fail(kExitUsage, "the model has several inputs: pass an object keyed by name");
    }
    inputs[m["inputs"][0]["name"].get<std::string>()] = doc;
  }
  nlohmann::json req = {{"inputs", nlohmann::json::array()}};
  for (auto it = inputs.begin(); it != inputs.end(); ++it) {
    std::vector<std::int64_t> dims;
    std::vector<double> values;
    if (Status s = flatten_json(it.value(), dims, 0, values); !s.ok()) {
      return fail(kExitUsage, "input '" + it.key() + "': " + std::string(s.message()));
    }
    req["inputs"].push_back(
        {{"name", it.key()}, {"shape", dims}, {"datatype", f.datatype}, {"data", values}});
  }
  auto reply = (*client)->request("POST", base + "/infer", req.dump(),
                                  {{"Content-Type", "application/json"}}, timeout);
  if (!reply) return fail(kExitFailure, reply.error().to_string());
  const auto answer = nlohmann::json::parse(reply->body, nullptr, false);
  if (reply->status != 200) {
    const std::string msg = !answer.is_discarded() && answer.contains("error")
                                ? answer["error"].get<std::string>()
                                : reply->body;
    return fail(kExitFailure, "HTTP " + std::to_string(reply->status) + ": " + msg);
  }
  if (answer.is_discarded() || !answer.contains("outputs")) {
    return fail(kExitFailure, "the server's answer is not an inference response: " + reply->body);
  }
  nlohmann::json out = nlohmann::json::object();
  for (const auto& o : answer["outputs"]) {
    const std::string dt = o.value("datatype", "");
    out[o["name"].get<std::string>()] = {{"dtype", dt == "INT64"  ? "i64"
                                                   : dt == "FP32" ? "f32"
                                                                  : dt},
                                         {"shape", o["shape"]},
                                         {"data", o["data"]}};
  }
  std::printf("%s\n", out.dump().c_str());
  return kExitOk;
}

}  // namespace

void register_infer(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<InferFlags>();
  CLI::App* cmd = app.add_subcommand("infer", "Ask a running `myelin serve` for a prediction");
  cmd->add_option("--url", f->url, "Server: http://HOST:PORT or https://HOST:PORT")
      ->capture_default_str();
  cmd->add_option("--cacert", f->cacert,
                  "https: PEM CA certificates to trust (default: the system's)");
  cmd->add_flag("--insecure", f->insecure,
                "https: skip the certificate and name check (testing only)");
  cmd->add_option("--model", f->model, "Model name")->required();
  cmd->add_option("--model-version", f->version, "Model version (default: the served one)");
  cmd->add_option("--input", f->input, "JSON file with the inputs ('-': stdin)")
      ->capture_default_str();
  cmd->add_option("--datatype", f->datatype, "OIP datatype of the inputs")
      ->check(CLI::IsMember({"FP32", "FP64", "INT32", "INT64"}))
      ->capture_default_str();
  cmd->add_option("--timeout-ms", f->timeout_ms, "Connect and answer timeout")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  cmd->callback([f, &ctx] { ctx.exit_code = run_infer(*f); });
}

}  // namespace myelin::cli
