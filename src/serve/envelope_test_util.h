// Helpers shared by the tests of the message front ends (MSC1 and RabbitMQ)
// with the shipped models: a model's example row, a one-row request
// envelope that owns its data, and a reply tensor's values as doubles.
// The including test defines MYELIN_MODELS_DIR.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/serve/client.h"
#include "myelin/serve/envelope.h"

#ifndef MYELIN_MODELS_DIR
#error "MYELIN_MODELS_DIR must name the shipped models/ directory"
#endif

namespace myelin::serve::testing {

// The first row of models/<model>.input.json.
inline std::vector<float> row_of(const std::string& model) {
  std::ifstream in(std::string(MYELIN_MODELS_DIR) + "/" + model + ".input.json");
  std::stringstream text;
  text << in.rdbuf();
  const auto doc = nlohmann::json::parse(text.str());
  return doc["X"][0].get<std::vector<float>>();
}

// A request envelope for one row of input "X"; the envelope views `x`.
struct Request {
  std::vector<float> x;
  RequestEnvelope env;
  Request(std::string_view model, std::vector<float> values, std::uint64_t id)
      : x(std::move(values)) {
    env.id = id;
    env.model = model;
    env.inputs = {{"X", TensorView{DType::kF32, Shape{1, static_cast<std::int64_t>(x.size())},
                                   std::as_bytes(std::span(x))}}};
  }
  Request(const Request&) = delete;  // env views x
  Request& operator=(const Request&) = delete;
  Request(Request&& other) noexcept : x(std::move(other.x)), env(std::move(other.env)) {
    // A moved vector keeps its buffer, but say so rather than rely on it.
    env.inputs[0].tensor.data = std::as_bytes(std::span(x));
  }
};

// Output values as doubles, whatever their dtype (f32 or i64).
inline std::vector<double> values(const ReplyTensor& t) {
  std::vector<double> out;
  const std::size_t n = t.data.size() / dtype_size(t.dtype);
  for (std::size_t i = 0; i < n; ++i) {
    const std::byte* p = t.data.data() + i * dtype_size(t.dtype);
    if (t.dtype == DType::kF32) {
      float v;
      std::memcpy(&v, p, 4);
      out.push_back(v);
    } else if (t.dtype == DType::kI64) {
      std::int64_t v;
      std::memcpy(&v, p, 8);
      out.push_back(static_cast<double>(v));
    } else {
      ADD_FAILURE() << "unexpected dtype " << to_string(t.dtype);
    }
  }
  return out;
}

}  // namespace myelin::serve::testing
