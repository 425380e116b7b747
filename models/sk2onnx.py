"""Minimal scikit-learn -> ONNX conversion with onnx.helper.

Debian ships no skl2onnx, so myelin builds the equivalent ONNX graphs itself,
following the ai.onnx.ml operator definitions (the same graphs skl2onnx
emits, without ZipMap). Used by models/make_models.py (the example models)
and src/model/conformance/gen_sklearn_cases.py (the cross-checks).
"""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

ML = "ai.onnx.ml"
OPSETS = [helper.make_opsetid("", 15), helper.make_opsetid(ML, 3)]


def _model(nodes, n_features, outputs, initializers=()):
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", n_features])
    graph = helper.make_graph(nodes, "sklearn", [x], outputs, list(initializers))
    m = helper.make_model(graph, opset_imports=OPSETS, producer_name="myelin-sk2onnx")
    m.ir_version = 8
    return m


def _regressor_output(n=1):
    return [helper.make_tensor_value_info("variable", TensorProto.FLOAT, ["N", n])]


def _classifier_outputs(n_classes):
    return [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_classes])]


def linear_regression(est, n_features):
    node = helper.make_node("LinearRegressor", ["X"], ["variable"], domain=ML, name="linear",
                            coefficients=np.ravel(est.coef_).astype(float).tolist(),
                            intercepts=[float(np.ravel([est.intercept_])[0])])
    return _model([node], n_features, _regressor_output())


def logistic_regression(est, n_features):
    classes = [int(c) for c in est.classes_]
    binary = len(classes) == 2
    node = helper.make_node("LinearClassifier", ["X"], ["label", "probabilities"], domain=ML,
                            name="logreg", coefficients=np.ravel(est.coef_).astype(float).tolist(),
                            intercepts=np.ravel(est.intercept_).astype(float).tolist(),
                            classlabels_ints=classes,
                            post_transform="LOGISTIC" if binary else "SOFTMAX")
    return _model([node], n_features, _classifier_outputs(len(classes)))


def _tree_attrs(trees, scales, prefix, class_of_leaf):
    """trees: sklearn Tree objects; class_of_leaf(tree_index, tree, node) -> [(id, weight)]."""
    a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values",
                         "nodes_modes", "nodes_truenodeids", "nodes_falsenodeids",
                         prefix + "treeids", prefix + "nodeids", prefix + "ids", prefix + "weights"]}
    for t, tree in enumerate(trees):
        for node in range(tree.node_count):
            leaf = tree.children_left[node] == -1
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(node)
            a["nodes_featureids"].append(0 if leaf else int(tree.feature[node]))
            a["nodes_values"].append(0.0 if leaf else float(tree.threshold[node]))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_truenodeids"].append(0 if leaf else int(tree.children_left[node]))
            a["nodes_falsenodeids"].append(0 if leaf else int(tree.children_right[node]))
            if leaf:
                for cid, w in class_of_leaf(t, tree, node):
                    a[prefix + "treeids"].append(t)
                    a[prefix + "nodeids"].append(node)
                    a[prefix + "ids"].append(cid)
                    a[prefix + "weights"].append(float(w))
    return a


def gradient_boosting_regressor(est, n_features):
    trees = [e[0].tree_ for e in est.estimators_]
    lr = est.learning_rate
    attrs = _tree_attrs(trees, None, "target_",
                        lambda t, tree, n: [(0, tree.value[n][0][0] * lr)])
    base = float(est._raw_predict_init(np.zeros((1, n_features), dtype=np.float32))[0, 0])
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["variable"], domain=ML, name="gbr",
                            n_targets=1, aggregate_function="SUM", base_values=[base], **attrs)
    return _model([node], n_features, _regressor_output())


def random_forest_regressor(est, n_features):
    trees = [e.tree_ for e in est.estimators_]
    attrs = _tree_attrs(trees, None, "target_", lambda t, tree, n: [(0, tree.value[n][0][0])])
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["variable"], domain=ML, name="rfr",
                            n_targets=1, aggregate_function="AVERAGE", **attrs)
    return _model([node], n_features, _regressor_output())


def gradient_boosting_classifier(est, n_features):
    """Binary only: one score column, LOGISTIC."""
    assert len(est.classes_) == 2
    trees = [e[0].tree_ for e in est.estimators_]
    lr = est.learning_rate
    attrs = _tree_attrs(trees, None, "class_", lambda t, tree, n: [(0, tree.value[n][0][0] * lr)])
    base = float(est._raw_predict_init(np.zeros((1, n_features), dtype=np.float32))[0, 0])
    node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain=ML,
                            name="gbc", classlabels_int64s=[int(c) for c in est.classes_],
                            base_values=[base], post_transform="LOGISTIC", **attrs)
    return _model([node], n_features, _classifier_outputs(2))


def random_forest_classifier(est, n_features):
    trees = [e.tree_ for e in est.estimators_]
    k = len(trees)

    def leaf(t, tree, n):
        v = tree.value[n][0]
        return [(c, v[c] / v.sum() / k) for c in range(len(v))]

    attrs = _tree_attrs(trees, None, "class_", leaf)
    node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain=ML,
                            name="rfc", classlabels_int64s=[int(c) for c in est.classes_], **attrs)
    return _model([node], n_features, _classifier_outputs(len(est.classes_)))


def mlp(est, n_features, classifier):
    nodes, inits, cur = [], [], "X"
    n_layers = len(est.coefs_)
    for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"W{i}"))
        inits.append(numpy_helper.from_array(b.astype(np.float32), f"B{i}"))
        out = f"h{i}"
        nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"B{i}"], [out], name=f"gemm_{i}"))
        cur = out
        if i + 1 < n_layers:
            nodes.append(helper.make_node("Relu", [cur], [cur + "_relu"], name=f"relu_{i}"))
            cur += "_relu"
    n_out = est.coefs_[-1].shape[1]
    if classifier:
        nodes.append(helper.make_node("Softmax", [cur], ["probabilities"], axis=1, name="softmax"))
        nodes.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0,
                                      name="argmax"))
        outs = [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
                helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_out])]
    else:
        nodes.append(helper.make_node("Identity", [cur], ["variable"], name="out"))
        outs = _regressor_output(n_out)
    return _model(nodes, n_features, outs, inits)
