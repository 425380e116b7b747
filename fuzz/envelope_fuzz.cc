// Fuzzes the inference envelope decoders (docs/serving.md): any input either
// fails with an error or decodes to a request (or reply) that re-encodes to
// exactly the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "myelin/serve/envelope.h"

namespace {

void same_or_abort(const myelin::Result<std::vector<std::byte>>& again, const std::uint8_t* data,
                   std::size_t size) {
  if (!again || again->size() != size ||
      (size != 0 && std::memcmp(again->data(), data, size) != 0)) {
    std::abort();  // decode accepted something encode would not produce
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace myelin::serve;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  RequestEnvelope request;
  if (decode_request(in, request).ok()) {
    same_or_abort(encode_request(request), data, size);
    if (request_id_of(in) != request.id) std::abort();
  }
  ReplyEnvelope reply;
  if (decode_reply(in, reply).ok()) same_or_abort(encode_reply(reply), data, size);
  return 0;
}
