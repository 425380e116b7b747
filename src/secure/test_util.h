// Test helpers: two sessions wired back to back in memory.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "myelin/secure/session.h"

namespace myelin::secure::testing {

inline std::vector<std::byte> hex(std::string_view h) {
  std::vector<std::byte> out;
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
    if (h[i] == ' ') {
      --i;
      continue;
    }
    out.push_back(std::byte((nib(h[i]) << 4) | nib(h[i + 1])));
  }
  return out;
}

struct Recorder : SessionHandler {
  std::vector<std::vector<std::byte>> messages;
  bool established = false;
  bool closed = false;
  Status reason;
  SessionInfo info;
  void on_established(const SessionInfo& i) override {
    established = true;
    info = i;
  }
  void on_message(std::span<const std::byte> m) override {
    messages.emplace_back(m.begin(), m.end());
  }
  void on_closed(const Status& r) override {
    closed = true;
    reason = r;
  }
};

// The attestation world of the tests: a mock key, a responder that measures
// "code" = "server-v1", an initiator that measures "code" = "client-v1".
struct World {
  std::vector<std::byte> key = to_bytes("mock-test-key");
  MockProvider server_provider{key, "server", {{"code", to_bytes("server-v1")}}};
  MockProvider client_provider{key, "client", {{"code", to_bytes("client-v1")}}};
  MockVerifier verifier{key};

  SessionConfig initiator(Mode min, Mode max) const {
    SessionConfig c;
    c.role = Role::kInitiator;
    c.min_mode = min;
    c.max_mode = max;
    c.verifier = &verifier;
    c.provider = &client_provider;
    c.policy.rules = {{"code", {to_bytes("server-v1")}}};
    return c;
  }
  SessionConfig responder(Mode min, Mode max) const {
    SessionConfig c;
    c.role = Role::kResponder;
    c.min_mode = min;
    c.max_mode = max;
    c.verifier = &verifier;
    c.provider = &server_provider;
    c.policy.rules = {{"code", {to_bytes("client-v1")}}};
    return c;
  }
};

// Moves every byte from one session's output into the other's input until
// neither has anything to send. Returns how many frames-worth of calls ran.
inline void pump(Session& a, Session& b, MonoTime now) {
  for (int guard = 0; guard < 1000; ++guard) {
    auto oa = a.output();
    auto ob = b.output();
    if (oa.empty() && ob.empty()) return;
    if (!oa.empty()) {
      std::vector<std::byte> copy(oa.begin(), oa.end());
      a.consume_output(copy.size());
      if (b.state() != SessionState::kClosed) (void)b.receive(copy, now);
    }
    if (!ob.empty()) {
      std::vector<std::byte> copy(ob.begin(), ob.end());
      b.consume_output(copy.size());
      if (a.state() != SessionState::kClosed) (void)a.receive(copy, now);
    }
  }
  FAIL() << "pump did not settle";
}

struct Pair {
  Recorder ih, rh;
  std::unique_ptr<Session> i, r;
  MonoTime now = MonoTime(std::chrono::seconds(100));

  Pair(SessionConfig ic, SessionConfig rc) {
    auto ir = Session::create(std::move(ic), &ih);
    auto rr = Session::create(std::move(rc), &rh);
    EXPECT_TRUE(ir.has_value()) << ir.error().to_string();
    EXPECT_TRUE(rr.has_value()) << rr.error().to_string();
    if (ir) i = std::move(*ir);
    if (rr) r = std::move(*rr);
  }
  void handshake() {
    ASSERT_TRUE(r->start(now).ok());
    ASSERT_TRUE(i->start(now).ok());
    pump(*i, *r, now);
  }
};

}  // namespace myelin::secure::testing
