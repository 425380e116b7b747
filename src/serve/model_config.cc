// config.toml of one model in a repository (docs/serving.md, "Model repository").
#include <toml++/toml.h>

#include <string>

#include "myelin/serve/model_repository.h"

namespace myelin::serve {
namespace {

// An integer value of `key` in [lo, hi]; the message names file, line and key.
Result<std::int64_t> integer(const toml::node& node, std::string_view origin, std::string_view key,
                             std::int64_t lo, std::int64_t hi) {
  const auto where = std::string(origin) + ":" + std::to_string(node.source().begin.line) + ": '" +
                     std::string(key) + "'";
  const auto v = node.value_exact<std::int64_t>();
  if (!v) return invalid_argument(where + ": expected an integer");
  if (*v < lo || *v > hi) {
    return out_of_range(where + ": " + std::to_string(*v) + " is outside [" + std::to_string(lo) +
                        ", " + std::to_string(hi) + "]");
  }
  return *v;
}

}  // namespace

Result<ModelConfig> parse_model_config(std::string_view text, std::string_view origin,
                                       const ModelConfig& defaults) {
  toml::table doc;
  try {
    doc = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return parse_error(std::string(origin) + ":" + std::to_string(where.line) + ":" +
                       std::to_string(where.column) + ": " + std::string(e.description()));
  }
  ModelConfig c = defaults;
  for (const auto& [key, node] : doc) {
    const std::string_view k = key.str();
    if (k == "max_batch_size") {
      MYELIN_ASSIGN_OR_RETURN(auto v, integer(node, origin, k, 1, 65536));
      c.max_batch = static_cast<std::size_t>(v);
    } else if (k == "max_queue_delay_us") {
      MYELIN_ASSIGN_OR_RETURN(auto v, integer(node, origin, k, 0, 60'000'000));
      c.max_delay = std::chrono::microseconds(v);
    } else if (k == "max_queue_size") {
      MYELIN_ASSIGN_OR_RETURN(auto v, integer(node, origin, k, 1, 1'000'000));
      c.max_queue = static_cast<std::size_t>(v);
    } else if (k == "default_timeout_ms") {
      MYELIN_ASSIGN_OR_RETURN(auto v, integer(node, origin, k, 0, 3'600'000));
      c.default_timeout = std::chrono::milliseconds(v);
    } else if (k == "workers") {
      MYELIN_ASSIGN_OR_RETURN(auto v, integer(node, origin, k, 1, 256));
      c.workers = static_cast<std::size_t>(v);
    } else if (k == "inline_max_compute_us") {
      MYELIN_ASSIGN_OR_RETURN(auto v, integer(node, origin, k, 0, 1'000'000));
      c.inline_max_compute = std::chrono::microseconds(v);
    } else if (k == "max_model_mb") {
      MYELIN_ASSIGN_OR_RETURN(auto v, integer(node, origin, k, 1, std::int64_t{1} << 30));
      c.max_model_mb = static_cast<std::uint64_t>(v);
    } else if (k == "max_request_mb") {
      MYELIN_ASSIGN_OR_RETURN(auto v, integer(node, origin, k, 1, std::int64_t{1} << 30));
      c.max_request_mb = static_cast<std::uint64_t>(v);
    } else {
      return invalid_argument(std::string(origin) + ":" + std::to_string(node.source().begin.line) +
                              ": unknown key '" + std::string(k) +
                              "' (known: max_batch_size, max_queue_delay_us, max_queue_size, "
                              "default_timeout_ms, workers, inline_max_compute_us, max_model_mb, "
                              "max_request_mb)");
    }
  }
  return c;
}

}  // namespace myelin::serve
