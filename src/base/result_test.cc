#include "myelin/base/result.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace myelin {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("not positive: " + std::to_string(v));
  return v;
}

Result<int> doubled(int v) {
  MYELIN_ASSIGN_OR_RETURN(const int x, parse_positive(v));
  return 2 * x;
}

Status check(int v, int& out) {
  MYELIN_ASSIGN_OR_RETURN(out, parse_positive(v));
  MYELIN_RETURN_IF_ERROR(parse_positive(v - 1));  // a Result works too
  return {};
}

TEST(Result, HoldsValue) {
  Result<int> r = parse_positive(3);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(*r, 3);
  EXPECT_EQ(r.value(), 3);
  EXPECT_TRUE(r.error().ok());
}

TEST(Result, HoldsError) {
  Result<int> r = parse_positive(-1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.value_or(7), 7);
}

TEST(Result, OkStatusBecomesInternalError) {
  Result<int> r = Status();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInternal);
}

TEST(Result, AssignOrReturnPropagates) {
  EXPECT_EQ(*doubled(4), 8);
  EXPECT_EQ(doubled(0).error().message(), "not positive: 0");
  int out = 0;
  EXPECT_TRUE(check(5, out).ok());
  EXPECT_EQ(out, 5);
  EXPECT_EQ(check(1, out).message(), "not positive: 0");
}

TEST(Result, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(9);
  ASSERT_TRUE(r.has_value());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 9);
}

TEST(Result, ArrowReachesMembers) {
  Result<std::string> r = std::string("abc");
  EXPECT_EQ(r->size(), 3u);
}

TEST(ResultDeathTest, ValueOnErrorAbortsWithTheError) {
  Result<int> r = not_found("queue 'q'");
  EXPECT_DEATH({ (void)r.value(); }, "not_found: queue 'q'");
}

}  // namespace
}  // namespace myelin
