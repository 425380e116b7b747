// scikit-learn cross-checks: models trained by python3-sklearn at build time
// (gen_sklearn_cases.py), converted with models/sk2onnx.py, and compared with
// scikit-learn's own predict / predict_proba on held-out rows.
#include <gtest/gtest.h>

#include <filesystem>

#include "src/model/conformance/conformance.h"

namespace myelin::model {
namespace {

namespace fs = std::filesystem;

class Sklearn : public ::testing::TestWithParam<const char*> {};

TEST_P(Sklearn, MatchesScikitLearnOnHeldOutData) {
  const fs::path dir = fs::path(MYELIN_SKLEARN_CASES) / GetParam();
  ASSERT_TRUE(fs::is_directory(dir)) << dir << " missing: the build generates it";
  // Relative error <= 1e-5; the absolute floor only matters for values
  // within 1e-6 of zero (probabilities of unlikely classes).
  const auto r = conformance::run_case(dir.string(), 1e-5, 1e-6);
  ASSERT_TRUE(r.loaded) << r.load_error;
  EXPECT_TRUE(r.mismatch.empty()) << r.mismatch;
  EXPECT_GE(r.compared, 100u);
}

INSTANTIATE_TEST_SUITE_P(Models, Sklearn,
                         ::testing::Values("linear_regression", "logistic_regression_binary",
                                           "logistic_regression_multiclass",
                                           "gradient_boosting_regressor",
                                           "gradient_boosting_classifier",
                                           "random_forest_regressor", "random_forest_classifier",
                                           "mlp_regressor", "mlp_classifier"));

}  // namespace
}  // namespace myelin::model
