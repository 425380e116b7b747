// Zero heap allocations per message in steady state, proved by counting
// every operator new and every OpenSSL allocation (CRYPTO_set_mem_functions)
// while established sessions exchange messages of each benchmark size.
#include <gtest/gtest.h>
#include <openssl/crypto.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "myelin/secure/tensor_frame.h"
#include "src/base/testing/counting_new.h"
#include "src/secure/test_util.h"

namespace {

// OpenSSL's own allocations (operator new is counted by counting_new).
std::atomic<long> g_openssl_allocs{0};

// Every allocation so far: operator new and OpenSSL's.
long allocations() {
  return static_cast<long>(myelin::testing::allocation_count()) + g_openssl_allocs.load();
}

void* count_malloc(std::size_t n, const char*, int) {
  g_openssl_allocs.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n);
}
void* count_realloc(void* p, std::size_t n, const char*, int) {
  g_openssl_allocs.fetch_add(1, std::memory_order_relaxed);
  return std::realloc(p, n);
}
void count_free(void* p, const char*, int) { std::free(p); }

// Must run before OpenSSL allocates anything.
const bool g_hooked = myelin::testing::kCountingNew &&
                      CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free) == 1;

}  // namespace

namespace myelin::secure {
namespace {

struct Sink : SessionHandler {
  std::size_t bytes = 0;
  std::vector<NamedTensor> decoded;
  bool decode = false;
  void on_message(std::span<const std::byte> m) override {
    bytes += m.size();
    if (decode) (void)decode_tensors(m, decoded);
  }
};

TEST(SecureAlloc, SteadyStateSendAndReceiveAllocateNothing) {
  if (!myelin::testing::kCountingNew) GTEST_SKIP() << "allocation counting is off under sanitizers";
  ASSERT_TRUE(g_hooked);
  testing::World w;
  for (std::size_t size : {1536u, 4096u, 393216u, 1048576u}) {
    Sink ih, rh;
    auto i = Session::create(w.initiator(Mode::kMutual, Mode::kMutual), &ih);
    auto r = Session::create(w.responder(Mode::kMutual, Mode::kMutual), &rh);
    ASSERT_TRUE(i && r);
    const MonoTime now = mono_now();
    ASSERT_TRUE((*r)->start(now).ok());
    ASSERT_TRUE((*i)->start(now).ok());
    testing::pump(**i, **r, now);
    ASSERT_TRUE((*i)->established());
    std::vector<std::byte> msg(size, std::byte{7});
    auto round = [&] {
      ASSERT_TRUE((*i)->send(msg, now).ok());
      // Move bytes through the zero-copy input path, in 16 KiB reads.
      auto out = (*i)->output();
      std::size_t off = 0;
      while (off < out.size()) {
        const std::size_t n = std::min<std::size_t>(16384, out.size() - off);
        auto in = (*r)->input_buffer(n);
        std::memcpy(in.data(), out.data() + off, n);
        ASSERT_TRUE((*r)->commit_input(n, now).ok());
        off += n;
      }
      (*i)->consume_output(out.size());
    };
    for (int k = 0; k < 3; ++k) round();  // warm up: buffers reach their working size
    const long before = allocations();
    for (int k = 0; k < 20; ++k) round();
    EXPECT_EQ(allocations() - before, 0) << size << "-byte messages";
    EXPECT_EQ(rh.bytes, 23 * size);
  }
}

TEST(SecureAlloc, TensorFramingReusesItsBuffers) {
  if (!myelin::testing::kCountingNew) GTEST_SKIP() << "allocation counting is off under sanitizers";
  std::vector<float> data(384, 1.0f);
  const NamedTensor t{"embedding", TensorView::of<float>(data, Shape{1, 384})};
  std::vector<std::byte> scratch;
  std::vector<std::span<const std::byte>> parts;
  std::vector<NamedTensor> decoded;
  auto msg = encode_tensors({&t, 1});
  ASSERT_TRUE(msg);
  ASSERT_TRUE(frame_tensors({&t, 1}, scratch, parts).ok());
  ASSERT_TRUE(decode_tensors(*msg, decoded).ok());
  const long before = allocations();
  for (int k = 0; k < 100; ++k) {
    ASSERT_TRUE(frame_tensors({&t, 1}, scratch, parts).ok());
    ASSERT_TRUE(decode_tensors(*msg, decoded).ok());
  }
  EXPECT_EQ(allocations() - before, 0);
}

}  // namespace
}  // namespace myelin::secure
