// SecureInferenceServer: the MSC1 front end of `myelin serve`.
//
// Accepts MSC1 connections over TCP and/or a Unix socket on one I/O loop
// of its own. Each message on a channel is one request envelope
// (include/myelin/serve/envelope.h, docs/serving.md); each gets exactly one
// reply envelope with its id, through the same batcher as HTTP. Many
// requests may be in flight on one channel; replies leave as they finish,
// in any order. A message that does not decode gets an error reply (with
// the id when it can be read, else 0); the channel stays open.
//
// Threading: create, start and shutdown from one thread (not the I/O
// loop's). Batch completions hop to the I/O loop to be sealed and sent.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/secure/session.h"
#include "myelin/serve/model_repository.h"

namespace myelin::serve {

struct SecureServerOptions {
  std::string host = "127.0.0.1";
  // TCP port to listen on (0: any free port); none: no TCP listener.
  std::optional<std::uint16_t> port;
  // Unix socket path; empty: no Unix listener.
  std::string unix_path;
  // The responder's MSC1 configuration: modes, attestation provider and
  // verifier (borrowed: they must outlive the server), limits.
  secure::SessionConfig session;
  std::size_t max_connections = 4096;
  // Where a request's arrival is stamped (its timeout counts from there);
  // null: the monotonic clock. Borrowed.
  const Clock* clock = nullptr;
};

class SecureInferenceServer {
 public:
  static Result<std::unique_ptr<SecureInferenceServer>> create(SecureServerOptions options,
                                                               ModelRepository& repository);
  ~SecureInferenceServer();  // shutdown()
  SecureInferenceServer(const SecureInferenceServer&) = delete;
  SecureInferenceServer& operator=(const SecureInferenceServer&) = delete;

  // Binds the listeners and starts the I/O loop.
  Status start();
  // The bound TCP port (0 when there is no TCP listener).
  [[nodiscard]] std::uint16_t port() const noexcept;
  // Stops accepting, closes every channel (Close(normal)) and stops the
  // loop; replies still in the batcher are dropped. Idempotent.
  Status shutdown();

  struct Impl;

 private:
  explicit SecureInferenceServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace myelin::serve
