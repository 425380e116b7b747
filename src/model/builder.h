// PlanBuilder: writes a .mylm image (src/model/format.h) in memory.
//
// The ONNX importer adds values, arrays and steps in graph order; finish()
// lays out the tables, fills the header and the checksum. The result is
// what Model::load binds and what `myelin compile` writes to disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "myelin/base/tensor.h"
#include "src/model/format.h"

namespace myelin::model::detail {

class PlanBuilder {
 public:
  PlanBuilder();

  // Appends raw bytes at a 64-byte boundary; returns their reference.
  Ref add_bytes(const void* data, std::size_t len);
  template <typename T>
  Ref add_array(std::span<const T> items) {
    return add_bytes(items.data(), items.size_bytes());
  }
  template <typename P>
  Ref add_params(const P& params) {
    return add_bytes(&params, sizeof(P));
  }

  // Returns the new value's id. `dims[0]` is ignored (stored -1) when batched.
  std::uint32_t add_value(std::string_view name, DType dtype, DType declared, ValueKind kind,
                          bool batched, std::span<const std::int64_t> dims, Ref data = {});
  void add_step(OpKind op, std::string_view name, std::span<const std::uint32_t> inputs,
                std::span<const std::uint32_t> outputs, Ref params);
  void set_io(std::vector<std::uint32_t> inputs, std::vector<std::uint32_t> outputs);

  [[nodiscard]] std::size_t num_values() const noexcept { return values_.size(); }
  [[nodiscard]] const ValueRec& value(std::uint32_t id) const { return values_[id]; }

  std::vector<std::byte> finish();

 private:
  void pad_to(std::size_t align);
  std::vector<std::byte> data_;
  std::vector<ValueRec> values_;
  std::vector<StepRec> steps_;
  std::vector<std::uint32_t> inputs_, outputs_;
};

}  // namespace myelin::model::detail
