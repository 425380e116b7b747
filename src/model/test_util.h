// Helpers shared by the model tests.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "myelin/model/model.h"

namespace myelin::model::testing {

inline std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline TensorView view_of(const std::vector<float>& v, Shape shape) {
  return TensorView::of<float>(std::span<const float>(v), shape);
}

}  // namespace myelin::model::testing
