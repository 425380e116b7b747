// SecureClient and ChannelSecurity (include/myelin/serve/client.h).
#include "myelin/serve/client.h"

#include <string>

#include "myelin/secure/tee_provider.h"

namespace myelin::serve {
namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

}  // namespace

Result<std::unique_ptr<ChannelSecurity>> ChannelSecurity::create(std::string_view kind) {
  std::unique_ptr<ChannelSecurity> c(new ChannelSecurity());
  if (kind == "mock") {
    c->mock_ = true;
    c->provider_ = std::make_unique<secure::MockProvider>(
        bytes_of(kMockAttestationKey), "myelin-serve",
        std::vector<secure::Measurement>{{"code", bytes_of("myelin-serve")}});
    c->verifier_ = std::make_unique<secure::MockVerifier>(bytes_of(kMockAttestationKey));
  } else if (kind != "none") {
    return invalid_argument("attestation: unknown kind '" + std::string(kind) +
                            "' (expected mock or none)");
  }
  return c;
}

Result<std::unique_ptr<ChannelSecurity>> ChannelSecurity::create_responder(
    const SecurityConfig& config) {
  if (config.kind != "snp" && config.kind != "tdx") {
    if (config.test_provider) {
      return invalid_argument("attestation: a test provider needs kind snp or tdx");
    }
    return create(config.kind);
  }
  std::unique_ptr<ChannelSecurity> c(new ChannelSecurity());
  if (config.test_provider) {
    c->provider_ = config.test_provider;
  } else if (config.kind == "snp") {
    secure::SevGuestProvider::Options o;
    o.device = config.sev_guest_device;
    MYELIN_ASSIGN_OR_RETURN(c->provider_, secure::SevGuestProvider::open(std::move(o)));
  } else {
    secure::TsmReportProvider::Options o;
    o.root = config.tsm_report_root;
    MYELIN_ASSIGN_OR_RETURN(c->provider_, secure::TsmReportProvider::open(std::move(o)));
  }
  return c;
}

Result<std::unique_ptr<ChannelSecurity>> ChannelSecurity::create_initiator(
    const SecurityConfig& config) {
  if (config.kind != "snp" && config.kind != "tdx") {
    if (config.policy || !config.policy_file.empty() || config.test_recorded_report_data) {
      return invalid_argument("attestation: a policy applies to kinds snp and tdx, not '" +
                              config.kind + "'");
    }
    return create(config.kind);
  }
  secure::AttestationPolicy policy;
  if (config.policy) {
    policy = *config.policy;
  } else if (!config.policy_file.empty()) {
    MYELIN_ASSIGN_OR_RETURN(policy, secure::load_attestation_policy(config.policy_file));
  } else {
    return invalid_argument("attestation " + config.kind +
                            ": a client needs an attestation policy (--policy FILE)");
  }
  const auto platform = config.kind == "snp" ? secure::Platform::kSevSnp : secure::Platform::kTdx;
  if (!policy.accepts(platform)) {
    return invalid_argument(
        "attestation " + config.kind + ": the policy" +
        (config.policy_file.empty() ? std::string() : " " + config.policy_file) +
        " does not accept " + std::string(secure::to_string(platform)));
  }
  // The client requires this platform: evidence of another is refused.
  policy.platforms = {platform};
  secure::PolicyVerifier::Options o;
  o.collateral_dir = config.collateral_dir;
  o.now = config.now;
  o.recorded_report_data = config.test_recorded_report_data;
  std::unique_ptr<ChannelSecurity> c(new ChannelSecurity());
  MYELIN_ASSIGN_OR_RETURN(c->verifier_, secure::PolicyVerifier::create(std::move(policy), o));
  return c;
}

secure::SessionConfig ChannelSecurity::responder() const {
  secure::SessionConfig c;
  c.role = secure::Role::kResponder;
  c.min_mode = provider_ ? secure::Mode::kResponder : secure::Mode::kNone;
  c.max_mode = c.min_mode;
  c.provider = provider_.get();
  return c;
}

secure::SessionConfig ChannelSecurity::initiator() const {
  secure::SessionConfig c;
  c.role = secure::Role::kInitiator;
  c.min_mode = verifier_ ? secure::Mode::kResponder : secure::Mode::kNone;
  c.max_mode = c.min_mode;
  c.verifier = verifier_.get();
  if (mock_) c.policy.rules = {{"code", {bytes_of("myelin-serve")}}};
  return c;
}

Result<std::unique_ptr<SecureClient>> SecureClient::connect(std::string_view target,
                                                            secure::SessionConfig session,
                                                            Nanos timeout) {
  std::unique_ptr<net::Stream> stream;
  if (target.starts_with("unix:")) {
    MYELIN_ASSIGN_OR_RETURN(stream, net::connect_unix(std::string(target.substr(5)), timeout));
  } else {
    const std::size_t colon = target.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == target.size()) {
      return invalid_argument("secure client: target '" + std::string(target) +
                              "' is not HOST:PORT or unix:PATH");
    }
    const std::string port_text(target.substr(colon + 1));
    int port = 0;
    for (char ch : port_text) {
      if (ch < '0' || ch > '9' || port > 65535) {
        port = -1;
        break;
      }
      port = port * 10 + (ch - '0');
    }
    if (port <= 0 || port > 65535) {
      return invalid_argument("secure client: '" + port_text + "' in '" + std::string(target) +
                              "' is not a port (1..65535)");
    }
    std::string host(target.substr(0, colon));
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    MYELIN_ASSIGN_OR_RETURN(stream,
                            net::connect_tcp(host, static_cast<std::uint16_t>(port), timeout));
  }
  session.role = secure::Role::kInitiator;
  MYELIN_ASSIGN_OR_RETURN(auto channel, secure::BlockingChannel::handshake(
                                            std::move(stream), std::move(session), timeout));
  return std::unique_ptr<SecureClient>(new SecureClient(std::move(channel)));
}

Status SecureClient::send(const RequestEnvelope& request, Nanos timeout) {
  MYELIN_ASSIGN_OR_RETURN(std::vector<std::byte> bytes, encode_request(request));
  return channel_->send(bytes, timeout);
}

Status SecureClient::send_raw(std::span<const std::byte> message, Nanos timeout) {
  return channel_->send(message, timeout);
}

Result<InferReply> decode_infer_reply(std::span<const std::byte> message) {
  ReplyEnvelope env;
  MYELIN_RETURN_IF_ERROR(decode_reply(message, env));
  InferReply reply;
  reply.id = env.id;
  reply.code = env.code;
  reply.message = std::string(env.message);
  reply.outputs.reserve(env.outputs.size());
  for (const secure::NamedTensor& t : env.outputs) {
    reply.outputs.push_back({std::string(t.name), t.tensor.dtype, t.tensor.shape,
                             std::vector<std::byte>(t.tensor.data.begin(), t.tensor.data.end())});
  }
  return reply;
}

Result<InferReply> SecureClient::receive(Nanos timeout) {
  MYELIN_ASSIGN_OR_RETURN(std::vector<std::byte> message, channel_->receive_copy(timeout));
  return decode_infer_reply(message);
}

Result<InferReply> SecureClient::infer(const RequestEnvelope& request, Nanos timeout) {
  MYELIN_RETURN_IF_ERROR(send(request, timeout));
  MYELIN_ASSIGN_OR_RETURN(InferReply reply, receive(timeout));
  if (reply.id != request.id) {
    return protocol_error("secure client: reply id " + std::to_string(reply.id) +
                          " answers no request of infer(), which sent id " +
                          std::to_string(request.id));
  }
  return reply;
}

Status SecureClient::close() { return channel_->close(); }

}  // namespace myelin::serve
