// Methods of the basic (60), confirm (85) and tx (90) classes. See
// method_def.h for the shape every struct shares. The four content carriers
// (publish, return, deliver, get-ok) have kHasContent = true: on the wire
// they are followed by a content header frame and body frames.
#pragma once

#include "src/amqp/method_def.h"

namespace myelin::amqp::wire {

struct BasicQos {
  MYELIN_AMQP_METHOD(BasicQos, class_id::kBasic, method_id::kBasicQos, "basic.qos");
  std::uint32_t prefetch_size = 0;
  std::uint16_t prefetch_count = 0;
  bool global = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u32("prefetch-size", s.prefetch_size);
    v.u16("prefetch-count", s.prefetch_count);
    v.bit("global", s.global);
  }
};

struct BasicQosOk {
  MYELIN_AMQP_METHOD(BasicQosOk, class_id::kBasic, method_id::kBasicQosOk, "basic.qos-ok");
  MYELIN_AMQP_NO_FIELDS
};

struct BasicConsume {
  MYELIN_AMQP_METHOD(BasicConsume, class_id::kBasic, method_id::kBasicConsume, "basic.consume");
  std::uint16_t reserved_1 = 0;
  std::string queue;
  std::string consumer_tag;  // empty: the server makes one up
  bool no_local = false;
  bool no_ack = false;
  bool exclusive = false;
  bool no_wait = false;
  FieldTable arguments;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("queue", s.queue);
    v.shortstr("consumer-tag", s.consumer_tag);
    v.bit("no-local", s.no_local);
    v.bit("no-ack", s.no_ack);
    v.bit("exclusive", s.exclusive);
    v.bit("no-wait", s.no_wait);
    v.table("arguments", s.arguments);
  }
};

struct BasicConsumeOk {
  MYELIN_AMQP_METHOD(BasicConsumeOk, class_id::kBasic, method_id::kBasicConsumeOk,
                     "basic.consume-ok");
  std::string consumer_tag;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.shortstr("consumer-tag", s.consumer_tag);
  }
};

// Sent by the client, and by RabbitMQ when a queue goes away
// (consumer_cancel_notify capability).
struct BasicCancel {
  MYELIN_AMQP_METHOD(BasicCancel, class_id::kBasic, method_id::kBasicCancel, "basic.cancel");
  std::string consumer_tag;
  bool no_wait = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.shortstr("consumer-tag", s.consumer_tag);
    v.bit("no-wait", s.no_wait);
  }
};

struct BasicCancelOk {
  MYELIN_AMQP_METHOD(BasicCancelOk, class_id::kBasic, method_id::kBasicCancelOk, "basic.cancel-ok");
  std::string consumer_tag;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.shortstr("consumer-tag", s.consumer_tag);
  }
};

struct BasicPublish {
  MYELIN_AMQP_METHOD(BasicPublish, class_id::kBasic, method_id::kBasicPublish, "basic.publish");
  static constexpr bool kHasContent = true;
  std::uint16_t reserved_1 = 0;
  std::string exchange;
  std::string routing_key;
  bool mandatory = false;
  bool immediate = false;  // RabbitMQ rejects it (540 NOT_IMPLEMENTED)
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("exchange", s.exchange);
    v.shortstr("routing-key", s.routing_key);
    v.bit("mandatory", s.mandatory);
    v.bit("immediate", s.immediate);
  }
};

struct BasicReturn {
  MYELIN_AMQP_METHOD(BasicReturn, class_id::kBasic, method_id::kBasicReturn, "basic.return");
  static constexpr bool kHasContent = true;
  std::uint16_t reply_code = 0;
  std::string reply_text;
  std::string exchange;
  std::string routing_key;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reply-code", s.reply_code);
    v.shortstr("reply-text", s.reply_text);
    v.shortstr("exchange", s.exchange);
    v.shortstr("routing-key", s.routing_key);
  }
};

struct BasicDeliver {
  MYELIN_AMQP_METHOD(BasicDeliver, class_id::kBasic, method_id::kBasicDeliver, "basic.deliver");
  static constexpr bool kHasContent = true;
  std::string consumer_tag;
  std::uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.shortstr("consumer-tag", s.consumer_tag);
    v.u64("delivery-tag", s.delivery_tag);
    v.bit("redelivered", s.redelivered);
    v.shortstr("exchange", s.exchange);
    v.shortstr("routing-key", s.routing_key);
  }
};

struct BasicGet {
  MYELIN_AMQP_METHOD(BasicGet, class_id::kBasic, method_id::kBasicGet, "basic.get");
  std::uint16_t reserved_1 = 0;
  std::string queue;
  bool no_ack = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("queue", s.queue);
    v.bit("no-ack", s.no_ack);
  }
};

struct BasicGetOk {
  MYELIN_AMQP_METHOD(BasicGetOk, class_id::kBasic, method_id::kBasicGetOk, "basic.get-ok");
  static constexpr bool kHasContent = true;
  std::uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
  std::uint32_t message_count = 0;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u64("delivery-tag", s.delivery_tag);
    v.bit("redelivered", s.redelivered);
    v.shortstr("exchange", s.exchange);
    v.shortstr("routing-key", s.routing_key);
    v.u32("message-count", s.message_count);
  }
};

struct BasicGetEmpty {
  MYELIN_AMQP_METHOD(BasicGetEmpty, class_id::kBasic, method_id::kBasicGetEmpty, "basic.get-empty");
  std::string reserved_1;  // cluster-id
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.shortstr("reserved-1", s.reserved_1);
  }
};

// Sent by the client, and by RabbitMQ in confirm mode (publisher confirms).
struct BasicAck {
  MYELIN_AMQP_METHOD(BasicAck, class_id::kBasic, method_id::kBasicAck, "basic.ack");
  std::uint64_t delivery_tag = 0;
  bool multiple = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u64("delivery-tag", s.delivery_tag);
    v.bit("multiple", s.multiple);
  }
};

struct BasicReject {
  MYELIN_AMQP_METHOD(BasicReject, class_id::kBasic, method_id::kBasicReject, "basic.reject");
  std::uint64_t delivery_tag = 0;
  bool requeue = true;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u64("delivery-tag", s.delivery_tag);
    v.bit("requeue", s.requeue);
  }
};

struct BasicRecoverAsync {
  MYELIN_AMQP_METHOD(BasicRecoverAsync, class_id::kBasic, method_id::kBasicRecoverAsync,
                     "basic.recover-async");
  bool requeue = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.bit("requeue", s.requeue);
  }
};

struct BasicRecover {
  MYELIN_AMQP_METHOD(BasicRecover, class_id::kBasic, method_id::kBasicRecover, "basic.recover");
  bool requeue = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.bit("requeue", s.requeue);
  }
};

struct BasicRecoverOk {
  MYELIN_AMQP_METHOD(BasicRecoverOk, class_id::kBasic, method_id::kBasicRecoverOk,
                     "basic.recover-ok");
  MYELIN_AMQP_NO_FIELDS
};

// RabbitMQ extension: negative acknowledgement (also sent in confirm mode).
struct BasicNack {
  MYELIN_AMQP_METHOD(BasicNack, class_id::kBasic, method_id::kBasicNack, "basic.nack");
  std::uint64_t delivery_tag = 0;
  bool multiple = false;
  bool requeue = true;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u64("delivery-tag", s.delivery_tag);
    v.bit("multiple", s.multiple);
    v.bit("requeue", s.requeue);
  }
};

// RabbitMQ extension: publisher confirms.
struct ConfirmSelect {
  MYELIN_AMQP_METHOD(ConfirmSelect, class_id::kConfirm, method_id::kConfirmSelect,
                     "confirm.select");
  bool no_wait = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.bit("no-wait", s.no_wait);
  }
};

struct ConfirmSelectOk {
  MYELIN_AMQP_METHOD(ConfirmSelectOk, class_id::kConfirm, method_id::kConfirmSelectOk,
                     "confirm.select-ok");
  MYELIN_AMQP_NO_FIELDS
};

struct TxSelect {
  MYELIN_AMQP_METHOD(TxSelect, class_id::kTx, method_id::kTxSelect, "tx.select");
  MYELIN_AMQP_NO_FIELDS
};
struct TxSelectOk {
  MYELIN_AMQP_METHOD(TxSelectOk, class_id::kTx, method_id::kTxSelectOk, "tx.select-ok");
  MYELIN_AMQP_NO_FIELDS
};
struct TxCommit {
  MYELIN_AMQP_METHOD(TxCommit, class_id::kTx, method_id::kTxCommit, "tx.commit");
  MYELIN_AMQP_NO_FIELDS
};
struct TxCommitOk {
  MYELIN_AMQP_METHOD(TxCommitOk, class_id::kTx, method_id::kTxCommitOk, "tx.commit-ok");
  MYELIN_AMQP_NO_FIELDS
};
struct TxRollback {
  MYELIN_AMQP_METHOD(TxRollback, class_id::kTx, method_id::kTxRollback, "tx.rollback");
  MYELIN_AMQP_NO_FIELDS
};
struct TxRollbackOk {
  MYELIN_AMQP_METHOD(TxRollbackOk, class_id::kTx, method_id::kTxRollbackOk, "tx.rollback-ok");
  MYELIN_AMQP_NO_FIELDS
};

}  // namespace myelin::amqp::wire
