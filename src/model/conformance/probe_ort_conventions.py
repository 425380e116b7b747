#!/usr/bin/python3
"""Probes ONNX Runtime on the binary-classifier and tree cases where the
ONNX-ML spec is silent or where ORT departs from it (issue 21, section 2).

Writes one small model per case to OUT_DIR plus cases.json (the inputs);
probe_ort_conventions.js then runs them through onnxruntime-node and prints
the outputs that src/model/ort_conventions_test.cc commits as test vectors.
The models are rebuilt in the C++ test with the same attributes.

  /usr/bin/python3 src/model/conformance/probe_ort_conventions.py /tmp/probe
  node src/model/conformance/probe_ort_conventions.js /tmp/probe build/model-npm
"""
import json
import os
import sys

from onnx import TensorProto, helper

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
cases = {}

# Four rows, one per leaf of the depth-2 tree below.
X4 = [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]


def save(name, node, outputs, x):
    graph = helper.make_graph(
        [node], name, [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])], outputs)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 8
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(m.SerializeToString())
    cases[name] = x


def classifier_outputs():
    return [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("prob", TensorProto.FLOAT, [None, None])]


def linear(name, coef, icpt, labels, post):
    node = helper.make_node("LinearClassifier", ["X"], ["label", "prob"], domain="ai.onnx.ml",
                            coefficients=coef, intercepts=icpt, classlabels_ints=labels,
                            post_transform=post)
    save(name, node, classifier_outputs(), [[-1.0, 0], [0.25, 0], [0.75, 0], [2.0, 0]])


linear("lc_binary_none", [1.0, 0.0], [0.0], [0, 1], "NONE")
linear("lc_binary_none_labels_3_7", [1.0, 0.0], [0.0], [3, 7], "NONE")
linear("lc_binary_logistic_labels_3_7", [1.0, 0.0], [0.0], [3, 7], "LOGISTIC")
linear("lc_two_rows_labels_3_7", [-1.0, 0.0, 1.0, 0.0], [0.0, 0.0], [3, 7], "NONE")

# Depth-2 tree: node 0 splits x0 <= 0 into node 1 / node 2, each splits
# x1 <= 0 into leaves 3,4 / 5,6.
TREE = dict(nodes_treeids=[0] * 7, nodes_nodeids=[0, 1, 2, 3, 4, 5, 6],
            nodes_featureids=[0, 1, 1, 0, 0, 0, 0],
            nodes_modes=["BRANCH_LEQ"] * 3 + ["LEAF"] * 4,
            nodes_values=[0.0] * 7, nodes_truenodeids=[1, 3, 5, 0, 0, 0, 0],
            nodes_falsenodeids=[2, 4, 6, 0, 0, 0, 0])


def tree_clf(name, labels, weights, post, base=None):
    """weights: list of (class id, [w for leaves 3..6])."""
    ids, nodes, tids, ws = [], [], [], []
    for cid, vals in weights:
        for leaf, w in zip([3, 4, 5, 6], vals):
            ids.append(cid)
            nodes.append(leaf)
            tids.append(0)
            ws.append(w)
    extra = {} if base is None else {"base_values": base}
    node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "prob"], domain="ai.onnx.ml",
                            classlabels_int64s=labels, class_ids=ids, class_nodeids=nodes,
                            class_treeids=tids, class_weights=ws, post_transform=post,
                            **TREE, **extra)
    save(name, node, classifier_outputs(), X4)


def tree_reg(name, targets, weights, post="NONE", base=None, tree=TREE):
    """weights: list of (target id, leaf node id, w)."""
    extra = {} if base is None else {"base_values": base}
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml",
                            n_targets=targets, target_ids=[t for t, _, _ in weights],
                            target_nodeids=[n for _, n, _ in weights],
                            target_treeids=[0] * len(weights),
                            target_weights=[w for _, _, w in weights], post_transform=post,
                            **tree, **extra)
    save(name, node, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, targets])], X4)


POS = [0.2, 0.5, 0.7, 1.5]    # all >= 0
MIXED = [-0.4, 0.2, 0.5, 0.7]  # one negative
tree_clf("tc_class1_only_positive_none", [0, 1], [(1, POS)], "NONE")
tree_clf("tc_class1_only_mixed_none", [0, 1], [(1, MIXED)], "NONE")
tree_clf("tc_class1_only_positive_logistic", [0, 1], [(1, POS)], "LOGISTIC")
tree_clf("tc_class1_only_mixed_logistic", [0, 1], [(1, MIXED)], "LOGISTIC")
tree_clf("tc_class1_only_positive_labels_3_7", [3, 7], [(1, POS)], "NONE")
tree_clf("tc_class1_only_mixed_labels_3_7", [3, 7], [(1, MIXED)], "NONE")
tree_clf("tc_class0_only_positive_none", [0, 1], [(0, POS)], "NONE")
tree_clf("tc_class0_only_mixed_none", [0, 1], [(0, MIXED)], "NONE")
tree_clf("tc_class0_only_mixed_logistic", [0, 1], [(0, MIXED)], "LOGISTIC")
tree_clf("tc_class1_only_one_base_value", [0, 1], [(1, POS)], "NONE", base=[0.25])
tree_clf("tc_two_ids_labels_3_7", [3, 7], [(0, [0.6, 0.4, 0.2, 0.1]), (1, [0.4, 0.6, 0.8, 0.9])],
         "NONE")
# Differences from the spec.
tree_clf("diff_class1_only_two_base_values", [0, 1], [(1, POS)], "NONE", base=[0.1, 0.2])
tree_clf("diff_argmax_unweighted_class", [0, 1, 2],
         [(0, [-1.0, -1.0, -1.0, -1.0]), (1, [-2.0, -2.0, -2.0, -2.0])], "NONE")
tree_reg("diff_single_target_logistic", 1, [(0, n, w) for n, w in zip([3, 4, 5, 6], MIXED)],
         post="LOGISTIC")
tree_reg("diff_duplicate_leaf_weights", 1,
         [(0, 3, 1.0), (0, 3, 2.0), (0, 4, 1.0), (0, 5, 1.0), (0, 6, 1.0)])
tree_reg("diff_base_value_unweighted_target", 2,
         [(0, n, w) for n, w in zip([3, 4, 5, 6], POS)], base=[10.0, 20.0])

# Nodes listed out of order: node 2 (a split into leaves 5, 6) comes first.
order = [2, 0, 1, 3, 4, 5, 6]
shuffled = {k: [v[i] for i in order] for k, v in TREE.items()}
tree_reg("tree_first_listed_root", 1, [(0, n, w) for n, w in zip([3, 4, 5, 6], POS)],
         tree=shuffled)
# The same with a leaf listed first: every row lands on that leaf.
order = [4, 0, 1, 2, 3, 5, 6]
shuffled = {k: [v[i] for i in order] for k, v in TREE.items()}
tree_reg("tree_first_listed_leaf", 1, [(0, n, w) for n, w in zip([3, 4, 5, 6], POS)],
         tree=shuffled)

with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(cases, f)
