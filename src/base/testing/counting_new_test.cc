// The shared counting operator new counts every form and fails exactly the
// allocation it was asked to fail, once.
#include "src/base/testing/counting_new.h"

#include <gtest/gtest.h>

#include <memory>
#include <new>
#include <vector>

namespace myelin::testing {
namespace {

struct alignas(64) Wide {
  char bytes[64];
};

TEST(CountingNew, CountsPlainArrayAndAlignedForms) {
  if (!kCountingNew) GTEST_SKIP() << "operator new is the sanitizer's here";
  const std::uint64_t before = allocation_count();
  auto one = std::make_unique<int>(1);
  auto many = std::make_unique<int[]>(8);
  auto wide = std::make_unique<Wide>();
  void* volatile raw = ::operator new(16, std::nothrow);  // volatile: the call may not be elided
  ::operator delete(raw);
  EXPECT_EQ(allocation_count() - before, 4u);
}

TEST(CountingNew, FailsTheNthAllocationOnceAndOnlyIt) {
  if (!kCountingNew) GTEST_SKIP() << "operator new is the sanitizer's here";
  std::vector<std::unique_ptr<int>> kept;
  kept.reserve(8);  // so the pushes below allocate only their ints
  const std::uint64_t before = allocation_count();
  fail_nth_allocation(3);
  EXPECT_NO_THROW(kept.push_back(std::make_unique<int>(1)));
  EXPECT_NO_THROW(kept.push_back(std::make_unique<int>(2)));
  EXPECT_FALSE(injected_failure_happened());
  EXPECT_THROW(kept.push_back(std::make_unique<int>(3)), std::bad_alloc);
  EXPECT_TRUE(injected_failure_happened());
  EXPECT_NO_THROW(kept.push_back(std::make_unique<int>(4)));  // once only
  EXPECT_EQ(allocation_count() - before, 4u);
  EXPECT_EQ(kept.size(), 3u);
}

TEST(CountingNew, NothrowFormReturnsNullWhenFailed) {
  if (!kCountingNew) GTEST_SKIP() << "operator new is the sanitizer's here";
  fail_nth_allocation(1);
  void* volatile p = ::operator new(32, std::nothrow);
  EXPECT_EQ(p, nullptr);
  EXPECT_TRUE(injected_failure_happened());
  fail_nth_allocation(0);
}

TEST(CountingNew, ZeroCancelsAnArmedFailure) {
  if (!kCountingNew) GTEST_SKIP() << "operator new is the sanitizer's here";
  fail_nth_allocation(1);
  fail_nth_allocation(0);
  EXPECT_NO_THROW(std::make_unique<int>(5));
  EXPECT_FALSE(injected_failure_happened());
}

}  // namespace
}  // namespace myelin::testing
