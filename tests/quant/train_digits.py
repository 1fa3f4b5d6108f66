#!/usr/bin/env python3
"""train_digits.py: trains a small real CNN on scikit-learn's digits data
(8x8 grey images, 10 classes) with torch on the CPU, exports it to ONNX and
writes the data the INT8 tests need, so accuracy is measured on a model
that learned something (random weights say nothing about accuracy).

Writes into OUT (default tests/quant/cache/, git-ignored; reused when
present and complete):
  digits_cnn.onnx       the FP32 model, input x [N, 1, 8, 8], output logits [N, 10]
  calib/x.npy           256 training images (calibration data)
  val/x.npy             128 held-out images (accuracy-budget validation data)
  test/x.npy, labels.npy  the other held-out images with labels (top-1)
Deterministic (fixed seeds, one thread); about 10-20 s on one core."""
import os
import sys

import numpy as np


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "cache")
    files = ["digits_cnn.onnx", "calib/x.npy", "val/x.npy", "test/x.npy", "test/labels.npy"]
    if all(os.path.exists(os.path.join(out, f)) for f in files):
        print(f"train_digits: cached in {out}")
        return 0
    import torch
    import torch.nn as nn
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    torch.set_num_threads(1)
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]  # [1797, 1, 8, 8] in [0, 1]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(x))
    x, y = x[perm], y[perm]
    n_train = 1200
    xtr, ytr = x[:n_train], y[:n_train]
    xho, yho = x[n_train:], y[n_train:]  # held out: 597 images

    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    lossf = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    for epoch in range(25):
        model.train()
        order = torch.randperm(n_train)
        for i in range(0, n_train, 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            loss = lossf(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.from_numpy(xho)).argmax(1).numpy() == yho).mean()
    print(f"train_digits: torch held-out top-1 {100 * acc:.2f}%")

    for sub in ("calib", "val", "test"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    path = os.path.join(out, "digits_cnn.onnx")
    example = torch.from_numpy(xtr[:1])
    kw = dict(input_names=["x"], output_names=["logits"], opset_version=17,
              dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
    try:
        torch.onnx.export(model, (example,), path, dynamo=False, **kw)
    except TypeError:
        torch.onnx.export(model, (example,), path, **kw)
    np.save(os.path.join(out, "calib/x.npy"), xtr[:256])
    np.save(os.path.join(out, "val/x.npy"), xho[:128])
    np.save(os.path.join(out, "test/x.npy"), xho[128:])
    np.save(os.path.join(out, "test/labels.npy"), yho[128:])
    print(f"train_digits: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
