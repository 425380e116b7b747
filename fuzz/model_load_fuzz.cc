// Fuzzes Model::load on arbitrary bytes: the ONNX importer (protobuf +
// graph compilation) and the .mylm validator. Inputs starting with the .mylm
// magic get their checksum fixed up, so the fuzzer reaches the table and op
// validation behind it instead of stopping at the CRC. Whatever loads is run
// once on zeros: a model that loads must predict without crashing.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "myelin/model/model.h"
#include "src/model/format.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace myelin;
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data),
                               reinterpret_cast<const std::byte*>(data) + size);
  if (size >= sizeof(model::detail::FileHeader) &&
      std::memcmp(data, model::detail::kMagic, sizeof(model::detail::kMagic)) == 0) {
    model::detail::FileHeader h;
    std::memcpy(&h, bytes.data(), sizeof(h));
    h.file_size = size;
    h.checksum = model::detail::crc32c(std::span<const std::byte>(bytes).subspan(sizeof(h)));
    std::memcpy(bytes.data(), &h, sizeof(h));
  }
  auto m = model::Model::load(bytes, {}, "fuzz");
  if (!m) return 0;
  std::vector<std::vector<float>> storage;
  std::vector<TensorView> inputs;
  for (const auto& info : m->inputs()) {
    std::vector<std::int64_t> dims = info.dims;
    std::size_t n = 1;
    for (auto& d : dims) {
      if (d < 0) d = 2;
      n *= static_cast<std::size_t>(d);
    }
    if (n > (1u << 20)) return 0;
    storage.emplace_back(n, 0.0f);
    auto shape = Shape::from(dims);
    if (!shape) return 0;
    inputs.push_back(TensorView::of<float>(std::span<const float>(storage.back()), *shape));
  }
  (void)m->predict(inputs);
  return 0;
}
