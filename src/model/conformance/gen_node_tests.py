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
       "softmax", "logsoftmax", "argmax", "flatten", "reshape", "identity", "cast", "concat"]


def wanted(case):
    name = case[len("test_"):]
    if name.endswith("_expanded"):  # the op spelled with other ops (ReduceMax, Exp, ...)
        return False
    for op in OPS:
        if name == op or name.startswith(op + "_"):
            # matmulinteger, castlike etc. are other ops
            return not name.startswith(("matmulinteger", "castlike"))
    return False


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
                kept += 1
        print(f"kept {kept} node test cases in {out}")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
