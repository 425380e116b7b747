// TreeEnsembleRegressor / TreeEnsembleClassifier → one kTreeEnsemble step
// (plus a post-transform or classifier step).
//
// Every ONNX node mode becomes LEQ, LT or EQ by swapping the children, and
// the NaN route of each node is made explicit (kNanLeftBit), so the kernel
// evaluates one comparison per node whatever the source mode was.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "src/model/onnx_import.h"

namespace myelin::model::detail {
namespace {

constexpr std::uint32_t kMaxTreeDepth = 4096;

struct Mode {
  CompareMode cmp;
  bool swap;  // left = the ONNX false branch
  bool leaf;
};

Result<Mode> parse_mode(const std::string& s) {
  if (s == "BRANCH_LEQ") return Mode{CompareMode::kLeq, false, false};
  if (s == "BRANCH_LT") return Mode{CompareMode::kLt, false, false};
  if (s == "BRANCH_GTE") return Mode{CompareMode::kLt, true, false};
  if (s == "BRANCH_GT") return Mode{CompareMode::kLeq, true, false};
  if (s == "BRANCH_EQ") return Mode{CompareMode::kEq, false, false};
  if (s == "BRANCH_NEQ") return Mode{CompareMode::kEq, true, false};
  if (s == "LEAF") return Mode{CompareMode::kLeq, false, true};
  return invalid_argument("unknown node mode '" + s + "'");
}

using Key = std::pair<std::int64_t, std::int64_t>;  // (tree id, node id)

}  // namespace

Status compile_tree(Importer& im, const onnx::NodeProto& n, bool classifier) {
  if (n.input_size() != 1 || n.output_size() < 1) return invalid_argument("expected 1 input");
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  if (xs.dtype != DType::kF32 || xs.dims.size() != 2)
    return invalid_argument("input has shape " + xs.str() + "; expected [N, features] float");
  const auto nf = static_cast<std::uint32_t>(xs.dims[1]);

  const auto tree_ids = im.attr_ints("nodes_treeids"), node_ids = im.attr_ints("nodes_nodeids");
  const auto feat = im.attr_ints("nodes_featureids"), true_ids = im.attr_ints("nodes_truenodeids"),
             false_ids = im.attr_ints("nodes_falsenodeids");
  const auto modes = im.attr_strings("nodes_modes");
  const auto values = im.attr_floats("nodes_values");
  const auto missing = im.attr_ints("nodes_missing_value_tracks_true");
  const std::size_t nn = tree_ids.size();
  if (nn == 0) return invalid_argument("no tree nodes");
  for (std::size_t len : {node_ids.size(), feat.size(), true_ids.size(), false_ids.size(),
                          modes.size(), values.size()}) {
    if (len != nn)
      return invalid_argument("node attribute arrays differ in length (" + std::to_string(len) +
                              " vs " + std::to_string(nn) + " nodes_treeids)");
  }
  if (!missing.empty() && missing.size() != nn)
    return invalid_argument("nodes_missing_value_tracks_true has the wrong length");

  // Global node index per (tree, node), trees in id order.
  std::map<Key, std::uint32_t> index;
  for (std::size_t k = 0; k < nn; ++k) {
    if (!index.emplace(Key{tree_ids[k], node_ids[k]}, 0).second)
      return invalid_argument("tree " + std::to_string(tree_ids[k]) + " node " +
                              std::to_string(node_ids[k]) + " is defined twice");
  }
  std::uint32_t next = 0;
  for (auto& [key, idx] : index) idx = next++;
  std::vector<std::size_t> attr_of(nn);  // global index -> attribute position
  for (std::size_t k = 0; k < nn; ++k) attr_of[index[{tree_ids[k], node_ids[k]}]] = k;

  std::vector<TreeNode> nodes(nn);
  std::vector<std::uint8_t> node_mode(nn, 0);
  std::vector<bool> is_leaf(nn, false);
  std::set<std::uint8_t> cmp_used;
  bool nan_left_any = false;
  for (std::uint32_t g = 0; g < nn; ++g) {
    const std::size_t k = attr_of[g];
    const std::string where =
        "tree " + std::to_string(tree_ids[k]) + " node " + std::to_string(node_ids[k]);
    auto mode = parse_mode(modes[k]);
    if (!mode) return mode.error().with_context(where);
    if (mode->leaf) {
      nodes[g] = TreeNode{0, 0.0f, {g, g}};
      is_leaf[g] = true;
      continue;
    }
    if (feat[k] < 0 || feat[k] >= nf)
      return invalid_argument(where + ": feature " + std::to_string(feat[k]) +
                              " but the input has " + std::to_string(nf));
    auto child = [&](std::int64_t id) -> Result<std::uint32_t> {
      auto it = index.find({tree_ids[k], id});
      if (it == index.end())
        return invalid_argument(where + ": child node " + std::to_string(id) + " does not exist");
      return it->second;
    };
    MYELIN_ASSIGN_OR_RETURN(const std::uint32_t t, child(true_ids[k]));
    MYELIN_ASSIGN_OR_RETURN(const std::uint32_t f, child(false_ids[k]));
    const bool tracks = !missing.empty() && missing[k] != 0;
    // ONNX: a NaN takes the true branch iff (x CMP t) holds (only NEQ) or the
    // node tracks missing values as true. Our default NaN route is `right`.
    const bool nan_left = mode->swap ? (modes[k] != "BRANCH_NEQ" && !tracks) : tracks;
    nan_left_any = nan_left_any || nan_left;
    nodes[g] = TreeNode{static_cast<std::uint32_t>(feat[k]) | (nan_left ? kNanLeftBit : 0u),
                        values[k],
                        {mode->swap ? f : t, mode->swap ? t : f}};
    node_mode[g] = static_cast<std::uint8_t>(mode->cmp);
    cmp_used.insert(node_mode[g]);
  }

  // Roots and depths. A tree's root is its first-listed node, as in ONNX
  // Runtime and onnx.reference (not the node without a parent): nodes the
  // root does not reach are ignored. A node reached twice is an error.
  std::vector<std::uint32_t> roots, depths;
  std::map<std::int64_t, std::uint32_t> tree_roots;
  for (std::size_t k = 0; k < nn; ++k)
    tree_roots.emplace(tree_ids[k], index[{tree_ids[k], node_ids[k]}]);
  std::vector<std::uint8_t> seen(nn, 0);
  for (const auto& [tid, r] : tree_roots) {
    std::uint32_t depth = 0;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> stack = {{r, 0}};
    while (!stack.empty()) {
      auto [g, d] = stack.back();
      stack.pop_back();
      if (seen[g])
        return invalid_argument("tree " + std::to_string(tid) +
                                " is not a tree (node reached twice)");
      seen[g] = 1;
      depth = std::max(depth, d);
      if (d > kMaxTreeDepth)
        return unimplemented("tree " + std::to_string(tid) + " is deeper than 4096");
      if (!is_leaf[g]) {
        stack.push_back({nodes[g].child[0], d + 1});
        stack.push_back({nodes[g].child[1], d + 1});
      }
    }
    roots.push_back(r);
    depths.push_back(depth);
  }

  // Leaf weights.
  const std::string pfx = classifier ? "class_" : "target_";
  const auto w_tree = im.attr_ints(pfx + "treeids"), w_node = im.attr_ints(pfx + "nodeids"),
             w_id = im.attr_ints(pfx + "ids");
  const auto w_val = im.attr_floats(pfx + "weights");
  if (w_tree.size() != w_node.size() || w_tree.size() != w_id.size() ||
      w_tree.size() != w_val.size())
    return invalid_argument(pfx + "* attribute arrays differ in length");
  std::vector<std::int64_t> labels;
  std::uint32_t nt = 0;
  bool binary = false, second_only = false;
  if (classifier) {
    if (!im.attr_strings("classlabels_strings").empty())
      return unimplemented("string class labels (use classlabels_int64s)");
    labels = im.attr_ints("classlabels_int64s");
    if (labels.empty()) return invalid_argument("no classlabels_int64s");
    std::set<std::int64_t> ids(w_id.begin(), w_id.end());
    binary = labels.size() == 2 && ids.size() == 1;
    // Only the second class carries weights: ONNX Runtime's convention (one
    // score, the first class's is 0). With two base values the spec's
    // per-class scores and argmax apply instead (ORT rewrites the scores).
    second_only = binary && *ids.begin() == 1;
    if (second_only && im.attr_floats("base_values").size() == 2) binary = second_only = false;
    nt = binary ? 1 : static_cast<std::uint32_t>(labels.size());
  } else {
    const std::int64_t targets = im.attr_i("n_targets", 1);
    if (targets < 1 || targets > 65536)
      return invalid_argument("n_targets " + std::to_string(targets) + " is outside [1, 65536]");
    nt = static_cast<std::uint32_t>(targets);
  }
  const std::string agg_s = im.attr_s("aggregate_function", "SUM");
  const Aggregate agg = agg_s == "SUM"       ? Aggregate::kSum
                        : agg_s == "AVERAGE" ? Aggregate::kAverage
                        : agg_s == "MIN"     ? Aggregate::kMin
                        : agg_s == "MAX"     ? Aggregate::kMax
                                             : Aggregate{99};
  if (static_cast<std::uint32_t>(agg) == 99)
    return invalid_argument("aggregate_function '" + agg_s + "'");
  const bool minmax = agg == Aggregate::kMin || agg == Aggregate::kMax;
  std::vector<float> leaf(nn * std::size_t{nt},
                          minmax ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
  bool all_positive = true;
  for (std::size_t w = 0; w < w_tree.size(); ++w) {
    auto it = index.find({w_tree[w], w_node[w]});
    const std::string where = "weight " + std::to_string(w) + " (tree " +
                              std::to_string(w_tree[w]) + " node " + std::to_string(w_node[w]) +
                              ")";
    if (it == index.end()) return invalid_argument(where + ": no such node");
    if (!is_leaf[it->second]) return invalid_argument(where + ": node is not a leaf");
    const std::int64_t t = binary ? 0 : w_id[w];
    if (t < 0 || t >= nt)
      return invalid_argument(where + ": target/class id " + std::to_string(w_id[w]) +
                              " out of range");
    float& slot = leaf[std::size_t{it->second} * nt + static_cast<std::size_t>(t)];
    const float v = w_val[w];
    all_positive = all_positive && v >= 0;
    if (agg == Aggregate::kMin)
      slot = std::isnan(slot) ? v : std::min(slot, v);
    else if (agg == Aggregate::kMax)
      slot = std::isnan(slot) ? v : std::max(slot, v);
    else
      slot += v;
  }
  std::vector<float> base = im.attr_floats("base_values");
  // One base value when only the second class is weighted: ONNX Runtime adds
  // it to the first class's score, which it then never writes (the spec
  // wants one per class, so it is silent here): ignored, as in ORT.
  if (second_only && base.size() == 1) base.clear();
  if (!base.empty() && base.size() != nt)
    return unimplemented(std::to_string(base.size()) + " base_values for " + std::to_string(nt) +
                         " score columns");
  MYELIN_ASSIGN_OR_RETURN(const PostTransform post,
                          parse_post_transform(im.attr_s("post_transform", "NONE")));

  const bool mixed = cmp_used.size() > 1;
  TreeParams p{};
  p.num_trees = static_cast<std::uint32_t>(roots.size());
  p.num_targets = nt;
  p.num_features = nf;
  p.mode =
      static_cast<std::uint32_t>(mixed              ? CompareMode::kMixed
                                 : cmp_used.empty() ? CompareMode::kLeq
                                                    : static_cast<CompareMode>(*cmp_used.begin()));
  p.aggregate = static_cast<std::uint32_t>(agg);
  p.has_nan_left = nan_left_any ? 1 : 0;
  p.roots = im.b.add_array<std::uint32_t>(roots);
  p.depths = im.b.add_array<std::uint32_t>(depths);
  p.nodes = im.b.add_array<TreeNode>(nodes);
  p.node_modes = mixed ? im.b.add_array<std::uint8_t>(node_mode) : Ref{};
  p.leaf_values = im.b.add_array<float>(leaf);
  p.base_values = base.empty() ? Ref{} : im.b.add_array<float>(base);

  const std::int64_t rows = xs.dims[0];
  const std::uint32_t in[] = {x};
  if (!classifier) {
    if (post == PostTransform::kNone) {
      const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, {rows, nt});
      const std::uint32_t outs[] = {y};
      im.step(OpKind::kTreeEnsemble, in, outs, p);
      return {};
    }
    const std::uint32_t raw = im.temp("scores", DType::kF32, xs.batched, {rows, nt});
    const std::uint32_t mid[] = {raw};
    im.step(OpKind::kTreeEnsemble, in, mid, p);
    const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, {rows, nt});
    const std::uint32_t outs[] = {y};
    im.step(OpKind::kPostTransform, mid, outs,
            PostTransformParams{static_cast<std::uint32_t>(post), 0});
    return {};
  }
  if (binary && post != PostTransform::kNone && post != PostTransform::kLogistic)
    return unimplemented(
        "binary TreeEnsembleClassifier with post_transform other than NONE or LOGISTIC");
  const std::uint32_t raw = im.temp("scores", DType::kF32, xs.batched, {rows, nt});
  const std::uint32_t mid[] = {raw};
  im.step(OpKind::kTreeEnsemble, in, mid, p);
  const auto nl = static_cast<std::int64_t>(labels.size());
  const std::uint32_t label = im.define(n.output(0), DType::kI64, xs.batched, {rows});
  const std::uint32_t prob = n.output_size() > 1 && !n.output(1).empty()
                                 ? im.define(n.output(1), DType::kF32, xs.batched, {rows, nl})
                                 : im.temp("probabilities", DType::kF32, xs.batched, {rows, nl});
  const std::uint32_t outs[] = {label, prob};
  // ONNX Runtime's label threshold is 0.5 when every weight is >= 0, else 0,
  // on the raw score whatever the post transform.
  const BinaryMode mode = !binary ? BinaryMode::kNone
                          : second_only
                              ? (all_positive ? BinaryMode::kSecondHalf : BinaryMode::kSecondZero)
                          : all_positive ? BinaryMode::kProbability
                                         : BinaryMode::kSigned;
  im.step(OpKind::kClassifierPost, mid, outs,
          ClassifierPostParams{static_cast<std::uint32_t>(post), static_cast<std::uint32_t>(mode),
                               im.b.add_array<std::int64_t>(labels)});
  return {};
}

}  // namespace myelin::model::detail
