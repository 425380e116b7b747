// The inference envelope: one request or one reply as a single message,
// the same bytes over every front end that carries messages (the MSC1
// secure channel today; RabbitMQ bodies next). docs/serving.md, "The
// inference envelope", specifies it byte by byte.
//
// A request names the model (and optionally its version), carries the
// client's request id, a timeout, the outputs wanted and the named input
// tensors (the tensor framing of docs/secure-channel.md section 8). A reply
// carries the id back with either the named outputs or an error code and
// message. Ids let many requests be in flight on one connection and replies
// come back in any order.
//
// Decoding validates every length and returns views into the message (no
// copy): they live as long as the message bytes, and tensor data in them
// may be unaligned. Encoding builds one contiguous message. Pure functions,
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/secure/tensor_frame.h"

namespace myelin::serve {

inline constexpr std::uint8_t kEnvelopeVersion = 1;
inline constexpr std::size_t kMaxModelName = 255;
inline constexpr std::size_t kMaxVersionName = 255;
inline constexpr std::size_t kMaxRequestedOutputs = 64;
inline constexpr std::size_t kMaxReplyMessage = 65535;
// Fixed part of a request before the model name: magic, version, flags,
// id, timeout.
inline constexpr std::size_t kRequestFixedSize = 4 + 1 + 1 + 8 + 8;
inline constexpr std::size_t kReplyFixedSize = 4 + 1 + 1 + 8;

// The outcome a reply carries; the wire values never change.
enum class ReplyCode : std::uint8_t {
  kOk = 0,
  kBadRequest = 1,        // the envelope, a tensor, or the inputs do not fit the model
  kNotFound = 2,          // no such model or version
  kUnavailable = 3,       // not ready, queue full, shutting down: retry later
  kDeadlineExceeded = 4,  // the timeout passed before the request was computed
  kInternal = 5,
};
// "ok", "bad_request", ...; "unknown" for other values.
std::string_view to_string(ReplyCode code) noexcept;
// The reply code for a failed myelin Status.
ReplyCode reply_code_for(const Status& status) noexcept;

struct RequestEnvelope {
  std::uint64_t id = 0;
  std::uint64_t timeout_us = 0;  // 0: the server's default
  std::string_view model;
  std::string_view version;               // empty: the version served
  std::vector<std::string_view> outputs;  // empty: every output
  std::vector<secure::NamedTensor> inputs;
};

struct ReplyEnvelope {
  std::uint64_t id = 0;
  ReplyCode code = ReplyCode::kOk;
  std::string_view message;                  // set when code != kOk
  std::vector<secure::NamedTensor> outputs;  // set when code == kOk
};

Result<std::vector<std::byte>> encode_request(const RequestEnvelope& request);
// Replaces `out`; errors name the field and its byte offset.
Status decode_request(std::span<const std::byte> message, RequestEnvelope& out);
// The id of a request message that may not decode: what a server puts in
// the error reply. 0 when the message is too short or not a request.
std::uint64_t request_id_of(std::span<const std::byte> message) noexcept;

Result<std::vector<std::byte>> encode_reply(const ReplyEnvelope& reply);
Status decode_reply(std::span<const std::byte> message, ReplyEnvelope& out);

}  // namespace myelin::serve
