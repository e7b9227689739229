#!/usr/bin/python3
"""Train the bundled demo model: a small CNN on Fashion-MNIST, exported as ONNX.

Development-time only (CI never runs it). Needs Debian's python3-torch, python3-onnx,
python3-numpy and dataset-fashion-mnist (data under /usr/share/datasets/fashion-mnist).
Writes models/fmnist-cnn.onnx and models/fmnist-cnn.json (test accuracy, training settings).
Nodes are renamed to stable layer names (conv1, conv2, fc1, fc2) so campaign files and
precision specs can name them.

    /usr/bin/python3 tools/train_fmnist_cnn.py [--epochs 3] [--seed 0]
"""
import argparse
import gzip
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def prep(images):
    x = images.astype(np.float32) / 255.0
    return torch.from_numpy(((x - MEAN) / STD)[:, None, :, :])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    xtr = prep(read_idx(f"{DATA}/train-images-idx3-ubyte.gz"))
    ytr = torch.from_numpy(read_idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = prep(read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz"))
    yte = torch.from_numpy(read_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "fmnist-cnn.onnx")
    torch.onnx.export(net, torch.zeros(1, 1, 28, 28), path, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    model = onnx.load(path)
    names = {"Conv": ["conv1", "conv2"], "Gemm": ["fc1", "fc2"]}
    seen = {}
    for node in model.graph.node:
        if node.op_type in names:
            k = seen.get(node.op_type, 0)
            node.name = names[node.op_type][k]
            seen[node.op_type] = k + 1
    model.graph.name = "fmnist_cnn"
    onnx.checker.check_model(model)
    onnx.save(model, path)
    meta = {"model": "fmnist-cnn.onnx", "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist)",
            "test_accuracy_fp32": round(acc, 4), "test_samples": int(len(xte)),
            "epochs": args.epochs, "seed": args.seed, "preprocess": {"scale": 1 / 255,
            "mean": [MEAN], "std": [STD], "layout": "NCHW"}, "torch": torch.__version__,
            "opset": 13}
    with open(os.path.join(args.out, "fmnist-cnn.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes), test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
