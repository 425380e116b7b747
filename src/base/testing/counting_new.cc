// The replacement operator new/delete behind counting_new.h.
#include "src/base/testing/counting_new.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace myelin::testing {
namespace {

std::atomic<std::uint64_t> g_count{0};
// Allocations left before the injected failure; 0 when none is armed.
std::atomic<std::uint64_t> g_fail_countdown{0};
std::atomic<bool> g_failed{false};

// Counts one allocation; true when this one is to fail.
// Unused under the sanitizers, where operator new is theirs.
[[maybe_unused]] bool count_one() noexcept {
  g_count.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t left = g_fail_countdown.load(std::memory_order_relaxed);
  while (left != 0) {
    if (g_fail_countdown.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) {
      if (left != 1) return false;
      g_failed.store(true, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

}  // namespace

std::uint64_t allocation_count() noexcept { return g_count.load(std::memory_order_relaxed); }

void fail_nth_allocation(std::uint64_t n) noexcept {
  g_failed.store(false, std::memory_order_relaxed);
  g_fail_countdown.store(n, std::memory_order_relaxed);
}

bool injected_failure_happened() noexcept { return g_failed.load(std::memory_order_relaxed); }

}  // namespace myelin::testing

#if MYELIN_COUNTING_NEW
// GCC pairs a replaced operator new with free() and warns; they match here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n) {
  if (myelin::testing::count_one()) throw std::bad_alloc();
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (myelin::testing::count_one()) throw std::bad_alloc();
  const auto align = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return ::operator new(n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return ::operator new(n, std::nothrow);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#endif
