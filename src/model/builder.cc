#include "src/model/builder.h"

#include <cstring>

namespace myelin::model::detail {

PlanBuilder::PlanBuilder() { data_.resize(sizeof(FileHeader)); }

void PlanBuilder::pad_to(std::size_t align) {
  data_.resize((data_.size() + align - 1) / align * align);
}

Ref PlanBuilder::add_bytes(const void* data, std::size_t len) {
  pad_to(kAlign);
  Ref ref{data_.size(), len};
  data_.resize(data_.size() + len);
  if (len != 0) std::memcpy(data_.data() + ref.off, data, len);
  return ref;
}

std::uint32_t PlanBuilder::add_value(std::string_view name, DType dtype, DType declared,
                                     ValueKind kind, bool batched,
                                     std::span<const std::int64_t> dims, Ref data) {
  ValueRec v{};
  v.name = add_bytes(name.data(), name.size());
  v.data = data;
  v.dtype = static_cast<std::uint8_t>(dtype);
  v.declared_dtype = static_cast<std::uint8_t>(declared);
  v.kind = static_cast<std::uint8_t>(kind);
  v.rank = static_cast<std::uint8_t>(dims.size());
  v.batched = batched ? 1 : 0;
  for (std::size_t i = 0; i < dims.size() && i < kMaxRank; ++i) v.dims[i] = dims[i];
  if (batched && !dims.empty()) v.dims[0] = -1;
  values_.push_back(v);
  return static_cast<std::uint32_t>(values_.size() - 1);
}

void PlanBuilder::add_step(OpKind op, std::string_view name, std::span<const std::uint32_t> inputs,
                           std::span<const std::uint32_t> outputs, Ref params) {
  StepRec s{};
  s.op = static_cast<std::uint32_t>(op);
  s.num_inputs = static_cast<std::uint32_t>(inputs.size());
  s.num_outputs = static_cast<std::uint32_t>(outputs.size());
  s.name = add_bytes(name.data(), name.size());
  std::vector<std::uint32_t> ids(inputs.begin(), inputs.end());
  ids.insert(ids.end(), outputs.begin(), outputs.end());
  s.ids = add_array<std::uint32_t>(ids);
  s.params = params;
  steps_.push_back(s);
}

void PlanBuilder::set_io(std::vector<std::uint32_t> inputs, std::vector<std::uint32_t> outputs) {
  inputs_ = std::move(inputs);
  outputs_ = std::move(outputs);
}

std::vector<std::byte> PlanBuilder::finish() {
  FileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kFormatVersion;
  h.header_size = sizeof(FileHeader);
  h.num_values = static_cast<std::uint32_t>(values_.size());
  h.num_inputs = static_cast<std::uint32_t>(inputs_.size());
  h.num_outputs = static_cast<std::uint32_t>(outputs_.size());
  h.num_steps = static_cast<std::uint32_t>(steps_.size());
  h.values = add_array<ValueRec>(values_);
  std::vector<std::uint32_t> io = inputs_;
  io.insert(io.end(), outputs_.begin(), outputs_.end());
  h.io = add_array<std::uint32_t>(io);
  h.steps = add_array<StepRec>(steps_);
  pad_to(kAlign);
  h.file_size = data_.size();
  h.checksum = crc32c(std::span<const std::byte>(data_).subspan(sizeof(FileHeader)));
  std::memcpy(data_.data(), &h, sizeof(h));
  return std::move(data_);
}

}  // namespace myelin::model::detail
