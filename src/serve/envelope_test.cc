// The inference envelope: the documented example byte for byte, round
// trips, and the errors a decoder must give (field and offset).
#include "myelin/serve/envelope.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace myelin::serve {
namespace {

std::vector<std::byte> hex(std::string_view h) {
  std::vector<std::byte> out;
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < h.size();) {
    if (h[i] == ' ') {
      ++i;
      continue;
    }
    out.push_back(std::byte((nib(h[i]) << 4) | nib(h[i + 1])));
    i += 2;
  }
  return out;
}

const float kX[2] = {1.0F, 2.0F};

RequestEnvelope example() {
  RequestEnvelope r;
  r.id = 7;
  r.model = "linear";
  r.outputs = {"y"};
  r.inputs = {{"X", TensorView{DType::kF32, Shape{1, 2}, std::as_bytes(std::span(kX))}}};
  return r;
}

// The example of docs/serving.md, "The inference envelope".
constexpr std::string_view kExampleHex =
    "4d535251 01 00 0700000000000000 0000000000000000"
    " 0600 6c696e656172 0000 0100 0100 79"
    " 01000000 0100 58 01 02 0100000000000000 0200000000000000 0800000000000000"
    " 0000803f 00000040";

TEST(Envelope, RequestMatchesTheDocumentedExample) {
  auto bytes = encode_request(example());
  ASSERT_TRUE(bytes) << bytes.error().to_string();
  EXPECT_EQ(*bytes, hex(kExampleHex));
  RequestEnvelope back;
  ASSERT_TRUE(decode_request(*bytes, back).ok());
  EXPECT_EQ(back.id, 7u);
  EXPECT_EQ(back.model, "linear");
  EXPECT_TRUE(back.version.empty());
  EXPECT_EQ(back.timeout_us, 0u);
  ASSERT_EQ(back.outputs.size(), 1u);
  EXPECT_EQ(back.outputs[0], "y");
  ASSERT_EQ(back.inputs.size(), 1u);
  EXPECT_EQ(back.inputs[0].name, "X");
  EXPECT_EQ(back.inputs[0].tensor.shape, (Shape{1, 2}));
  float x[2];
  std::memcpy(x, back.inputs[0].tensor.data.data(), sizeof(x));  // the view may be unaligned
  EXPECT_EQ(x[1], 2.0F);
  EXPECT_EQ(request_id_of(*bytes), 7u);
}

TEST(Envelope, RequestErrorsNameTheFieldAndOffset) {
  const auto good = hex(kExampleHex);
  struct Case {
    const char* what;
    std::vector<std::byte> bytes;
    const char* expect;
  };
  auto with = [&](std::size_t at, std::uint8_t v) {
    auto b = good;
    b[at] = std::byte{v};
    return b;
  };
  const Case cases[] = {
      {"magic", with(3, 'X'), "magic at byte 0"},
      {"version", with(4, 2), "version at byte 4: 2, expected 1"},
      {"flags", with(5, 1), "flags at byte 5"},
      {"model length", with(22, 0), "model at byte 22: length 0 outside [1, 255]"},
      {"model utf-8", with(24, 0xff), "model at byte 22: not valid UTF-8"},
      {"outputs", with(32, 65), "n_outputs at byte 32: 65 above 64"},
      {"truncated", std::vector<std::byte>(good.begin(), good.begin() + 10), "id at byte 6"},
      {"inputs", std::vector<std::byte>(good.begin(), good.end() - 1), "inputs at byte 37"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    RequestEnvelope r;
    const Status s = decode_request(c.bytes, r);
    EXPECT_EQ(s.code(), ErrorCode::kParseError);
    EXPECT_NE(s.message().find(c.expect), std::string_view::npos) << s.to_string();
  }
  // The id is still readable for the error reply once 14 bytes are there.
  EXPECT_EQ(request_id_of(with(5, 1)), 7u);
  EXPECT_EQ(request_id_of(std::span(good).first(13)), 0u);
}

TEST(Envelope, EncodeRefusesWhatDecodeWouldReject) {
  RequestEnvelope r = example();
  r.model = "";
  EXPECT_EQ(encode_request(r).error().code(), ErrorCode::kInvalidArgument);
  r = example();
  std::vector<std::string> names(65, "o");
  r.outputs.assign(names.begin(), names.end());
  EXPECT_EQ(encode_request(r).error().code(), ErrorCode::kInvalidArgument);
}

TEST(Envelope, RepliesRoundTrip) {
  const float y[3] = {0.25F, 0.5F, 0.25F};
  ReplyEnvelope ok;
  ok.id = 0xfedcba9876543210ULL;
  ok.outputs = {
      {"probabilities", TensorView{DType::kF32, Shape{1, 3}, std::as_bytes(std::span(y))}}};
  auto bytes = encode_reply(ok);
  ASSERT_TRUE(bytes);
  ReplyEnvelope back;
  ASSERT_TRUE(decode_reply(*bytes, back).ok());
  EXPECT_EQ(back.id, ok.id);
  EXPECT_EQ(back.code, ReplyCode::kOk);
  ASSERT_EQ(back.outputs.size(), 1u);
  EXPECT_EQ(back.outputs[0].name, "probabilities");

  ReplyEnvelope err;
  err.id = 9;
  err.code = ReplyCode::kNotFound;
  err.message = "model 'nope': not found";
  bytes = encode_reply(err);
  ASSERT_TRUE(bytes);
  EXPECT_EQ((*bytes)[5], std::byte{2});
  ASSERT_TRUE(decode_reply(*bytes, back).ok());
  EXPECT_EQ(back.code, ReplyCode::kNotFound);
  EXPECT_EQ(back.message, "model 'nope': not found");
  EXPECT_TRUE(back.outputs.empty());
  // A reply is not a request, and the other way round.
  RequestEnvelope r;
  EXPECT_FALSE(decode_request(*bytes, r).ok());
  EXPECT_FALSE(decode_reply(hex(kExampleHex), back).ok());
}

TEST(Envelope, LongErrorMessagesAreCutAtACharacterBoundary) {
  std::string msg(kMaxReplyMessage - 1, 'a');
  msg += "\xc3\xa9";  // é straddles the limit
  ReplyEnvelope err;
  err.code = ReplyCode::kInternal;
  err.message = msg;
  auto bytes = encode_reply(err);
  ASSERT_TRUE(bytes);
  ReplyEnvelope back;
  ASSERT_TRUE(decode_reply(*bytes, back).ok());
  EXPECT_EQ(back.message.size(), kMaxReplyMessage - 1);
}

TEST(Envelope, ReplyCodesFollowTheStatus) {
  EXPECT_EQ(reply_code_for(invalid_argument("x")), ReplyCode::kBadRequest);
  EXPECT_EQ(reply_code_for(not_found("x")), ReplyCode::kNotFound);
  EXPECT_EQ(reply_code_for(resource_exhausted("x")), ReplyCode::kUnavailable);
  EXPECT_EQ(reply_code_for(deadline_exceeded("x")), ReplyCode::kDeadlineExceeded);
  EXPECT_EQ(reply_code_for(internal_error("x")), ReplyCode::kInternal);
  EXPECT_EQ(to_string(ReplyCode::kDeadlineExceeded), "deadline_exceeded");
}

}  // namespace
}  // namespace myelin::serve
