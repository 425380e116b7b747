// Clients of `myelin serve`'s message front ends: SecureClient, the MSC1
// path (TCP or Unix socket), here; AmqpClient, the RabbitMQ path, in
// amqp_client.h. Both speak the inference envelope (envelope.h).
//
// SecureClient is blocking and pipelines: send() any number of requests,
// then receive() their replies, which come back in any order with their
// ids; infer() does one of each. Not thread-safe: one thread at a time
// (use one client per thread for concurrency).
//
// ChannelSecurity builds the MSC1 configurations (and owns the attestation
// provider and verifier they borrow) for the kinds the CLI offers: "none"
// (mode none, development only), "mock" (tests: the responder attests
// with the mock format of docs/secure-channel.md section 6, under the key
// kMockAttestationKey; the initiator requires measurement "code" =
// "myelin-serve"), and the TEE kinds "snp" and "tdx" (docs/attestation.md):
// a server attests through the guest's device (/dev/sev-guest, configfs-tsm)
// and a client requires evidence of that platform and verifies it by an
// attestation policy, with its collateral, at the time its clock gives.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/base/tensor.h"
#include "myelin/secure/attestation.h"
#include "myelin/secure/attestation_policy.h"
#include "myelin/secure/channel.h"
#include "myelin/serve/envelope.h"

namespace myelin::serve {

inline constexpr std::string_view kMockAttestationKey = "myelin mock attestation key (tests only)";

struct SecurityConfig {
  std::string kind;  // "none", "mock", "snp" or "tdx"
  // Responder (server), snp/tdx: where the guest's attestation device is.
  std::string sev_guest_device = "/dev/sev-guest";
  std::string tsm_report_root = "/sys/kernel/config/tsm/report";
  // Initiator (client), snp/tdx: the policy (this object, else the file),
  // which must accept the platform; the collateral directory overrides the
  // policy's.
  std::optional<secure::AttestationPolicy> policy;
  std::string policy_file;
  std::string collateral_dir;
  // The verification time (default: the system clock).
  std::function<std::chrono::sys_seconds()> now;
  // Tests only: a provider that replaces the device (recorded evidence), and
  // recorded REPORT_DATA that replaces the session binding in the verifier
  // (which disables the binding's freshness).
  std::shared_ptr<const secure::AttestationProvider> test_provider;
  std::optional<std::array<std::byte, 64>> test_recorded_report_data;
};

class ChannelSecurity {
 public:
  // kind: "none" or "mock" (both sides from one object).
  static Result<std::unique_ptr<ChannelSecurity>> create(std::string_view kind);
  // The server's side of `config`: for snp/tdx, opens the device and fails
  // with the reason when it is absent.
  static Result<std::unique_ptr<ChannelSecurity>> create_responder(const SecurityConfig& config);
  // The client's side: for snp/tdx, loads the policy and its collateral.
  static Result<std::unique_ptr<ChannelSecurity>> create_initiator(const SecurityConfig& config);
  // Borrow this object's provider/verifier: keep it alive while they are used.
  [[nodiscard]] secure::SessionConfig responder() const;
  [[nodiscard]] secure::SessionConfig initiator() const;

 private:
  ChannelSecurity() = default;
  bool mock_ = false;
  std::shared_ptr<const secure::AttestationProvider> provider_;
  std::unique_ptr<secure::AttestationVerifier> verifier_;
};

// An output of a reply, owned (and so aligned as std::vector aligns).
struct ReplyTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::vector<std::byte> data;
};

struct InferReply {
  std::uint64_t id = 0;
  ReplyCode code = ReplyCode::kOk;
  std::string message;  // when code != kOk
  std::vector<ReplyTensor> outputs;
};

// A reply envelope's bytes as an owned InferReply (what every client
// returns); errors name the field and offset, as decode_reply's do.
Result<InferReply> decode_infer_reply(std::span<const std::byte> message);

class SecureClient {
 public:
  // target: "HOST:PORT" or "unix:PATH". Runs the handshake.
  static Result<std::unique_ptr<SecureClient>> connect(std::string_view target,
                                                       secure::SessionConfig session,
                                                       Nanos timeout = std::chrono::seconds(10));
  // Sends one request (its id is the caller's choice; replies carry it).
  Status send(const RequestEnvelope& request, Nanos timeout = std::chrono::seconds(10));
  // Sends any bytes as one message: tests and tools that probe the server.
  Status send_raw(std::span<const std::byte> message, Nanos timeout = std::chrono::seconds(10));
  // The next reply, whichever request it answers.
  Result<InferReply> receive(Nanos timeout = std::chrono::seconds(10));
  // send() then receive(); fails if the reply's id is not the request's.
  Result<InferReply> infer(const RequestEnvelope& request,
                           Nanos timeout = std::chrono::seconds(10));
  Status close();

  [[nodiscard]] const secure::SessionInfo& info() const noexcept { return channel_->info(); }

 private:
  explicit SecureClient(std::unique_ptr<secure::BlockingChannel> channel)
      : channel_(std::move(channel)) {}
  std::unique_ptr<secure::BlockingChannel> channel_;
};

}  // namespace myelin::serve
