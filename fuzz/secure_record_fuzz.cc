// Fuzzes the record decoder of an established session. The input is a
// program of operations on a real initiator/responder pair:
//   op 0 len data: the initiator sends `data` as a message (valid records)
//   op 1 len data: `data` is delivered raw to the responder (header parsing,
//                  length limits, partial frames)
//   op 2 pos xor:  the initiator's pending output is delivered with one
//                  byte altered (must never be accepted)
//   op 3 n:        the pending output is delivered in pieces of n bytes
//   op 4 s:        time advances s seconds and both sides tick
//   op 5:          the initiator closes normally
//   op 6 b xor:    the pending output joins the bytes a transport holds and
//                  is delivered in place (receive_in_place, budget from b),
//                  one byte altered when xor != 0; what is not taken stays
//                  for the next op 6, as in a ring the session borrows
// Checked: every delivered message is exactly the next one the initiator
// sent; so an altered or injected record is never delivered.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

#include "myelin/secure/session.h"

namespace {

using namespace myelin;
using namespace myelin::secure;

struct Handler : SessionHandler {
  std::deque<std::vector<std::byte>>* expected = nullptr;
  void on_message(std::span<const std::byte> m) override {
    if (expected == nullptr) return;
    if (expected->empty() || expected->front().size() != m.size() ||
        (!m.empty() && std::memcmp(expected->front().data(), m.data(), m.size()) != 0)) {
      std::abort();  // a message that was never sent, or out of order
    }
    expected->pop_front();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<std::byte> key = to_bytes("fuzz-key");
  static const MockProvider provider(key, "peer", {});
  static const MockVerifier verifier(key);
  SessionConfig ic;
  ic.role = Role::kInitiator;
  ic.min_mode = ic.max_mode = Mode::kResponder;
  ic.verifier = &verifier;
  ic.max_record = 1024;
  ic.rekey_records = 5;
  SessionConfig rc = ic;
  rc.role = Role::kResponder;
  rc.provider = &provider;
  rc.verifier = nullptr;
  rc.max_message = 8192;
  std::deque<std::vector<std::byte>> expected;
  Handler ih, rh;
  rh.expected = &expected;
  auto i = Session::create(ic, &ih);
  auto r = Session::create(rc, &rh);
  if (!i || !r) std::abort();
  Session& init = **i;
  Session& resp = **r;
  MonoTime now = MonoTime(std::chrono::seconds(5));
  (void)resp.start(now);
  (void)init.start(now);
  for (int k = 0; k < 4; ++k) {
    auto a = std::vector<std::byte>(init.output().begin(), init.output().end());
    init.consume_output(a.size());
    (void)resp.receive(a, now);
    auto b = std::vector<std::byte>(resp.output().begin(), resp.output().end());
    resp.consume_output(b.size());
    (void)init.receive(b, now);
  }
  if (!init.established() || !resp.established()) std::abort();

  std::vector<std::byte> held;  // op 6: bytes the "transport" still holds
  std::size_t pos = 0;
  auto byte = [&]() -> unsigned { return pos < size ? data[pos++] : 0; };
  while (pos < size && resp.state() != SessionState::kClosed) {
    const unsigned op = byte() % 7;
    if (op == 0 || op == 1) {
      const std::size_t len = std::min<std::size_t>(byte() * 16 + byte(), size - pos);
      const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data + pos), len);
      pos += len;
      if (op == 0) {
        if (init.send(bytes, now).ok()) expected.emplace_back(bytes.begin(), bytes.end());
      } else {
        (void)resp.receive(bytes, now);
      }
    } else if (op == 2 || op == 3) {
      std::vector<std::byte> out(init.output().begin(), init.output().end());
      init.consume_output(out.size());
      const unsigned a = byte(), b = byte();
      if (op == 2 && !out.empty() && b != 0) {
        out[(a * 7) % out.size()] ^= std::byte(b);
      }
      const std::size_t piece = op == 3 ? std::max(1u, a) : out.size();
      for (std::size_t off = 0; off < out.size() && resp.state() != SessionState::kClosed;
           off += piece) {
        (void)resp.receive(std::span(out).subspan(off, std::min(piece, out.size() - off)), now);
      }
    } else if (op == 4) {
      now += std::chrono::seconds(byte());
      (void)init.tick(now);
      (void)resp.tick(now);
    } else if (op == 5) {
      (void)init.close(CloseCode::kNormal, now);
    } else {
      const std::size_t from = held.size();
      held.insert(held.end(), init.output().begin(), init.output().end());
      init.consume_output(held.size() - from);
      const unsigned a = byte(), b = byte();
      if (b != 0 && held.size() > from) held[from + (a * 7) % (held.size() - from)] ^= std::byte(b);
      const std::size_t budget = 1 + a * 64;
      while (!held.empty() && resp.state() != SessionState::kClosed) {
        const Result<std::size_t> took = resp.receive_in_place(held, now, budget);
        if (!took) break;
        if (*took > held.size()) std::abort();  // took bytes it was never offered
        if (*took == 0) break;                  // a partial frame waits for more
        held.erase(held.begin(), held.begin() + static_cast<std::ptrdiff_t>(*took));
      }
    }
  }
  return 0;
}
