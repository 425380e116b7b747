// Structured log lines: one JSON object per event, with a UTC timestamp,
// the level and the event name first.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace myelin::serve::detail {

std::string log_line(std::string_view level, std::string_view event, const nlohmann::json& fields);

}  // namespace myelin::serve::detail
