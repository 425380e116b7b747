// Test helpers for the integration tests against the private RabbitMQ node
// that scripts/rabbitmq starts (CTest starts it as a fixture). There is no
// mock broker: without the node these tests fail, loudly, with the reason.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "myelin/amqp/connection.h"

namespace myelin::amqp::testing {

// The URI of the private node: $MYELIN_AMQP_URI, else build/rabbitmq/env.
inline std::string broker_uri() {
  if (const char* uri = std::getenv("MYELIN_AMQP_URI"); uri != nullptr && *uri != '\0') {
    return uri;
  }
  const char* src = std::getenv("MYELIN_SOURCE_DIR");
  const std::string path = std::string(src ? src : ".") + "/build/rabbitmq/env";
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MYELIN_AMQP_URI=", 0) == 0) return line.substr(16);
  }
  return "";
}

inline ConnectionConfig broker_config() {
  const std::string uri = broker_uri();
  EXPECT_FALSE(uri.empty()) << "no private RabbitMQ: run `scripts/rabbitmq start` (CTest's "
                               "amqp_broker fixture does) or set MYELIN_AMQP_URI";
  auto c = ConnectionConfig::from_uri(uri.empty() ? "amqp://127.0.0.1:1/" : uri);
  EXPECT_TRUE(c) << c.error().to_string();
  return c ? *c : ConnectionConfig{};
}

inline std::shared_ptr<Connection> connect_or_fail(ConnectionConfig config = broker_config()) {
  auto c = Connection::connect(std::move(config));
  EXPECT_TRUE(c) << c.error().to_string();
  return c ? *c : nullptr;
}

// A queue name no other test (or earlier run) uses.
inline std::string unique_name(const std::string& stem) {
  static std::atomic<int> n{0};
  return "myelin-test-" + stem + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(n.fetch_add(1)) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

}  // namespace myelin::amqp::testing
