// Methods of the exchange (40) and queue (50) classes. See method_def.h for
// the shape every struct shares. Defaults are the spec's defaults.
#pragma once

#include "src/amqp/method_def.h"

namespace myelin::amqp::wire {

struct ExchangeDeclare {
  MYELIN_AMQP_METHOD(ExchangeDeclare, class_id::kExchange, method_id::kExchangeDeclare,
                     "exchange.declare");
  std::uint16_t reserved_1 = 0;  // ticket
  std::string exchange;
  std::string type = "direct";
  bool passive = false;
  bool durable = false;
  bool auto_delete = false;  // reserved-2 in the spec; RabbitMQ honours it
  bool internal = false;     // reserved-3 in the spec; RabbitMQ honours it
  bool no_wait = false;
  FieldTable arguments;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("exchange", s.exchange);
    v.shortstr("type", s.type);
    v.bit("passive", s.passive);
    v.bit("durable", s.durable);
    v.bit("auto-delete", s.auto_delete);
    v.bit("internal", s.internal);
    v.bit("no-wait", s.no_wait);
    v.table("arguments", s.arguments);
  }
};

struct ExchangeDeclareOk {
  MYELIN_AMQP_METHOD(ExchangeDeclareOk, class_id::kExchange, method_id::kExchangeDeclareOk,
                     "exchange.declare-ok");
  MYELIN_AMQP_NO_FIELDS
};

struct ExchangeDelete {
  MYELIN_AMQP_METHOD(ExchangeDelete, class_id::kExchange, method_id::kExchangeDelete,
                     "exchange.delete");
  std::uint16_t reserved_1 = 0;
  std::string exchange;
  bool if_unused = false;
  bool no_wait = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("exchange", s.exchange);
    v.bit("if-unused", s.if_unused);
    v.bit("no-wait", s.no_wait);
  }
};

struct ExchangeDeleteOk {
  MYELIN_AMQP_METHOD(ExchangeDeleteOk, class_id::kExchange, method_id::kExchangeDeleteOk,
                     "exchange.delete-ok");
  MYELIN_AMQP_NO_FIELDS
};

// RabbitMQ extension: exchange-to-exchange bindings.
struct ExchangeBind {
  MYELIN_AMQP_METHOD(ExchangeBind, class_id::kExchange, method_id::kExchangeBind, "exchange.bind");
  std::uint16_t reserved_1 = 0;
  std::string destination;
  std::string source;
  std::string routing_key;
  bool no_wait = false;
  FieldTable arguments;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("destination", s.destination);
    v.shortstr("source", s.source);
    v.shortstr("routing-key", s.routing_key);
    v.bit("no-wait", s.no_wait);
    v.table("arguments", s.arguments);
  }
};

struct ExchangeBindOk {
  MYELIN_AMQP_METHOD(ExchangeBindOk, class_id::kExchange, method_id::kExchangeBindOk,
                     "exchange.bind-ok");
  MYELIN_AMQP_NO_FIELDS
};

struct ExchangeUnbind {
  MYELIN_AMQP_METHOD(ExchangeUnbind, class_id::kExchange, method_id::kExchangeUnbind,
                     "exchange.unbind");
  std::uint16_t reserved_1 = 0;
  std::string destination;
  std::string source;
  std::string routing_key;
  bool no_wait = false;
  FieldTable arguments;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("destination", s.destination);
    v.shortstr("source", s.source);
    v.shortstr("routing-key", s.routing_key);
    v.bit("no-wait", s.no_wait);
    v.table("arguments", s.arguments);
  }
};

struct ExchangeUnbindOk {
  MYELIN_AMQP_METHOD(ExchangeUnbindOk, class_id::kExchange, method_id::kExchangeUnbindOk,
                     "exchange.unbind-ok");
  MYELIN_AMQP_NO_FIELDS
};

struct QueueDeclare {
  MYELIN_AMQP_METHOD(QueueDeclare, class_id::kQueue, method_id::kQueueDeclare, "queue.declare");
  std::uint16_t reserved_1 = 0;
  std::string queue;  // empty: the server names it
  bool passive = false;
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  bool no_wait = false;
  FieldTable arguments;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("queue", s.queue);
    v.bit("passive", s.passive);
    v.bit("durable", s.durable);
    v.bit("exclusive", s.exclusive);
    v.bit("auto-delete", s.auto_delete);
    v.bit("no-wait", s.no_wait);
    v.table("arguments", s.arguments);
  }
};

struct QueueDeclareOk {
  MYELIN_AMQP_METHOD(QueueDeclareOk, class_id::kQueue, method_id::kQueueDeclareOk,
                     "queue.declare-ok");
  std::string queue;
  std::uint32_t message_count = 0;
  std::uint32_t consumer_count = 0;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.shortstr("queue", s.queue);
    v.u32("message-count", s.message_count);
    v.u32("consumer-count", s.consumer_count);
  }
};

struct QueueBind {
  MYELIN_AMQP_METHOD(QueueBind, class_id::kQueue, method_id::kQueueBind, "queue.bind");
  std::uint16_t reserved_1 = 0;
  std::string queue;
  std::string exchange;
  std::string routing_key;
  bool no_wait = false;
  FieldTable arguments;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("queue", s.queue);
    v.shortstr("exchange", s.exchange);
    v.shortstr("routing-key", s.routing_key);
    v.bit("no-wait", s.no_wait);
    v.table("arguments", s.arguments);
  }
};

struct QueueBindOk {
  MYELIN_AMQP_METHOD(QueueBindOk, class_id::kQueue, method_id::kQueueBindOk, "queue.bind-ok");
  MYELIN_AMQP_NO_FIELDS
};

struct QueuePurge {
  MYELIN_AMQP_METHOD(QueuePurge, class_id::kQueue, method_id::kQueuePurge, "queue.purge");
  std::uint16_t reserved_1 = 0;
  std::string queue;
  bool no_wait = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("queue", s.queue);
    v.bit("no-wait", s.no_wait);
  }
};

struct QueuePurgeOk {
  MYELIN_AMQP_METHOD(QueuePurgeOk, class_id::kQueue, method_id::kQueuePurgeOk, "queue.purge-ok");
  std::uint32_t message_count = 0;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u32("message-count", s.message_count);
  }
};

struct QueueDelete {
  MYELIN_AMQP_METHOD(QueueDelete, class_id::kQueue, method_id::kQueueDelete, "queue.delete");
  std::uint16_t reserved_1 = 0;
  std::string queue;
  bool if_unused = false;
  bool if_empty = false;
  bool no_wait = false;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("queue", s.queue);
    v.bit("if-unused", s.if_unused);
    v.bit("if-empty", s.if_empty);
    v.bit("no-wait", s.no_wait);
  }
};

struct QueueDeleteOk {
  MYELIN_AMQP_METHOD(QueueDeleteOk, class_id::kQueue, method_id::kQueueDeleteOk, "queue.delete-ok");
  std::uint32_t message_count = 0;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u32("message-count", s.message_count);
  }
};

// No no-wait argument: unbind is always synchronous.
struct QueueUnbind {
  MYELIN_AMQP_METHOD(QueueUnbind, class_id::kQueue, method_id::kQueueUnbind, "queue.unbind");
  std::uint16_t reserved_1 = 0;
  std::string queue;
  std::string exchange;
  std::string routing_key;
  FieldTable arguments;
  template <typename S, typename V>
  static void fields(S& s, V& v) {
    v.u16("reserved-1", s.reserved_1);
    v.shortstr("queue", s.queue);
    v.shortstr("exchange", s.exchange);
    v.shortstr("routing-key", s.routing_key);
    v.table("arguments", s.arguments);
  }
};

struct QueueUnbindOk {
  MYELIN_AMQP_METHOD(QueueUnbindOk, class_id::kQueue, method_id::kQueueUnbindOk, "queue.unbind-ok");
  MYELIN_AMQP_NO_FIELDS
};

}  // namespace myelin::amqp::wire
