// Fuzzes the handshake state machine. The first byte picks the attack:
//   0: the input is the stream a responder receives (Hello parsing, mode and
//      suite negotiation, then whatever follows);
//   1: an initiator sends a real Hello, then receives the input as the
//      responder's reply (Response parsing, key agreement with arbitrary
//      keys, AEAD opening);
//   2: a real mutual handshake in which the input's pairs (message index,
//      position, xor) alter the messages in flight.
// Whatever happens, no side may deliver a message, and the corrupted runs
// must not end with both sides established.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "myelin/secure/session.h"

namespace {

using namespace myelin;
using namespace myelin::secure;

struct Handler : SessionHandler {
  bool got_message = false;
  void on_message(std::span<const std::byte>) override { got_message = true; }
};

struct World {
  std::vector<std::byte> key = to_bytes("fuzz-key");
  MockProvider provider{key, "peer", {{"code", to_bytes("v1")}}};
  MockVerifier verifier{key};
  SessionConfig config(Role role) const {
    SessionConfig c;
    c.role = role;
    c.min_mode = Mode::kNone;
    c.max_mode = Mode::kMutual;
    c.provider = &provider;
    c.verifier = &verifier;
    c.policy.rules = {{"code", {to_bytes("v1")}}};
    c.max_record = 1024;
    return c;
  }
};

const World& world() {
  static const World w;
  return w;
}

std::vector<std::byte> take(Session& s) {
  std::vector<std::byte> out(s.output().begin(), s.output().end());
  s.consume_output(out.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const MonoTime now = MonoTime(std::chrono::seconds(5));
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  Handler ih, rh;
  auto i = Session::create(world().config(Role::kInitiator), &ih);
  auto r = Session::create(world().config(Role::kResponder), &rh);
  if (!i || !r) std::abort();
  Session& init = **i;
  Session& resp = **r;
  switch (data[0] % 3) {
    case 0:
      (void)resp.start(now);
      (void)resp.receive(in, now);
      break;
    case 1:
      (void)init.start(now);
      (void)take(init);
      (void)init.receive(in, now);
      break;
    default: {
      (void)resp.start(now);
      (void)init.start(now);
      Session* from = &init;
      Session* to = &resp;
      bool altered = false;
      for (int msg = 0; msg < 4; ++msg) {
        auto bytes = take(*from);
        const auto original = bytes;
        for (std::size_t k = 0; k + 3 <= in.size(); k += 3) {
          const auto which = std::to_integer<unsigned>(in[k]) % 4;
          const auto pos = std::to_integer<std::size_t>(in[k + 1]) * 3;
          if (which == static_cast<unsigned>(msg) && pos < bytes.size()) bytes[pos] ^= in[k + 2];
        }
        // Compared, not counted: two edits of one byte can cancel out.
        altered = altered || bytes != original;
        if (to->state() != SessionState::kClosed) (void)to->receive(bytes, now);
        std::swap(from, to);
      }
      if (altered && init.established() && resp.established()) std::abort();
      break;
    }
  }
  if (ih.got_message || rh.got_message) std::abort();
  return 0;
}
