// Fuzzes the tensor framing decoder: any input either fails with an error or
// decodes to tensors that re-encode to exactly the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "myelin/secure/tensor_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace myelin::secure;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  std::vector<NamedTensor> tensors;
  if (!decode_tensors(in, tensors).ok()) return 0;
  auto again = encode_tensors(tensors);
  if (!again || again->size() != size ||
      (size != 0 && std::memcmp(again->data(), data, size) != 0)) {
    std::abort();  // decode accepted something encode would not produce
  }
  return 0;
}
