// Tensor framing: how tensors travel inside secure-channel messages
// (docs/secure-channel.md section 8).
//
// A message is u32 n_tensors followed by the tensors back to back; each has a
// name, a dtype, a shape and little-endian element data. Encoding produces a
// list of parts (small framing headers in a caller-owned scratch buffer, and
// the tensors' own data spans) that Session::send_parts seals directly, so
// tensor bytes are copied once: into the ciphertext. Decoding validates every
// size and returns views into the message bytes (no copy), which live as long
// as those bytes. The views' data may be unaligned: copy before reading
// elements through TensorView::as<T>() unless data() is suitably aligned.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/base/tensor.h"

namespace myelin::secure {

inline constexpr std::size_t kMaxTensorName = 1024;

struct NamedTensor {
  std::string_view name;
  TensorView tensor;
};

// Fills `parts` with the message for `tensors`. `scratch` holds the framing
// headers and is reused between calls (no allocation once it has grown);
// `parts` points into it and into the tensors' data, so keep all three alive
// until the message is sent.
Status frame_tensors(std::span<const NamedTensor> tensors, std::vector<std::byte>& scratch,
                     std::vector<std::span<const std::byte>>& parts);

// The whole message as one contiguous buffer (tests, simple callers).
Result<std::vector<std::byte>> encode_tensors(std::span<const NamedTensor> tensors);

// Decodes and validates `message`, replacing the contents of `out`; the
// views point into `message`. Errors name the tensor index and the field.
Status decode_tensors(std::span<const std::byte> message, std::vector<NamedTensor>& out);

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF. The rule for names in the tensor framing and the envelope.
bool valid_utf8(std::span<const std::byte> bytes) noexcept;

}  // namespace myelin::secure
