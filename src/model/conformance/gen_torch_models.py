#!/usr/bin/python3
"""Builds the torch-exported conformance suite (issue 21 section 1).

Builds 99 small networks with Debian's python3-torch: about 60 random MLPs
(BatchNorm, LayerNorm, Dropout in eval mode, the common activations, flatten
by view/reshape/flatten) and one network per op torch emits for them. Each is
exported with torch.onnx.export at an opset in 11..17 with a dynamic batch
axis, run by torch on a fixed random batch, and written as an ONNX test case:

  OUT_DIR/<name>/model.onnx
  OUT_DIR/<name>/test_data_set_0/input_0.pb    (onnx TensorProto)
  OUT_DIR/<name>/test_data_set_0/output_0.pb

the layout of ONNX's backend node tests, so the C++ test reads both alike.
The output is committed (src/model/conformance/torch_cases/): the test needs
no torch. Deterministic: rerunning rewrites the same networks and batches.

usage: gen_torch_models.py OUT_DIR
"""
import os
import random
import shutil
import sys
import warnings

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

BATCH = 3


class View(nn.Module):
    """x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""

    def forward(self, x):
        return x.view(x.size(0), -1)


class ReshapeFlat(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        return x.reshape(-1, self.n)


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def activations():
    return {
        "relu": nn.ReLU,
        "leakyrelu": lambda: nn.LeakyReLU(0.1),
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "elu": lambda: nn.ELU(0.7),
        "softplus": nn.Softplus,
        "hardtanh": lambda: nn.Hardtanh(-0.5, 0.8),
        "relu6": nn.ReLU6,
        "silu": nn.SiLU,
        "mish": nn.Mish,
        "identity": nn.Identity,
    }


def randomize_bn(bn, rng):
    with torch.no_grad():
        n = bn.num_features
        bn.running_mean.copy_(torch.tensor(rng.normal(0, 0.5, n), dtype=torch.float32))
        bn.running_var.copy_(torch.tensor(rng.uniform(0.5, 2.0, n), dtype=torch.float32))
        bn.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, n), dtype=torch.float32))
        bn.bias.copy_(torch.tensor(rng.normal(0, 0.3, n), dtype=torch.float32))


def randomize_ln(ln, rng):
    with torch.no_grad():
        n = ln.weight.numel()
        ln.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, n), dtype=torch.float32).reshape(ln.weight.shape))
        ln.bias.copy_(torch.tensor(rng.normal(0, 0.3, n), dtype=torch.float32).reshape(ln.bias.shape))


def random_mlp(i, rng):
    """A random MLP; returns (name, module, input shape without batch, opset)."""
    acts = activations()
    names = sorted(acts)
    # Input: a vector, or a small [C, L] map flattened first.
    if rng.random() < 0.4:
        c, l = int(rng.integers(2, 5)), int(rng.integers(2, 6))
        shape = [c, l]
        flat = rng.choice(["view", "reshape", "flatten"])
        layers = [{"view": View(), "reshape": ReshapeFlat(c * l), "flatten": nn.Flatten()}[flat]]
        d = c * l
        tag = flat
    else:
        d = int(rng.integers(4, 20))
        shape = [d]
        layers = []
        tag = "vec"
    depth = int(rng.integers(1, 4))
    for _ in range(depth):
        h = int(rng.integers(4, 24))
        layers.append(nn.Linear(d, h))
        norm = rng.choice(["none", "bn", "ln"], p=[0.4, 0.35, 0.25])
        if norm == "bn":
            bn = nn.BatchNorm1d(h)
            randomize_bn(bn, rng)
            layers.append(bn)
        elif norm == "ln":
            ln = nn.LayerNorm(h)
            randomize_ln(ln, rng)
            layers.append(ln)
        layers.append(acts[names[int(rng.integers(len(names)))]]())
        if rng.random() < 0.3:
            layers.append(nn.Dropout(0.2))
        d = h
    out = int(rng.integers(1, 6))
    layers.append(nn.Linear(d, out))
    if rng.random() < 0.3:
        layers.append(nn.LogSoftmax(dim=1) if rng.random() < 0.5 else nn.Softmax(dim=1))
    opset = int(rng.integers(11, 18))
    return f"mlp_{i:02d}_{tag}_op{opset}", nn.Sequential(*layers), shape, opset


class Normalize(nn.Module):
    def forward(self, x):
        return F.normalize(x, dim=1)


class ZerosBatch(nn.Module):
    """torch.zeros(x.size(0), n): ConstantOfShape of a batch-dependent shape."""

    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(n, n)

    def forward(self, x):
        return self.fc(x) + torch.zeros(x.size(0), x.size(1)) + 1.5


class ExpandBatch(nn.Module):
    """A learned row expanded to the batch (Expand with a batch-dependent shape)."""

    def __init__(self, n):
        super().__init__()
        self.row = nn.Parameter(torch.randn(1, n))

    def forward(self, x):
        return x * self.row.expand(x.size(0), -1)


class BnTwoReaders(nn.Module):
    """A Linear output read by BatchNorm and by an Add: BatchNorm runs as an op."""

    def __init__(self, n, rng):
        super().__init__()
        self.fc = nn.Linear(n, n)
        self.bn = nn.BatchNorm1d(n)
        randomize_bn(self.bn, rng)

    def forward(self, x):
        y = self.fc(x)
        return self.bn(y) + y


class Bmm(nn.Module):
    """Both MatMul operands come from the batch (attention-like scores)."""

    def __init__(self, c, l):
        super().__init__()
        self.q = nn.Linear(l, l)

    def forward(self, x):
        return torch.matmul(self.q(x), x.transpose(1, 2))


def op_cases(rng):
    """(name, module, input shape without batch, opset) per op of the issue."""
    bn1 = nn.BatchNorm1d(6)
    randomize_bn(bn1, rng)
    bn3 = nn.BatchNorm1d(4)
    randomize_bn(bn3, rng)
    bn2d = nn.BatchNorm2d(3)
    randomize_bn(bn2d, rng)
    ln = nn.LayerNorm(6)
    randomize_ln(ln, rng)
    ln2 = nn.LayerNorm([3, 4])
    randomize_ln(ln2, rng)
    L = Lambda
    cases = [
        ("view_flatten_op11", nn.Sequential(View(), nn.Linear(12, 3)), [3, 4], 11),
        ("view_flatten_op13", nn.Sequential(View(), nn.Linear(12, 3)), [3, 4], 13),
        ("view_flatten_op17", nn.Sequential(View(), nn.Linear(24, 3)), [2, 3, 4], 17),
        ("view_batch_first_op14", L(lambda x: x.view(x.size(0), 4, 3).sum(2)), [12], 14),
        ("reshape_batch_shape_op15", L(lambda x: x.reshape(x.shape[0], 2, -1) * 2.0), [3, 4], 15),
        ("softmax_axis1_op11", L(lambda x: F.softmax(x, dim=1)), [3, 4], 11),
        ("logsoftmax_axis1_op11", L(lambda x: F.log_softmax(x, dim=1)), [3, 4], 11),
        ("softmax_axis1_op13", L(lambda x: F.softmax(x, dim=1)), [3, 4], 13),
        ("transpose_op12", nn.Sequential(L(lambda x: x.permute(0, 2, 1)), nn.Linear(3, 2)), [3, 4],
         12),
        ("transpose4d_op13", L(lambda x: x.permute(0, 3, 1, 2).contiguous() + 1.0), [2, 3, 4],
         13),
        ("batchnorm_fold_gemm_op11", nn.Sequential(nn.Linear(5, 6), bn1, nn.ReLU()), [5], 11),
        ("batchnorm_fold_matmul_op14",
         nn.Sequential(nn.Linear(5, 6, bias=False), nn.BatchNorm1d(6)), [5], 14),
        ("batchnorm_op_two_readers_op13", BnTwoReaders(5, rng), [5], 13),
        ("batchnorm_3d_op12", bn3, [4, 5], 12),
        ("batchnorm_2d_op15", bn2d, [3, 2, 2], 15),
        ("batchnorm_input_op16", nn.Sequential(nn.BatchNorm1d(5), nn.Linear(5, 2)), [5], 16),
        ("gelu_erf_op11", nn.GELU(), [7], 11),
        ("gelu_erf_op17", nn.GELU(), [7], 17),
        ("elu_op11", nn.ELU(1.3), [7], 11),
        ("softplus_op13", nn.Softplus(), [7], 13),
        ("hardtanh_op11", nn.Hardtanh(-0.7, 0.4), [7], 11),
        ("hardtanh_op13", nn.Hardtanh(-0.7, 0.4), [7], 13),
        ("relu6_op12", nn.ReLU6(), [7], 12),
        ("clamp_min_op13", L(lambda x: torch.clamp(x * 4.0, min=-1.0)), [7], 13),
        ("reducemean_op11", L(lambda x: x.mean(dim=1)), [3, 4], 11),
        ("reducemean_keepdim_op13", L(lambda x: x - x.mean(dim=-1, keepdim=True)), [3, 4], 13),
        ("reducesum_op13", L(lambda x: x.sum(dim=2)), [3, 4], 13),
        ("reducesum_op11", L(lambda x: x.sum(dim=(1, 2))), [3, 4], 11),
        ("reducemax_op12", L(lambda x: x.amax(dim=1)), [3, 4], 12),
        ("reducemin_op15", L(lambda x: x.amin(dim=2)), [3, 4], 15),
        ("reduceprod_op13", L(lambda x: x.prod(dim=1)), [3, 4], 13),
        ("reducel2_normalize_op11", Normalize(), [6], 11),
        ("reducel2_normalize_op17", Normalize(), [6], 17),
        ("reducel1_op13", L(lambda x: x.norm(p=1, dim=1)), [6], 13),
        ("reducelogsumexp_op13", L(lambda x: torch.logsumexp(x, dim=1)), [6], 13),
        ("constant_scalar_op11", L(lambda x: x * 3.0 - 1.0), [5], 11),
        ("constantofshape_op13", ZerosBatch(5), [5], 13),
        ("expand_batch_op13", ExpandBatch(5), [5], 13),
        ("unsqueeze_op11", nn.Sequential(L(lambda x: x.unsqueeze(1)), nn.Linear(5, 3),
                                         L(lambda x: x.squeeze(1))), [5], 11),
        ("unsqueeze_op13", nn.Sequential(L(lambda x: x.unsqueeze(1)), nn.Linear(5, 3),
                                         L(lambda x: x.squeeze(1))), [5], 13),
        ("unsqueeze_last_op17", L(lambda x: x.unsqueeze(-1) * 2.0), [5], 17),
        ("gather_select_op11", L(lambda x: x[:, 1] + 1.0), [3, 4], 11),
        ("gather_index_op13", L(lambda x: x[:, [0, 2, 2]]), [4], 13),
        ("pow_sqrt_op13", L(lambda x: torch.sqrt(x.pow(2) + 1.0)), [6], 13),
        ("layernorm_op12", ln, [6], 12),
        ("layernorm_op16", nn.LayerNorm(6), [6], 16),
        ("layernorm_op17", ln2, [3, 4], 17),
        ("matmul_batched_rhs_op13", Bmm(3, 4), [3, 4], 13),
    ]
    return cases


def export(name, module, shape, opset, rng, out_dir):
    module.eval()
    x = torch.tensor(rng.normal(0, 1, [BATCH] + shape), dtype=torch.float32)
    with torch.no_grad():
        y = module(x)
    case = os.path.join(out_dir, name)
    os.makedirs(os.path.join(case, "test_data_set_0"))
    path = os.path.join(case, "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, x, path, opset_version=opset, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    m = onnx.load(path)
    # Drop torch's producer version so a rerun on another torch build differs
    # only where the graph does.
    m.producer_version = ""
    onnx.save(m, path)
    for kind, t in (("input", x), ("output", y)):
        p = numpy_helper.from_array(t.numpy().astype(np.float32))
        with open(os.path.join(case, "test_data_set_0", f"{kind}_0.pb"), "wb") as f:
            f.write(p.SerializeToString())


def main():
    out = sys.argv[1]
    torch.manual_seed(21)
    rng = np.random.default_rng(21)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    cases = op_cases(rng)
    n_mlp = 99 - len(cases)
    for i in range(n_mlp):
        cases.append(random_mlp(i, rng))
    for name, module, shape, opset in cases:
        export(name, module, shape, opset, rng, out)
    print(f"wrote {len(cases)} torch cases to {out}")


if __name__ == "__main__":
    main()
