#!/usr/bin/python3
"""Generates ONNX's own backend node tests for the ops myelin supports.

Runs Debian python3-onnx's `backend-test-tools generate-data` into a scratch
directory and keeps only the cases of supported ops (about 150 small cases),
so the conformance test compares myelin with ONNX's reference outputs.

usage: gen_node_tests.py OUT_DIR
"""
import os
import shutil
import sys
import tempfile

import numpy as np

# onnx 1.12's test generators use aliases numpy 1.24 removed.
for _name, _type in [("float", float), ("int", int), ("bool", bool), ("object", object),
                     ("complex", complex), ("str", str)]:
    if not hasattr(np, _name):
        setattr(np, _name, _type)

from onnx.backend.test import cmd_tools  # noqa: E402

OPS = ["gemm", "matmul", "add", "sub", "mul", "div", "relu", "leakyrelu", "sigmoid", "tanh",
       "softmax", "logsoftmax", "argmax", "flatten", "reshape", "identity", "cast", "concat",
       # issue 21: what torch.onnx.export emits
       "transpose", "batchnorm", "erf", "elu", "selu", "softplus", "softsign", "hardsigmoid",
       "clip", "sqrt", "pow", "exp", "log", "neg", "abs", "reciprocal", "reduce_sum",
       "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "reduce_l1", "reduce_l2",
       "reduce_sum_square", "reduce_log_sum", "reduce_log_sum_exp", "layer_normalization",
       "constant", "constantofshape", "unsqueeze", "squeeze", "gather", "expand", "shape",
       "hardswish", "prelu"]
# Other ops whose names start like one above.
NOT = ("matmulinteger", "castlike", "constant_pad", "gather_elements", "gathernd")

# Ops whose parameters myelin needs constant, as torch exports them
# (BatchNorm statistics, LayerNorm scale/bias, Clip bounds, Pow exponent).
# ONNX's cases feed them as graph inputs; here they become initializers with
# the case's own values, so the outputs to match are unchanged.
CONST_OPERANDS = ("batchnorm", "layer_normalization", "clip", "pow")


def wanted(case):
    name = case[len("test_"):]
    if name.endswith("_expanded"):  # the op spelled with other ops (ReduceMax, Exp, ...)
        return False
    for op in OPS:
        if name == op or name.startswith(op + "_"):
            return not name.startswith(NOT)
    return False


def constant_operands(case_dir):
    """Turns graph inputs 1.. of a CONST_OPERANDS case into initializers."""
    import onnx
    path = os.path.join(case_dir, "model.onnx")
    m = onnx.load(path)
    data = os.path.join(case_dir, "test_data_set_0")
    inputs = list(m.graph.input)
    for i in range(1, len(inputs)):
        f = os.path.join(data, f"input_{i}.pb")
        if not os.path.exists(f):
            continue
        t = onnx.TensorProto()
        with open(f, "rb") as fh:
            t.ParseFromString(fh.read())
        t.name = inputs[i].name
        m.graph.initializer.append(t)
        m.graph.input.remove(next(x for x in m.graph.input if x.name == inputs[i].name))
        for d in os.listdir(case_dir):
            extra = os.path.join(case_dir, d, f"input_{i}.pb")
            if os.path.exists(extra):
                os.remove(extra)
    onnx.save(m, path)


def main():
    out = sys.argv[1]
    scratch = tempfile.mkdtemp()
    try:
        sys.argv = ["backend-test-tools", "generate-data", "-o", scratch]
        cmd_tools.main()
        if os.path.exists(out):
            shutil.rmtree(out)
        os.makedirs(out)
        kept = 0
        for case in sorted(os.listdir(os.path.join(scratch, "node"))):
            if wanted(case):
                shutil.copytree(os.path.join(scratch, "node", case), os.path.join(out, case))
                if case[len("test_"):].startswith(CONST_OPERANDS):
                    constant_operands(os.path.join(out, case))
                kept += 1
        print(f"kept {kept} node test cases in {out}")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
