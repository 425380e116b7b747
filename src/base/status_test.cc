#include "myelin/base/status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <set>
#include <string>

namespace myelin {
namespace {

TEST(Status, DefaultIsOkAndCheap) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.to_string(), "ok");
  static_assert(sizeof(Status) == sizeof(void*), "an ok Status must be one pointer");
}

TEST(Status, ErrorKeepsCodeAndMessage) {
  Status s = invalid_argument("--cores: must be >= 1, got 0");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.to_string(), "invalid_argument: --cores: must be >= 1, got 0");
}

TEST(Status, OkCodeWithMessageIsOk) { EXPECT_TRUE(Status(ErrorCode::kOk, "ignored").ok()); }

TEST(Status, CopyIsDeepAndEqual) {
  Status a = not_found("queue 'q'");
  Status b = a;
  EXPECT_EQ(a, b);
  Status c = std::move(b).with_context("declare");
  EXPECT_EQ(c.message(), "declare: queue 'q'");
  EXPECT_EQ(a.message(), "queue 'q'");  // the copy was not shared
}

TEST(Status, WithContextOnOkStaysOk) { EXPECT_TRUE(Status().with_context("anything").ok()); }

TEST(Status, ContextChainsOutward) {
  Status s = parse_error("bad varint").with_context("node 'gemm_3'").with_context("model.onnx");
  EXPECT_EQ(s.to_string(), "parse_error: model.onnx: node 'gemm_3': bad varint");
}

TEST(Status, ErrnoErrorNamesWhatAndWhy) {
  Status s = errno_error("open model.onnx", ENOENT);
  EXPECT_EQ(s.code(), ErrorCode::kIoError);
  EXPECT_EQ(s.message(), "open model.onnx: No such file or directory");
}

TEST(ErrorCode, EveryCodeHasAUniqueName) {
  std::set<std::string_view> names;
#define MYELIN_X_CHECK(e, v, name, meaning)     \
  EXPECT_EQ(to_string(ErrorCode::e), name);     \
  EXPECT_FALSE(describe(ErrorCode::e).empty()); \
  EXPECT_TRUE(names.insert(to_string(ErrorCode::e)).second);
  MYELIN_ERROR_CODES(MYELIN_X_CHECK)
#undef MYELIN_X_CHECK
  EXPECT_EQ(to_string(static_cast<ErrorCode>(200)), "unknown");
}

Status fails_at(int step, int fail_step) {
  return step == fail_step ? out_of_range("step " + std::to_string(step)) : Status();
}

Status run_steps(int fail_step, int& reached) {
  for (int i = 0; i < 3; ++i) {
    reached = i;
    MYELIN_RETURN_IF_ERROR(fails_at(i, fail_step));
  }
  reached = 3;
  return {};
}

TEST(Status, ReturnIfErrorStopsAtTheFirstError) {
  int reached = -1;
  EXPECT_TRUE(run_steps(-1, reached).ok());
  EXPECT_EQ(reached, 3);
  Status s = run_steps(1, reached);
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(s.message(), "step 1");
}

}  // namespace
}  // namespace myelin
