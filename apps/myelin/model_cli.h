// Helpers shared by the model subcommands (predict, inspect, compile).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/status.h"
#include "myelin/model/model.h"

namespace myelin::cli {

// "auto", "scalar", "avx2", "avx512".
std::optional<model::Isa> parse_isa(std::string_view name);

// `name` with every byte that is not part of well-formed UTF-8 written as
// the four characters \xNN, so that it can be a JSON string (model names
// come from untrusted files).
std::string escape_name(std::string_view name);

// Flattens a nested JSON array of numbers into `out`; `dims` gets the shape
// (from the first element at each level; a ragged array is an error).
Status flatten_json(const nlohmann::json& j, std::vector<std::int64_t>& dims, std::size_t depth,
                    std::vector<double>& out);

}  // namespace myelin::cli
