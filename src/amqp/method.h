// Method: every AMQP 0-9-1 method RabbitMQ speaks, as one variant, and the
// codec for method frame payloads (class-id, method-id, arguments).
//
// decode_method never reads past its input. Its errors are kParseError for
// malformed arguments (reply 502 SYNTAX_ERROR, or 501 FRAME_ERROR) and
// kProtocolError for an unknown class or method (reply 540 NOT_IMPLEMENTED
// or 503 COMMAND_INVALID); each names the method, the argument and the
// offset. Encoding reports invalid values (a short string over 255 bytes)
// through the ByteWriter's sticky status. All functions are pure and
// thread-compatible.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <variant>

#include "myelin/base/result.h"
#include "src/amqp/basic_methods.h"
#include "src/amqp/byte_writer.h"
#include "src/amqp/connection_methods.h"
#include "src/amqp/entity_methods.h"

namespace myelin::amqp::wire {

using Method = std::variant<
    // connection
    ConnectionStart, ConnectionStartOk, ConnectionSecure, ConnectionSecureOk, ConnectionTune,
    ConnectionTuneOk, ConnectionOpen, ConnectionOpenOk, ConnectionClose, ConnectionCloseOk,
    ConnectionBlocked, ConnectionUnblocked, ConnectionUpdateSecret, ConnectionUpdateSecretOk,
    // channel
    ChannelOpen, ChannelOpenOk, ChannelFlow, ChannelFlowOk, ChannelClose, ChannelCloseOk,
    // exchange
    ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete, ExchangeDeleteOk, ExchangeBind,
    ExchangeBindOk, ExchangeUnbind, ExchangeUnbindOk,
    // queue
    QueueDeclare, QueueDeclareOk, QueueBind, QueueBindOk, QueuePurge, QueuePurgeOk, QueueDelete,
    QueueDeleteOk, QueueUnbind, QueueUnbindOk,
    // basic
    BasicQos, BasicQosOk, BasicConsume, BasicConsumeOk, BasicCancel, BasicCancelOk, BasicPublish,
    BasicReturn, BasicDeliver, BasicGet, BasicGetOk, BasicGetEmpty, BasicAck, BasicReject,
    BasicRecoverAsync, BasicRecover, BasicRecoverOk, BasicNack,
    // confirm, tx
    ConfirmSelect, ConfirmSelectOk, TxSelect, TxSelectOk, TxCommit, TxCommitOk, TxRollback,
    TxRollbackOk>;

// True for the method structs above (what the typed overloads accept).
template <typename T>
concept MethodStruct = requires {
  { T::kClassId } -> std::convertible_to<std::uint16_t>;
  { T::kMethodId } -> std::convertible_to<std::uint16_t>;
  { T::kName } -> std::convertible_to<std::string_view>;
};

// True for basic.publish, basic.return, basic.deliver, basic.get-ok.
template <MethodStruct T>
inline constexpr bool kHasContent = requires {
  requires T::kHasContent;
};

struct MethodKey {
  std::uint16_t class_id = 0;
  std::uint16_t method_id = 0;
  friend bool operator==(const MethodKey&, const MethodKey&) = default;
};

// "basic.deliver".
std::string_view method_name(const Method& m) noexcept;
// The name of a (class-id, method-id) pair, e.g. from connection.close; ""
// when RabbitMQ defines no such method.
std::string_view method_name(MethodKey key) noexcept;
// Whether the method is followed by a content header and body frames.
bool has_content(const Method& m) noexcept;
MethodKey method_key(const Method& m) noexcept;

// Encodes visitor-style: bits packed into octets, lowest bit first, as the
// spec requires for consecutive bit arguments. Used by both encode_method
// overloads; exposed so that typed callers need not build a Method.
class MethodEncoder {
 public:
  MethodEncoder(ByteWriter& out, std::string_view method) noexcept : out_(out), method_(method) {}
  void u8(std::string_view, std::uint8_t v) {
    bits_ = 0;
    out_.u8(v);
  }
  void u16(std::string_view, std::uint16_t v) {
    bits_ = 0;
    out_.u16(v);
  }
  void u32(std::string_view, std::uint32_t v) {
    bits_ = 0;
    out_.u32(v);
  }
  void u64(std::string_view, std::uint64_t v) {
    bits_ = 0;
    out_.u64(v);
  }
  void shortstr(std::string_view name, std::string_view s) {
    bits_ = 0;
    guard(name, [&] { out_.shortstr(s); });
  }
  void longstr(std::string_view name, std::string_view s) {
    bits_ = 0;
    guard(name, [&] { out_.longstr(s); });
  }
  void table(std::string_view name, const FieldTable& t) {
    bits_ = 0;
    guard(name, [&] { out_.table(t); });
  }
  void bit(std::string_view, bool b) {
    if (bits_ == 0 || bits_ == 8) {
      bit_octet_ = out_.size();
      out_.u8(0);
      bits_ = 0;
    }
    if (b) out_.buffer()[bit_octet_] |= std::byte(1u << bits_);
    ++bits_;
  }

 private:
  template <typename F>
  void guard(std::string_view name, F&& write) {
    const bool was_ok = out_.ok();
    write();
    if (was_ok && !out_.ok()) {
      out_.add_context(name);
      out_.add_context(method_);
    }
  }
  ByteWriter& out_;
  std::string_view method_;
  std::size_t bit_octet_ = 0;
  int bits_ = 0;  // bits used in the octet at bit_octet_; 0: none open
};

// Appends class-id, method-id and the arguments. Check out.status() after.
template <MethodStruct M>
void encode_method(const M& m, ByteWriter& out) {
  out.u16(M::kClassId);
  out.u16(M::kMethodId);
  MethodEncoder enc(out, M::kName);
  M::fields(m, enc);
}
void encode_method(const Method& m, ByteWriter& out);

// Decodes a whole method frame payload; trailing bytes are an error.
Result<Method> decode_method(std::span<const std::byte> payload);

}  // namespace myelin::amqp::wire
