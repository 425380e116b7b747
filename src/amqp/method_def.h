// The shape every AMQP method struct shares (connection_methods.h,
// entity_methods.h, basic_methods.h).
//
// A method is an aggregate whose members are its arguments, named after the
// 0-9-1 spec in snake_case (RabbitMQ's un-deprecated auto-delete/internal
// keep their names; truly reserved arguments are reserved_N and should stay
// at their defaults). Besides its members each struct has:
//   kClassId, kMethodId, kName ("basic.deliver"), kHasContent (content
//   carriers only), operator==, and
//   template <class S, class V> static void fields(S& self, V& visitor)
// which calls visitor.u8/u16/u32/u64/shortstr/longstr/bit/table(name, member)
// for each argument in wire order. The codec (method_codec.cc) implements
// encode and decode as two visitors over that one list, so an argument is
// described exactly once. Names passed to the visitor are the spec's
// ("routing-key") and appear in error messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "myelin/amqp/types.h"
#include "src/amqp/wire.h"

#define MYELIN_AMQP_METHOD(Type, klass, method, name)                      \
  static constexpr std::uint16_t kClassId = ::myelin::amqp::wire::klass;   \
  static constexpr std::uint16_t kMethodId = ::myelin::amqp::wire::method; \
  static constexpr std::string_view kName = name;                          \
  friend bool operator==(const Type&, const Type&) = default

// For methods without arguments.
#define MYELIN_AMQP_NO_FIELDS       \
  template <typename S, typename V> \
  static void fields(S&, V&) {}
