#!/usr/bin/python3
"""Build the benchmark's larger model: a MobileNetV2-style CNN with fixed random weights.

Development-time only (CI never runs it); needs Debian's python3-torch and python3-onnx, and
downloads nothing. The network follows MobileNetV2 (Sandler et al. 2018): a 3x3 stride-2 stem,
17 inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1 linear projection, a residual Add
when shapes allow), a 1x1 head conv to 1280 channels, global average pooling and one Gemm.
Every conv is followed by BatchNormalization and, except the projections, ReLU6, which the
exporter writes as Clip(0, 6): so the file exercises the engine's BN folding and Conv+Clip
fusion. Weights are random (seeded) but scaled, and BN statistics set, so activations stay
near unit scale (no blow-up, no vanishing): the model is for timing, not for accuracy. The same
arguments always give the same file.

Nodes get readable names: stem, b<i>_expand / b<i>_dw / b<i>_project (+ _bn, _relu6), b<i>_add,
head, head_bn, head_relu6, pool, flatten, fc. The input is fixed at 1x3xSIZExSIZE (batch 1).

    /usr/bin/python3 tools/make_mobilenet.py [--width 0.5] [--size 96] [--classes 10] [--seed 0]

Writes models/mobilenetv2-<size>.onnx and models/mobilenetv2-<size>.json (size, MACs, params).
"""
import argparse
import json
import os
import warnings

import onnx
import torch
import torch.nn as nn

# MobileNetV2's block table: expansion t, output channels c, repeats n, first stride s.
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]


def make_divisible(v, divisor=8):
    """Channel counts rounded to a multiple of 8, as in the reference implementation."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_bn(cin, cout, k, stride, groups=1, relu6=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if relu6:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        self.use_res = stride == 1 and cin == cout
        layers = []
        if t != 1:
            layers.append(conv_bn(cin, hidden, 1, 1))
        layers.append(conv_bn(hidden, hidden, 3, stride, groups=hidden))
        layers.append(conv_bn(hidden, cout, 1, 1, relu6=False))
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, width, classes, last=1280):
        super().__init__()
        cin = make_divisible(32 * width)
        self.last = make_divisible(last * max(1.0, width))
        blocks = [conv_bn(3, cin, 3, 2)]
        for t, c, n, s in SETTINGS:
            cout = make_divisible(c * width)
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        blocks.append(conv_bn(cin, self.last, 1, 1))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.last, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def init_weights(net, gen):
    """Kaiming-scaled conv weights and BN statistics that keep activations near unit scale."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            m.weight.data = torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_out) ** 0.5
        elif isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 0.5 + 0.5 * torch.rand(c, generator=gen)
            m.bias.data = 0.1 * torch.randn(c, generator=gen)
            m.running_mean.data = 0.1 * torch.randn(c, generator=gen)
            m.running_var.data = 0.5 + torch.rand(c, generator=gen)
        elif isinstance(m, nn.Linear):
            m.weight.data = 0.01 * torch.randn(m.weight.shape, generator=gen)
            m.bias.data = torch.zeros(m.out_features)


def count_macs(net, size):
    """Multiply-accumulates of one image: convs and the Gemm (pooling and adds not counted)."""
    macs = []

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            macs.append(out.numel() * k)
        elif isinstance(m, nn.Linear):
            macs.append(m.in_features * m.out_features)

    hs = [m.register_forward_hook(hook) for m in net.modules()
          if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size))
    for h in hs:
        h.remove()
    return sum(macs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    net = MobileNetV2(args.width, args.classes)
    init_weights(net, gen)
    net.eval()
    stem = f"mobilenetv2-{args.size:03d}"
    path = os.path.join(args.out, stem + ".onnx")
    os.makedirs(args.out, exist_ok=True)
    x = torch.randn(1, 3, args.size, args.size, generator=gen)
    warnings.filterwarnings("ignore", message=".*constant folding be turned off.*")
    # PRESERVE with the net in eval mode keeps BatchNormalization as nodes (inference form)
    # instead of folding it into the convs, so the engine's own BN folding is exercised.
    torch.onnx.export(net, x, path, opset_version=13, input_names=["input"],
                      output_names=["logits"], training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=True)
    model = onnx.load(path)
    rename_nodes(model, net)
    model.graph.name = "mobilenetv2_%03d" % args.size
    onnx.checker.check_model(model)
    onnx.save(model, path)
    with torch.no_grad():
        y = net(x)
    ops = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    params = sum(p.numel() for p in net.parameters())
    meta = {"model": stem + ".onnx",
            "description": "MobileNetV2-style CNN, random fixed-seed weights, for speed only",
            "input": [1, 3, args.size, args.size], "width_multiplier": args.width,
            "classes": args.classes, "seed": args.seed, "params": int(params),
            "macs": int(count_macs(net, args.size)),
            "macs_note": "multiply-accumulates of the Conv and Gemm layers for one image",
            "file_bytes": os.path.getsize(path),
            "ops": dict(sorted(ops.items())), "logits_std": round(float(y.std()), 4),
            "torch": torch.__version__, "opset": 13}
    with open(os.path.join(args.out, stem + ".json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"wrote {path} ({meta['file_bytes']} bytes, {meta['params']} params, "
          f"{meta['macs'] / 1e6:.1f} M MACs)")


def rename_nodes(model, net):
    """Readable node names from the module paths the exporter writes into them, e.g.
    /features/features.3/conv/conv.1/conv.1.0/Conv -> b3_dw (see the module docstring)."""
    suffix = {"Conv": "", "BatchNormalization": "_bn", "Clip": "_relu6", "Add": "_add"}
    stages = {i: len(m.conv) for i, m in enumerate(net.features)
              if isinstance(m, InvertedResidual)}
    last = len(net.features) - 1
    for node in model.graph.node:
        scope = [p for p in node.name.split("/") if p][:-1]  # module path without the op
        op = node.op_type
        tail = ""
        if op == "Constant":  # Clip's min and max
            tail = "_min" if node.name.endswith("Constant") else "_max"
            op = "Clip"
        name = None
        if len(scope) >= 2 and scope[0] == "features":
            i = int(scope[1].split(".")[1])  # features.<i>
            inner = scope[-1].split(".")
            if i in stages:
                if inner[0] == "conv" and len(inner) == 3:  # conv.<j>.<k>: j is the stage
                    j = int(inner[1]) + 3 - stages[i]
                    name = f"b{i}_" + ["expand", "dw", "project"][j] + suffix[op]
                else:
                    name = f"b{i}" + suffix[op]
            else:
                name = ("stem" if i == 0 else "head" if i == last else f"f{i}") + suffix[op]
        if name is None:
            name = {"GlobalAveragePool": "pool", "Flatten": "flatten", "Gemm": "fc"}.get(op)
        if name is None:
            raise SystemExit(f"make_mobilenet: no name rule for node {node.name!r}")
        node.name = name + tail
    names = [n.name for n in model.graph.node]
    assert len(set(names)) == len(names), "node names must be unique"
    # values take their producer's name (graph outputs keep theirs)
    keep = {o.name for o in model.graph.output}
    value = {}
    for node in model.graph.node:
        for k, out in enumerate(node.output):
            if out not in keep:
                value[out] = node.name if len(node.output) == 1 else f"{node.name}_{k}"
        node.output[:] = [value.get(o, o) for o in node.output]
    for node in model.graph.node:
        node.input[:] = [value.get(v, v) for v in node.input]


if __name__ == "__main__":
    main()
