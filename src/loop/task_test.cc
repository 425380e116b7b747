#include "myelin/loop/task.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>

namespace myelin {
namespace {

TEST(Task, SmallLambdaIsInlineAndRuns) {
  int hits = 0;
  auto f = [&hits] { ++hits; };
  static_assert(Task::stores_inline<decltype(f)>());
  Task t(f);
  ASSERT_TRUE(t);
  t();
  t();
  EXPECT_EQ(hits, 2);
}

TEST(Task, LargeCallableFallsBackToHeapAndStillWorks) {
  std::array<char, 200> big{};
  big[199] = 7;
  int seen = 0;
  auto f = [big, &seen] { seen = big[199]; };
  static_assert(!Task::stores_inline<decltype(f)>());
  Task t(f);
  Task moved(std::move(t));
  EXPECT_FALSE(t);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  moved();
  EXPECT_EQ(seen, 7);
}

TEST(Task, MoveOnlyCaptureIsDestroyedExactlyOnce) {
  auto counter = std::make_shared<int>(0);
  std::weak_ptr<int> watch = counter;
  {
    Task a([p = std::move(counter)] { ++*p; });
    Task b(std::move(a));
    Task c;
    c = std::move(b);
    c();
    EXPECT_FALSE(watch.expired());
  }
  EXPECT_TRUE(watch.expired());
}

TEST(Task, ResetDestroysTheCallable) {
  auto p = std::make_shared<int>(1);
  std::weak_ptr<int> watch = p;
  Task t([p = std::move(p)] { (void)p; });
  t.reset();
  EXPECT_FALSE(t);
  EXPECT_TRUE(watch.expired());
}

TEST(Task, NonTriviallyMovableInlineCallableSurvivesRelocation) {
  std::string s = "a string long enough to live on the heap, not in SSO";
  std::string out;
  auto f = [s, &out] { out = s; };
  static_assert(Task::stores_inline<decltype(f)>());
  Task a(f);
  Task b(std::move(a));
  Task c(std::move(b));
  c();
  EXPECT_EQ(out, s);
}

}  // namespace
}  // namespace myelin
