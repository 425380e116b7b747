// AMQP 0-9-1 wire constants (RabbitMQ's amqp0-9-1.extended.xml): frame
// types, the protocol header, class and method ids, reply codes.
//
// Every number the codec puts on the wire is defined here and nowhere else.
// The whole private codec lives in namespace myelin::amqp::wire (rather than
// `detail`): it is the vocabulary the connection layer speaks, so its names
// read as wire::BasicPublish, wire::parse_frame at call sites.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace myelin::amqp::wire {

// Frame layout: type(1) channel(2) size(4) payload(size) frame-end(1).
inline constexpr std::uint8_t kFrameMethod = 1;
inline constexpr std::uint8_t kFrameHeader = 2;
inline constexpr std::uint8_t kFrameBody = 3;
inline constexpr std::uint8_t kFrameHeartbeat = 8;
inline constexpr std::uint8_t kFrameEnd = 0xCE;
inline constexpr std::size_t kFrameHeaderSize = 7;
// Header plus frame-end: what frame-max counts besides the payload.
inline constexpr std::size_t kFrameOverhead = kFrameHeaderSize + 1;
// The smallest frame-max a peer may negotiate, and what applies before tune.
inline constexpr std::uint32_t kFrameMinSize = 4096;
static_assert(kFrameHeaderSize == 1 + 2 + 4);
static_assert(kFrameOverhead == 8);
static_assert(kFrameEnd == 206);

inline constexpr std::array<char, 8> kProtocolHeader = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};
static_assert(kProtocolHeader.size() == 8);

// Method frame payload: class-id(2) method-id(2) arguments.
inline constexpr std::size_t kMethodHeaderSize = 4;
// Content header payload: class-id(2) weight(2) body-size(8) flags(2...).
inline constexpr std::size_t kContentHeaderFixedSize = 2 + 2 + 8;
static_assert(kContentHeaderFixedSize == 12);

inline constexpr std::size_t kMaxShortString = 255;
// Nesting limit for field tables and arrays, on encode and decode alike, so
// a hostile frame cannot exhaust the stack.
inline constexpr int kMaxFieldNesting = 64;

namespace class_id {
inline constexpr std::uint16_t kConnection = 10;
inline constexpr std::uint16_t kChannel = 20;
inline constexpr std::uint16_t kAccess = 30;  // deprecated; not implemented
inline constexpr std::uint16_t kExchange = 40;
inline constexpr std::uint16_t kQueue = 50;
inline constexpr std::uint16_t kBasic = 60;
inline constexpr std::uint16_t kConfirm = 85;
inline constexpr std::uint16_t kTx = 90;
}  // namespace class_id

namespace method_id {
// connection
inline constexpr std::uint16_t kConnectionStart = 10;
inline constexpr std::uint16_t kConnectionStartOk = 11;
inline constexpr std::uint16_t kConnectionSecure = 20;
inline constexpr std::uint16_t kConnectionSecureOk = 21;
inline constexpr std::uint16_t kConnectionTune = 30;
inline constexpr std::uint16_t kConnectionTuneOk = 31;
inline constexpr std::uint16_t kConnectionOpen = 40;
inline constexpr std::uint16_t kConnectionOpenOk = 41;
inline constexpr std::uint16_t kConnectionClose = 50;
inline constexpr std::uint16_t kConnectionCloseOk = 51;
inline constexpr std::uint16_t kConnectionBlocked = 60;
inline constexpr std::uint16_t kConnectionUnblocked = 61;
inline constexpr std::uint16_t kConnectionUpdateSecret = 70;
inline constexpr std::uint16_t kConnectionUpdateSecretOk = 71;
// channel
inline constexpr std::uint16_t kChannelOpen = 10;
inline constexpr std::uint16_t kChannelOpenOk = 11;
inline constexpr std::uint16_t kChannelFlow = 20;
inline constexpr std::uint16_t kChannelFlowOk = 21;
inline constexpr std::uint16_t kChannelClose = 40;
inline constexpr std::uint16_t kChannelCloseOk = 41;
// exchange (RabbitMQ extension: bind/unbind; note unbind-ok is 51, not 41)
inline constexpr std::uint16_t kExchangeDeclare = 10;
inline constexpr std::uint16_t kExchangeDeclareOk = 11;
inline constexpr std::uint16_t kExchangeDelete = 20;
inline constexpr std::uint16_t kExchangeDeleteOk = 21;
inline constexpr std::uint16_t kExchangeBind = 30;
inline constexpr std::uint16_t kExchangeBindOk = 31;
inline constexpr std::uint16_t kExchangeUnbind = 40;
inline constexpr std::uint16_t kExchangeUnbindOk = 51;
// queue
inline constexpr std::uint16_t kQueueDeclare = 10;
inline constexpr std::uint16_t kQueueDeclareOk = 11;
inline constexpr std::uint16_t kQueueBind = 20;
inline constexpr std::uint16_t kQueueBindOk = 21;
inline constexpr std::uint16_t kQueuePurge = 30;
inline constexpr std::uint16_t kQueuePurgeOk = 31;
inline constexpr std::uint16_t kQueueDelete = 40;
inline constexpr std::uint16_t kQueueDeleteOk = 41;
inline constexpr std::uint16_t kQueueUnbind = 50;
inline constexpr std::uint16_t kQueueUnbindOk = 51;
// basic
inline constexpr std::uint16_t kBasicQos = 10;
inline constexpr std::uint16_t kBasicQosOk = 11;
inline constexpr std::uint16_t kBasicConsume = 20;
inline constexpr std::uint16_t kBasicConsumeOk = 21;
inline constexpr std::uint16_t kBasicCancel = 30;
inline constexpr std::uint16_t kBasicCancelOk = 31;
inline constexpr std::uint16_t kBasicPublish = 40;
inline constexpr std::uint16_t kBasicReturn = 50;
inline constexpr std::uint16_t kBasicDeliver = 60;
inline constexpr std::uint16_t kBasicGet = 70;
inline constexpr std::uint16_t kBasicGetOk = 71;
inline constexpr std::uint16_t kBasicGetEmpty = 72;
inline constexpr std::uint16_t kBasicAck = 80;
inline constexpr std::uint16_t kBasicReject = 90;
inline constexpr std::uint16_t kBasicRecoverAsync = 100;
inline constexpr std::uint16_t kBasicRecover = 110;
inline constexpr std::uint16_t kBasicRecoverOk = 111;
inline constexpr std::uint16_t kBasicNack = 120;
// confirm (RabbitMQ extension)
inline constexpr std::uint16_t kConfirmSelect = 10;
inline constexpr std::uint16_t kConfirmSelectOk = 11;
// tx
inline constexpr std::uint16_t kTxSelect = 10;
inline constexpr std::uint16_t kTxSelectOk = 11;
inline constexpr std::uint16_t kTxCommit = 20;
inline constexpr std::uint16_t kTxCommitOk = 21;
inline constexpr std::uint16_t kTxRollback = 30;
inline constexpr std::uint16_t kTxRollbackOk = 31;
}  // namespace method_id

// Reply codes of connection.close / channel.close / basic.return. Soft
// errors close the channel, hard errors the connection.
namespace reply_code {
inline constexpr std::uint16_t kReplySuccess = 200;
inline constexpr std::uint16_t kContentTooLarge = 311;     // soft
inline constexpr std::uint16_t kNoRoute = 312;             // soft
inline constexpr std::uint16_t kNoConsumers = 313;         // soft
inline constexpr std::uint16_t kConnectionForced = 320;    // hard
inline constexpr std::uint16_t kInvalidPath = 402;         // hard
inline constexpr std::uint16_t kAccessRefused = 403;       // soft
inline constexpr std::uint16_t kNotFound = 404;            // soft
inline constexpr std::uint16_t kResourceLocked = 405;      // soft
inline constexpr std::uint16_t kPreconditionFailed = 406;  // soft
inline constexpr std::uint16_t kFrameError = 501;          // hard
inline constexpr std::uint16_t kSyntaxError = 502;         // hard
inline constexpr std::uint16_t kCommandInvalid = 503;      // hard
inline constexpr std::uint16_t kChannelError = 504;        // hard
inline constexpr std::uint16_t kUnexpectedFrame = 505;     // hard
inline constexpr std::uint16_t kResourceError = 506;       // hard
inline constexpr std::uint16_t kNotAllowed = 530;          // hard
inline constexpr std::uint16_t kNotImplemented = 540;      // hard
inline constexpr std::uint16_t kInternalError = 541;       // hard
}  // namespace reply_code

// "NOT_FOUND" for 404; "" for a code the spec does not define.
constexpr std::string_view reply_code_name(std::uint16_t code) {
  switch (code) {
    case 200:
      return "REPLY_SUCCESS";
    case 311:
      return "CONTENT_TOO_LARGE";
    case 312:
      return "NO_ROUTE";
    case 313:
      return "NO_CONSUMERS";
    case 320:
      return "CONNECTION_FORCED";
    case 402:
      return "INVALID_PATH";
    case 403:
      return "ACCESS_REFUSED";
    case 404:
      return "NOT_FOUND";
    case 405:
      return "RESOURCE_LOCKED";
    case 406:
      return "PRECONDITION_FAILED";
    case 501:
      return "FRAME_ERROR";
    case 502:
      return "SYNTAX_ERROR";
    case 503:
      return "COMMAND_INVALID";
    case 504:
      return "CHANNEL_ERROR";
    case 505:
      return "UNEXPECTED_FRAME";
    case 506:
      return "RESOURCE_ERROR";
    case 530:
      return "NOT_ALLOWED";
    case 540:
      return "NOT_IMPLEMENTED";
    case 541:
      return "INTERNAL_ERROR";
    default:
      return "";
  }
}
// True for the codes that close the whole connection.
constexpr bool is_hard_error(std::uint16_t code) {
  return code == 320 || code == 402 || (code >= 501 && code <= 506) || code == 530 || code == 540 ||
         code == 541;
}
static_assert(reply_code_name(reply_code::kUnexpectedFrame) == "UNEXPECTED_FRAME");
static_assert(is_hard_error(reply_code::kFrameError) && !is_hard_error(reply_code::kNotFound));

// Content header property flags of class basic (bit 15 is the first property).
namespace property_flag {
inline constexpr std::uint16_t kContentType = 1u << 15;
inline constexpr std::uint16_t kContentEncoding = 1u << 14;
inline constexpr std::uint16_t kHeaders = 1u << 13;
inline constexpr std::uint16_t kDeliveryMode = 1u << 12;
inline constexpr std::uint16_t kPriority = 1u << 11;
inline constexpr std::uint16_t kCorrelationId = 1u << 10;
inline constexpr std::uint16_t kReplyTo = 1u << 9;
inline constexpr std::uint16_t kExpiration = 1u << 8;
inline constexpr std::uint16_t kMessageId = 1u << 7;
inline constexpr std::uint16_t kTimestamp = 1u << 6;
inline constexpr std::uint16_t kType = 1u << 5;
inline constexpr std::uint16_t kUserId = 1u << 4;
inline constexpr std::uint16_t kAppId = 1u << 3;
inline constexpr std::uint16_t kClusterId = 1u << 2;
// Bit 1 is undefined; bit 0 says another flag word follows.
inline constexpr std::uint16_t kContinuation = 1u << 0;
inline constexpr std::uint16_t kAllBasic = 0xFFFC;
}  // namespace property_flag
static_assert(property_flag::kClusterId == 0x0004 && property_flag::kContentType == 0x8000);

}  // namespace myelin::amqp::wire
