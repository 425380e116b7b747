// Fuzzes the AMQP 0-9-1 codec: the input is a stream of frames as a broker
// would send them. Every frame is parsed, method and header payloads are
// decoded and must survive decode(encode(x)) == x, and each channel's frames
// go through a ContentAssembler. The whole input is also tried as a bare
// method payload and content header payload. Any crash, sanitizer report or
// round-trip mismatch is a bug.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <span>
#include <vector>

#include "src/amqp/byte_writer.h"
#include "src/amqp/content_assembler.h"
#include "src/amqp/content_header.h"
#include "src/amqp/frame.h"
#include "src/amqp/method.h"

namespace {

using namespace myelin::amqp::wire;

void check_method(std::span<const std::byte> payload) {
  auto m = decode_method(payload);
  if (!m) return;
  // Through a frame, so the frame encoder and parser are checked too.
  std::vector<std::byte> buf;
  if (!append_method_frame(buf, 1, *m).ok()) std::abort();  // decoded => encodable
  FrameView f;
  auto n = parse_frame(buf, 0, f);
  if (!n || *n != buf.size()) std::abort();
  auto again = decode_method(f.payload);
  if (!again || !(*again == *m)) std::abort();
  if (has_content(*m) != has_content(*again) || method_name(*m).empty()) std::abort();
}

void check_header(std::span<const std::byte> payload) {
  auto h = decode_content_header(payload);
  if (!h) return;
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  encode_content_header(h->class_id, h->body_size, h->properties, w);
  if (!w.ok()) std::abort();
  auto again = decode_content_header(buf);
  if (!again || !(*again == *h)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  check_method(in);
  check_header(in);

  std::map<std::uint16_t, ContentAssembler> channels;
  while (!in.empty()) {
    FrameView f;
    auto n = parse_frame(in, 131072, f);
    if (!n || *n == 0) break;
    if (*n > in.size() || f.payload.size() + 8 != *n) std::abort();
    in = in.subspan(*n);
    if (f.type == kFrameMethod) check_method(f.payload);
    if (f.type == kFrameHeader) check_header(f.payload);
    if (f.type == kFrameHeartbeat) continue;
    ContentAssembler& a = channels.try_emplace(f.channel, /*max_body_size=*/1u << 20).first->second;
    auto e = a.feed(f);
    if (!e) continue;  // the assembler resets itself after an error
    if (*e == ContentAssembler::Event::kDelivery) {
      Delivery d = a.take_delivery();
      if (!has_content(d.method)) std::abort();
    } else if (*e == ContentAssembler::Event::kMethod) {
      if (has_content(a.take_method())) std::abort();
    }
  }
  return 0;
}
