#include "bench/inference_ort_capi.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

namespace myelin::bench {
namespace {

// ---- Our own declarations of the part of ONNX Runtime's C API we call.
//
// OrtGetApiBase() returns {GetApi(version), GetVersionString()}; GetApi
// returns a table of function pointers (struct OrtApi in
// onnxruntime_c_api.h). Every slot used here lies in the table's first,
// frozen section ("End of Version 1 - DO NOT MODIFY ABOVE"); later versions
// only append. Slot numbers checked against that header's version-1 section
// and run against onnxruntime-node 1.31.1's libonnxruntime.so.1.
constexpr std::uint32_t kOrtApiVersion = 1;  // all slots below exist since API version 1
enum Slot : std::size_t {
  kGetErrorMessage = 2,
  kCreateEnv = 3,
  kCreateSession = 7,
  kRun = 9,
  kCreateSessionOptions = 10,
  kSetSessionExecutionMode = 13,
  kSetIntraOpNumThreads = 24,
  kSetInterOpNumThreads = 25,
  kSessionGetInputName = 36,
  kSessionGetOutputName = 37,
  kCreateTensorWithDataAsOrtValue = 49,
  kGetTensorMutableData = 51,
  kCreateCpuMemoryInfo = 69,
  kAllocatorFree = 76,
  kGetAllocatorWithDefaultOptions = 78,
  kReleaseEnv = 92,
  kReleaseStatus = 93,
  kReleaseMemoryInfo = 94,
  kReleaseSession = 95,
  kReleaseValue = 96,
  kReleaseSessionOptions = 100,
};
constexpr int kLoggingWarning = 2;  // OrtLoggingLevel ORT_LOGGING_LEVEL_WARNING
constexpr int kArenaAllocator = 1;  // OrtAllocatorType OrtArenaAllocator
constexpr int kMemTypeDefault = 0;  // OrtMemType OrtMemTypeDefault
constexpr int kTensorFloat = 1;     // ONNXTensorElementDataType FLOAT
constexpr int kSequential = 0;      // ExecutionMode ORT_SEQUENTIAL

using Status = void*;  // OrtStatus*; null is success
using Fn = void (*)();
struct ApiBase {
  const Fn* (*get_api)(std::uint32_t version);
  const char* (*get_version_string)();
};
struct Allocator;  // OrtAllocator (opaque here)

class Api {
 public:
  explicit Api(const Fn* t) : t_(t) {}
  template <typename R, typename... A>
  R call(Slot s, A... a) const {
    return reinterpret_cast<R (*)(A...)>(t_[s])(a...);
  }
  // Returns "" on success, else the message (and releases the status).
  std::string check(Status st) const {
    if (st == nullptr) return {};
    std::string msg = call<const char*>(kGetErrorMessage, static_cast<const void*>(st));
    call<void>(kReleaseStatus, st);
    return msg.empty() ? "ONNX Runtime error" : msg;
  }

 private:
  const Fn* t_;
};

class Session final : public OrtCapiSession {
 public:
  explicit Session(const Api& api) : api_(api) {}
  ~Session() override {
    if (in_) api_.call<void>(kReleaseValue, in_);
    if (out_) api_.call<void>(kReleaseValue, out_);
    if (session_) api_.call<void>(kReleaseSession, session_);
    if (mem_) api_.call<void>(kReleaseMemoryInfo, mem_);
  }
  bool operator()() override {
    const char* in_names[] = {in_name_.c_str()};
    const char* out_names[] = {out_name_.c_str()};
    const void* ins[] = {in_};
    void* outs[] = {out_};
    const Status st = api_.call<Status>(kRun, session_, static_cast<const void*>(nullptr),
                                        static_cast<const char* const*>(in_names),
                                        static_cast<const void* const*>(ins), std::size_t{1},
                                        static_cast<const char* const*>(out_names), std::size_t{1},
                                        static_cast<void**>(outs));
    if (st == nullptr) return true;
    error_ = api_.check(st);
    return false;
  }
  const float* output() const override { return y_.data(); }
  const std::string& error() const override { return error_; }

  const Api& api_;
  void* session_ = nullptr;
  void* mem_ = nullptr;
  void* in_ = nullptr;
  void* out_ = nullptr;
  std::string in_name_, out_name_, error_;
  std::vector<float> y_;
};

class Capi final : public OrtCapi {
 public:
  Capi(void* lib, const Fn* table, std::string version)
      : lib_(lib), api_(table), version_(std::move(version)) {}
  ~Capi() override {
    if (env_) api_.call<void>(kReleaseEnv, env_);
    // The library stays loaded: ORT registers process-wide state at load.
    (void)lib_;
  }
  std::string version() const override { return version_; }

  Status init() { return api_.call<Status>(kCreateEnv, kLoggingWarning, "myelin-bench", &env_); }
  const Api& api() const { return api_; }

  Result<std::unique_ptr<OrtCapiSession>> session(
      const std::string& model, const std::vector<std::int64_t>& shape, const float* x,
      const std::vector<std::int64_t>& out_shape) override {
    auto s = std::make_unique<Session>(api_);
    void* opts = nullptr;
    std::string err = api_.check(api_.call<Status>(kCreateSessionOptions, &opts));
    if (err.empty()) err = api_.check(api_.call<Status>(kSetIntraOpNumThreads, opts, 1));
    if (err.empty()) err = api_.check(api_.call<Status>(kSetInterOpNumThreads, opts, 1));
    if (err.empty())
      err = api_.check(api_.call<Status>(kSetSessionExecutionMode, opts, kSequential));
    if (err.empty())
      err = api_.check(api_.call<Status>(kCreateSession, static_cast<const void*>(env_),
                                         model.c_str(), static_cast<const void*>(opts),
                                         &s->session_));
    if (opts) api_.call<void>(kReleaseSessionOptions, opts);
    Allocator* alloc = nullptr;
    if (err.empty()) err = api_.check(api_.call<Status>(kGetAllocatorWithDefaultOptions, &alloc));
    for (int which = 0; which < 2 && err.empty(); ++which) {
      char* name = nullptr;
      err = api_.check(api_.call<Status>(which == 0 ? kSessionGetInputName : kSessionGetOutputName,
                                         static_cast<const void*>(s->session_), std::size_t{0},
                                         alloc, &name));
      if (!err.empty()) break;
      (which == 0 ? s->in_name_ : s->out_name_) = name;
      err = api_.check(api_.call<Status>(kAllocatorFree, alloc, static_cast<void*>(name)));
    }
    if (err.empty())
      err = api_.check(
          api_.call<Status>(kCreateCpuMemoryInfo, kArenaAllocator, kMemTypeDefault, &s->mem_));
    std::size_t in_elems = 1, out_elems = 1;
    for (auto d : shape) in_elems *= static_cast<std::size_t>(d);
    for (auto d : out_shape) out_elems *= static_cast<std::size_t>(d);
    s->y_.assign(out_elems, 0.0f);
    if (err.empty())
      err = api_.check(api_.call<Status>(
          kCreateTensorWithDataAsOrtValue, static_cast<const void*>(s->mem_),
          const_cast<void*>(static_cast<const void*>(x)), in_elems * sizeof(float), shape.data(),
          shape.size(), kTensorFloat, &s->in_));
    if (err.empty())
      err = api_.check(
          api_.call<Status>(kCreateTensorWithDataAsOrtValue, static_cast<const void*>(s->mem_),
                            static_cast<void*>(s->y_.data()), out_elems * sizeof(float),
                            out_shape.data(), out_shape.size(), kTensorFloat, &s->out_));
    if (!err.empty()) return unavailable("ONNX Runtime C API, " + model + ": " + err);
    if (!(*s)()) return unavailable("ONNX Runtime C API, " + model + ": Run: " + s->error());
    return std::unique_ptr<OrtCapiSession>(std::move(s));
  }

 private:
  void* lib_;
  Api api_;
  std::string version_;
  void* env_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<OrtCapi>> OrtCapi::open(const std::string& npm_root) {
  namespace fs = std::filesystem;
  const char* env = std::getenv("MYELIN_ORT_LIB");
  const fs::path path =
      env ? fs::path(env)
          : fs::path(npm_root) / "onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1";
  if (!fs::exists(path))
    return unavailable("libonnxruntime.so not found at " + path.string() +
                       " (scripts/setup-bench-peers installs onnxruntime-node, which ships it)");
  void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) return unavailable(std::string("dlopen: ") + ::dlerror());
  auto* get_base = reinterpret_cast<const ApiBase* (*)()>(::dlsym(lib, "OrtGetApiBase"));
  if (!get_base) return unavailable(path.string() + " has no OrtGetApiBase");
  const ApiBase* base = get_base();
  const Fn* table = base ? base->get_api(kOrtApiVersion) : nullptr;
  if (!table) return unavailable(path.string() + ": GetApi(1) returned null");
  auto capi = std::make_unique<Capi>(lib, table, base->get_version_string());
  if (std::string e = capi->api().check(capi->init()); !e.empty())
    return unavailable("ONNX Runtime CreateEnv: " + e);
  return std::unique_ptr<OrtCapi>(std::move(capi));
}

}  // namespace myelin::bench
