// Helpers shared by the model subcommands (predict, inspect, compile).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "myelin/model/model.h"

namespace myelin::cli {

// "auto", "scalar", "avx2", "avx512".
std::optional<model::Isa> parse_isa(std::string_view name);

}  // namespace myelin::cli
