// `myelin infer --url http[s]://HOST:PORT --model NAME [--input FILE]`: a
// client of `myelin serve` (or any Open Inference Protocol server); https
// takes --cacert FILE (else the system's CAs) or --insecure. With
// `--secure HOST:PORT|unix:PATH --attestation snp|tdx|mock|none` it uses the
// MSC1 front end instead (the inference envelope, docs/serving.md); snp and
// tdx require the server's TEE evidence and verify it by `--policy FILE`
// with the collateral of `--collateral DIR` (docs/attestation.md). With
// `--amqp amqp://...` it uses the RabbitMQ front end (the same envelope,
// through the model's queue; the reply on direct reply-to).
//
// `--concurrency N --requests M` turn it into a load generator: N
// connections send M requests in all (each connection one at a time), and
// it prints the throughput and the latency percentiles of the sorted
// per-request samples instead of the answer.
//
// Input: the JSON `myelin predict` reads ({"X": [[...]]} keyed by input name,
// or a bare nested array for the model's only input, whose name is then
// read from the model's metadata). Output: the same JSON `myelin predict`
// prints, one entry per output. Exit 1 when the server answers an error (its
// message is printed), 2 for bad flags or input.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "apps/myelin/commands.h"
#include "apps/myelin/model_cli.h"
#include "myelin/serve/amqp_client.h"
#include "myelin/serve/client.h"
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
  std::string secure;  // HOST:PORT or unix:PATH: the MSC1 front end
  std::string amqp;    // amqp://...: the RabbitMQ front end
  std::string queue_prefix = std::string(serve::kAmqpQueuePrefix);
  std::string attestation;
  std::string policy;      // with attestation snp|tdx
  std::string collateral;  // overrides the policy's collateral directory
  int concurrency = 0;     // 0: one request, print its answer
  int requests = 0;
  std::string cacert;
  bool insecure = false;
};

int fail(int code, const std::string& msg) {
  std::fprintf(stderr, "myelin infer: %s\n", msg.c_str());
  return code;
}

// One request on one connection of a load run; false when it failed (the
// first failure's message goes to `error`).
using Shot = std::function<bool(std::string& error)>;
using Connector = std::function<Result<Shot>()>;

// N connections, M requests in all; prints throughput and latency
// percentiles from the sorted samples.
int load(const InferFlags& f, const Connector& connect) {
  const int n = f.concurrency;
  const int m = f.requests;
  std::vector<std::vector<double>> samples(static_cast<std::size_t>(n));
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::string> errors(static_cast<std::size_t>(n));
  std::vector<Shot> shots;
  for (int i = 0; i < n; ++i) {
    auto shot = connect();
    if (!shot)
      return fail(kExitFailure,
                  "connection " + std::to_string(i) + ": " + shot.error().to_string());
    shots.push_back(std::move(*shot));
  }
  const MonoTime start = mono_now();
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto& mine = samples[static_cast<std::size_t>(i)];
      while (next.fetch_add(1) < m) {
        const MonoTime t0 = mono_now();
        if (!shots[static_cast<std::size_t>(i)](errors[static_cast<std::size_t>(i)])) {
          failures.fetch_add(1);
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::micro>(mono_now() - t0).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(mono_now() - start).count();
  std::vector<double> all;
  for (const auto& v : samples) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    if (all.empty()) return 0.0;
    const auto k = static_cast<std::size_t>(p / 100.0 * static_cast<double>(all.size() - 1) + 0.5);
    return all[std::min(k, all.size() - 1)];
  };
  std::printf("requests %d, concurrency %d, ok %zu, failed %d, %.3f s\n", m, n, all.size(),
              failures.load(), seconds);
  std::printf("throughput %.1f req/s\n", static_cast<double>(all.size()) / seconds);
  std::printf("latency us: p50 %.1f, p90 %.1f, p99 %.1f, p99.9 %.1f, max %.1f\n", pct(50), pct(90),
              pct(99), pct(99.9), all.empty() ? 0.0 : all.back());
  for (const auto& e : errors) {
    if (!e.empty()) return fail(kExitFailure, "first failure: " + e);
  }
  return kExitOk;
}

// The inputs as tensors of `datatype`, for the secure path.
struct SecureInputs {
  std::vector<std::string> names;
  std::vector<std::vector<std::byte>> data;
  serve::RequestEnvelope env;
};

Result<SecureInputs> secure_inputs(const nlohmann::json& inputs, const InferFlags& f) {
  SecureInputs in;
  const DType dtype = f.datatype == "FP64"    ? DType::kF64
                      : f.datatype == "INT32" ? DType::kI32
                      : f.datatype == "INT64" ? DType::kI64
                                              : DType::kF32;
  std::vector<Shape> shapes;
  for (auto it = inputs.begin(); it != inputs.end(); ++it) {
    std::vector<std::int64_t> dims;
    std::vector<double> values;
    if (Status s = flatten_json(it.value(), dims, 0, values); !s.ok()) {
      return invalid_argument("input '" + it.key() + "': " + std::string(s.message()));
    }
    MYELIN_ASSIGN_OR_RETURN(Shape shape, Shape::from(dims));
    std::vector<std::byte> bytes(values.size() * dtype_size(dtype));
    for (std::size_t i = 0; i < values.size(); ++i) {
      std::byte* p = bytes.data() + i * dtype_size(dtype);
      if (dtype == DType::kF32) {
        const auto v = static_cast<float>(values[i]);
        std::memcpy(p, &v, sizeof(v));
      } else if (dtype == DType::kF64) {
        std::memcpy(p, &values[i], sizeof(double));
      } else if (dtype == DType::kI32) {
        const auto v = static_cast<std::int32_t>(values[i]);
        std::memcpy(p, &v, sizeof(v));
      } else {
        const auto v = static_cast<std::int64_t>(values[i]);
        std::memcpy(p, &v, sizeof(v));
      }
    }
    in.names.push_back(it.key());
    in.data.push_back(std::move(bytes));
    shapes.push_back(shape);
  }
  in.env.model = f.model;
  in.env.version = f.version;
  in.env.id = 1;
  for (std::size_t i = 0; i < in.names.size(); ++i) {
    in.env.inputs.push_back({in.names[i], TensorView{dtype, shapes[i], in.data[i]}});
  }
  return in;
}

nlohmann::json json_of(const serve::ReplyTensor& t) {
  nlohmann::json data = nlohmann::json::array();
  const std::size_t size = dtype_size(t.dtype);
  for (std::size_t i = 0; size != 0 && i + size <= t.data.size(); i += size) {
    const std::byte* p = t.data.data() + i;
    switch (t.dtype) {
      case DType::kF32: {
        float v;
        std::memcpy(&v, p, sizeof(v));
        data.push_back(v);
        break;
      }
      case DType::kF64: {
        double v;
        std::memcpy(&v, p, sizeof(v));
        data.push_back(v);
        break;
      }
      case DType::kI64: {
        std::int64_t v;
        std::memcpy(&v, p, sizeof(v));
        data.push_back(v);
        break;
      }
      case DType::kI32: {
        std::int32_t v;
        std::memcpy(&v, p, sizeof(v));
        data.push_back(v);
        break;
      }
      default:
        data.push_back(nullptr);
    }
  }
  return {{"dtype", std::string(to_string(t.dtype))},
          {"shape", std::vector<std::int64_t>(t.shape.dims().begin(), t.shape.dims().end())},
          {"data", data}};
}

// One request of a load run on a message front end's client (SecureClient
// or AmqpClient): ok when the reply is; the first failure says why.
template <typename Client>
Shot envelope_shot(std::shared_ptr<Client> client, const serve::RequestEnvelope& env,
                   Nanos timeout) {
  return Shot([client = std::move(client), &env, timeout](std::string& error) {
    auto r = client->infer(env, timeout);
    if (r && r->code == serve::ReplyCode::kOk) return true;
    if (error.empty()) {
      error = r ? std::string(to_string(r->code)) + ": " + r->message : r.error().to_string();
    }
    return false;
  });
}

// A message front end's reply as `myelin predict` prints it; exit 1 for an
// error reply or none.
int print_reply(const Result<serve::InferReply>& reply) {
  if (!reply) return fail(kExitFailure, reply.error().to_string());
  if (reply->code != serve::ReplyCode::kOk) {
    return fail(kExitFailure, std::string(to_string(reply->code)) + ": " + reply->message);
  }
  nlohmann::json out = nlohmann::json::object();
  for (const auto& t : reply->outputs) out[t.name] = json_of(t);
  std::printf("%s\n", out.dump().c_str());
  return kExitOk;
}

int run_secure(const InferFlags& f, const nlohmann::json& doc) {
  if (!doc.is_object()) {
    return fail(kExitUsage, "with --secure, pass the inputs as an object keyed by input name");
  }
  serve::SecurityConfig sc;
  sc.kind = f.attestation;
  sc.policy_file = f.policy;
  sc.collateral_dir = f.collateral;
  auto security = serve::ChannelSecurity::create_initiator(sc);
  if (!security) {
    return fail(security.error().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailure,
                "--attestation " + f.attestation + ": " + security.error().to_string());
  }
  auto inputs = secure_inputs(doc, f);
  if (!inputs) return fail(kExitUsage, inputs.error().to_string());
  const Nanos timeout = std::chrono::milliseconds(f.timeout_ms);
  if (f.concurrency > 0) {
    const serve::RequestEnvelope& env = inputs->env;
    return load(f, [&]() -> Result<Shot> {
      MYELIN_ASSIGN_OR_RETURN(
          auto c, serve::SecureClient::connect(f.secure, (*security)->initiator(), timeout));
      return envelope_shot(std::shared_ptr<serve::SecureClient>(std::move(c)), env, timeout);
    });
  }
  auto client = serve::SecureClient::connect(f.secure, (*security)->initiator(), timeout);
  if (!client) {
    return fail(client.error().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailure,
                client.error().to_string());
  }
  const int code = print_reply((*client)->infer(inputs->env, timeout));
  (void)(*client)->close();
  return code;
}

// `--amqp URI`: the request through RabbitMQ to whichever worker consumes
// the model's queue; the reply on direct reply-to.
int run_amqp(const InferFlags& f, const nlohmann::json& doc) {
  if (!doc.is_object()) {
    return fail(kExitUsage, "with --amqp, pass the inputs as an object keyed by input name");
  }
  auto config = amqp::ConnectionConfig::from_uri(f.amqp);
  if (!config) return fail(kExitUsage, "--amqp: " + config.error().to_string());
  config->name = "myelin infer";
  auto inputs = secure_inputs(doc, f);
  if (!inputs) return fail(kExitUsage, inputs.error().to_string());
  const Nanos timeout = std::chrono::milliseconds(f.timeout_ms);
  if (f.concurrency > 0) {
    const serve::RequestEnvelope& env = inputs->env;
    return load(f, [&]() -> Result<Shot> {
      MYELIN_ASSIGN_OR_RETURN(auto c, serve::AmqpClient::connect(*config, f.queue_prefix));
      return envelope_shot(std::shared_ptr<serve::AmqpClient>(std::move(c)), env, timeout);
    });
  }
  auto client = serve::AmqpClient::connect(*config, f.queue_prefix);
  if (!client) return fail(kExitFailure, client.error().to_string());
  const int code = print_reply((*client)->infer(inputs->env, timeout));
  (void)(*client)->close();
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
  if ((f.concurrency > 0) != (f.requests > 0)) {
    return fail(kExitUsage, "--concurrency and --requests go together");
  }
  if (!f.secure.empty()) return run_secure(f, doc);
  if (!f.amqp.empty()) return run_amqp(f, doc);
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
  if (f.concurrency > 0) {
    const std::string body = req.dump();
    return load(f, [&]() -> Result<Shot> {
      MYELIN_ASSIGN_OR_RETURN(auto c, serve::HttpClient::connect(f.url, timeout, tls));
      std::shared_ptr<serve::HttpClient> http(std::move(c));
      return Shot([http, &body, &base, timeout](std::string& error) {
        auto r = http->request("POST", base + "/infer", body,
                               {{"Content-Type", "application/json"}}, timeout);
        if (r && r->status == 200) return true;
        if (error.empty()) {
          error = r ? "HTTP " + std::to_string(r->status) + " " + r->body : r.error().to_string();
        }
        return false;
      });
    });
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
  cmd->add_option("--secure", f->secure,
                  "Use the MSC1 secure front end at HOST:PORT or unix:PATH instead of --url");
  cmd->add_option("--attestation", f->attestation,
                  "With --secure: require snp or tdx evidence (with --policy), mock (tests) or "
                  "none")
      ->check(CLI::IsMember({"snp", "tdx", "mock", "none"}));
  cmd->add_option("--policy", f->policy,
                  "With --attestation snp|tdx: the attestation policy (TOML, docs/attestation.md)");
  cmd->add_option("--collateral", f->collateral,
                  "With --attestation snp|tdx: collateral directory (overrides the policy's)");
  cmd->add_option("--amqp", f->amqp,
                  "Send through RabbitMQ (amqp://USER:PASS@HOST:PORT/VHOST) to the workers of "
                  "`myelin serve --amqp` instead of --url");
  cmd->add_option("--amqp-queue-prefix", f->queue_prefix,
                  "With --amqp: queue of model M is PREFIX + M")
      ->capture_default_str();
  cmd->add_option("--concurrency", f->concurrency,
                  "Load generator: connections sending at once (with --requests)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--requests", f->requests, "Load generator: requests in all")
      ->check(CLI::Range(1, 100000000));
  cmd->callback([f, &ctx] {
    if (!f->secure.empty() && !f->amqp.empty()) {
      ctx.exit_code = fail(kExitUsage, "--secure and --amqp: choose one front end");
      return;
    }
    if (!f->secure.empty() && f->attestation.empty()) {
      ctx.exit_code = fail(kExitUsage, "--secure needs --attestation snp|tdx|mock|none");
      return;
    }
    const bool tee = f->attestation == "snp" || f->attestation == "tdx";
    if (tee && f->policy.empty()) {
      ctx.exit_code = fail(kExitUsage, "--attestation " + f->attestation + " needs --policy FILE");
      return;
    }
    if (!tee && (!f->policy.empty() || !f->collateral.empty())) {
      ctx.exit_code = fail(kExitUsage, "--policy/--collateral apply to --attestation snp|tdx");
      return;
    }
    ctx.exit_code = run_infer(*f);
  });
}

}  // namespace myelin::cli
