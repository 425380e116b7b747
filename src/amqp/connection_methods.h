// Methods of the connection (10) and channel (20) classes. See method_def.h
// for the shape every struct shares. Defaults are the spec's defaults.
#pragma once

#include "src/amqp/method_def.h"

namespace myelin::amqp::wire {

struct ConnectionStart {
  MYELIN_AMQP_METHOD(ConnectionStart, class_id::kConnection, method_id::kConnectionStart,
                     "connection.start");
  std::uint8_t version_major = 0;
  std::uint8_t version_minor = 9;
  FieldTable server_properties;
  std::string mechanisms = "PLAIN";
  std::string locales = "en_US";
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u8("version-major", s.version_major);
    v.u8("version-minor", s.version_minor);
    v.table("server-properties", s.server_properties);
    v.longstr("mechanisms", s.mechanisms);
    v.longstr("locales", s.locales);
  }
};

struct ConnectionStartOk {
  MYELIN_AMQP_METHOD(ConnectionStartOk, class_id::kConnection, method_id::kConnectionStartOk,
                     "connection.start-ok");
  FieldTable client_properties;
  std::string mechanism = "PLAIN";
  std::string response;
  std::string locale = "en_US";
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.table("client-properties", s.client_properties);
    v.shortstr("mechanism", s.mechanism);
    v.longstr("response", s.response);
    v.shortstr("locale", s.locale);
  }
};

struct ConnectionSecure {
  MYELIN_AMQP_METHOD(ConnectionSecure, class_id::kConnection, method_id::kConnectionSecure,
                     "connection.secure");
  std::string challenge;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.longstr("challenge", s.challenge);
  }
};

struct ConnectionSecureOk {
  MYELIN_AMQP_METHOD(ConnectionSecureOk, class_id::kConnection, method_id::kConnectionSecureOk,
                     "connection.secure-ok");
  std::string response;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.longstr("response", s.response);
  }
};

struct ConnectionTune {
  MYELIN_AMQP_METHOD(ConnectionTune, class_id::kConnection, method_id::kConnectionTune,
                     "connection.tune");
  std::uint16_t channel_max = 0;
  std::uint32_t frame_max = 0;
  std::uint16_t heartbeat = 0;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("channel-max", s.channel_max);
    v.u32("frame-max", s.frame_max);
    v.u16("heartbeat", s.heartbeat);
  }
};

struct ConnectionTuneOk {
  MYELIN_AMQP_METHOD(ConnectionTuneOk, class_id::kConnection, method_id::kConnectionTuneOk,
                     "connection.tune-ok");
  std::uint16_t channel_max = 0;
  std::uint32_t frame_max = 0;
  std::uint16_t heartbeat = 0;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("channel-max", s.channel_max);
    v.u32("frame-max", s.frame_max);
    v.u16("heartbeat", s.heartbeat);
  }
};

struct ConnectionOpen {
  MYELIN_AMQP_METHOD(ConnectionOpen, class_id::kConnection, method_id::kConnectionOpen,
                     "connection.open");
  std::string virtual_host = "/";
  std::string reserved_1;   // capabilities
  bool reserved_2 = false;  // insist
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.shortstr("virtual-host", s.virtual_host);
    v.shortstr("reserved-1", s.reserved_1);
    v.bit("reserved-2", s.reserved_2);
  }
};

struct ConnectionOpenOk {
  MYELIN_AMQP_METHOD(ConnectionOpenOk, class_id::kConnection, method_id::kConnectionOpenOk,
                     "connection.open-ok");
  std::string reserved_1;  // known-hosts
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.shortstr("reserved-1", s.reserved_1);
  }
};

struct ConnectionClose {
  MYELIN_AMQP_METHOD(ConnectionClose, class_id::kConnection, method_id::kConnectionClose,
                     "connection.close");
  std::uint16_t reply_code = 0;
  std::string reply_text;
  // The method that provoked the close, or 0/0.
  std::uint16_t class_id = 0;
  std::uint16_t method_id = 0;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reply-code", s.reply_code);
    v.shortstr("reply-text", s.reply_text);
    v.u16("class-id", s.class_id);
    v.u16("method-id", s.method_id);
  }
};

struct ConnectionCloseOk {
  MYELIN_AMQP_METHOD(ConnectionCloseOk, class_id::kConnection, method_id::kConnectionCloseOk,
                     "connection.close-ok");
  MYELIN_AMQP_NO_FIELDS
};

// RabbitMQ extension: the broker stops reading from publishers (resource alarm).
struct ConnectionBlocked {
  MYELIN_AMQP_METHOD(ConnectionBlocked, class_id::kConnection, method_id::kConnectionBlocked,
                     "connection.blocked");
  std::string reason;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.shortstr("reason", s.reason);
  }
};

struct ConnectionUnblocked {
  MYELIN_AMQP_METHOD(ConnectionUnblocked, class_id::kConnection, method_id::kConnectionUnblocked,
                     "connection.unblocked");
  MYELIN_AMQP_NO_FIELDS
};

// RabbitMQ extension: refresh credentials (e.g. an OAuth 2 token).
struct ConnectionUpdateSecret {
  MYELIN_AMQP_METHOD(ConnectionUpdateSecret, class_id::kConnection,
                     method_id::kConnectionUpdateSecret, "connection.update-secret");
  std::string new_secret;
  std::string reason;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.longstr("new-secret", s.new_secret);
    v.shortstr("reason", s.reason);
  }
};

struct ConnectionUpdateSecretOk {
  MYELIN_AMQP_METHOD(ConnectionUpdateSecretOk, class_id::kConnection,
                     method_id::kConnectionUpdateSecretOk, "connection.update-secret-ok");
  MYELIN_AMQP_NO_FIELDS
};

struct ChannelOpen {
  MYELIN_AMQP_METHOD(ChannelOpen, class_id::kChannel, method_id::kChannelOpen, "channel.open");
  std::string reserved_1;  // out-of-band
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.shortstr("reserved-1", s.reserved_1);
  }
};

struct ChannelOpenOk {
  MYELIN_AMQP_METHOD(ChannelOpenOk, class_id::kChannel, method_id::kChannelOpenOk,
                     "channel.open-ok");
  std::string reserved_1;  // channel-id (a long string)
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.longstr("reserved-1", s.reserved_1);
  }
};

struct ChannelFlow {
  MYELIN_AMQP_METHOD(ChannelFlow, class_id::kChannel, method_id::kChannelFlow, "channel.flow");
  bool active = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.bit("active", s.active);
  }
};

struct ChannelFlowOk {
  MYELIN_AMQP_METHOD(ChannelFlowOk, class_id::kChannel, method_id::kChannelFlowOk,
                     "channel.flow-ok");
  bool active = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.bit("active", s.active);
  }
};

struct ChannelClose {
  MYELIN_AMQP_METHOD(ChannelClose, class_id::kChannel, method_id::kChannelClose, "channel.close");
  std::uint16_t reply_code = 0;
  std::string reply_text;
  std::uint16_t class_id = 0;
  std::uint16_t method_id = 0;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reply-code", s.reply_code);
    v.shortstr("reply-text", s.reply_text);
    v.u16("class-id", s.class_id);
    v.u16("method-id", s.method_id);
  }
};

struct ChannelCloseOk {
  MYELIN_AMQP_METHOD(ChannelCloseOk, class_id::kChannel, method_id::kChannelCloseOk,
                     "channel.close-ok");
  MYELIN_AMQP_NO_FIELDS
};

}  // namespace myelin::amqp::wire
