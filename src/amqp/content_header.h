// The content header frame payload that follows a content-bearing method:
// class-id(2) weight(2, always 0) body-size(8) property-flags(2, more words
// while bit 0 is set) property-list. Only class basic (60) carries content
// in AMQP 0-9-1, so the properties are BasicProperties; the 14 flags run from
// bit 15 (content-type) down to bit 2 (cluster-id).
#pragma once

#include <cstdint>
#include <span>

#include "myelin/amqp/types.h"
#include "myelin/base/result.h"
#include "src/amqp/byte_writer.h"
#include "src/amqp/wire.h"

namespace myelin::amqp::wire {

struct ContentHeader {
  std::uint16_t class_id = ::myelin::amqp::wire::class_id::kBasic;
  std::uint64_t body_size = 0;
  BasicProperties properties;
  friend bool operator==(const ContentHeader&, const ContentHeader&) = default;
};

// Appends the header payload (no frame around it). Fails through the
// writer's status on a class other than basic or an over-long short string.
void encode_content_header(std::uint16_t class_id, std::uint64_t body_size,
                           const BasicProperties& properties, ByteWriter& out);

// Rejects a class other than basic, a non-zero weight, undefined flag bits,
// and trailing bytes, each with a message naming the property and offset.
Result<ContentHeader> decode_content_header(std::span<const std::byte> payload);

}  // namespace myelin::amqp::wire
