#!/usr/bin/env python3
"""half_drift.py: how a model's own FP16/BF16 error grows with depth, in
PyTorch on the CPU (no GPU, no Kiln): the exported model set's random-weight
model is run in float32 and in half precision on test set 0, and the
relative L2 distance of every module's output down to DEPTH levels is
printed in execution order.

Why: issue 12 asks FP16/BF16 engines within 1e-2 relative L2 of
onnxruntime's FP32. On the random-weight (BatchNorm-calibrated) resnet50,
torch's own FP16 ends at 3.0e-2 and Kiln's at 2.5e-2. This shows where it
comes from: the error multiplies about 3x per stage (2026-12-07, CPU:
conv1 3.6e-4, layer1 3.1e-3, layer2 1.1e-2, layer3 5.2e-2, layer4 1.4e-1;
the average pool then hides most of it), the mean-field chaos of a random
BatchNorm-ReLU network. More calibration images (4 -> 64) change nothing
(3.05e-2 -> 3.10e-2). A trained network is not chaotic like this, so the
1e-2 bar is a statement about the test weights, not about the engine.

Usage: python3 tests/models/half_drift.py [MODEL] [--depth 2] [--bf16]"""
import argparse
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_models as em  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="resnet50")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    build, _ = em.MODELS[a.model]
    m, _, cases, *_ = build()
    dt = torch.bfloat16 if a.bf16 else torch.float16
    mh = copy.deepcopy(m).to(dt)
    names = [n for n, _ in m.named_modules() if n and n.count(".") < a.depth]

    def hook(model, store):
        def keep(n, o):  # a forward hook that returns a value replaces the output
            if n not in store:
                store[n] = o.detach().float().clone() if torch.is_tensor(o) else None  # in-place ReLUs follow
        mods = dict(model.named_modules())
        for n in names:
            mods[n].register_forward_hook(lambda s, i, o, n=n: keep(n, o))
    full, half = {}, {}
    hook(m, full)
    hook(mh, half)
    xs = cases[0]
    with torch.no_grad():
        m(*xs)
        mh(*[x.to(dt) if x.is_floating_point() else x for x in xs])
    for n in full:
        f, h = full[n], half.get(n)
        if f is None or h is None or f.shape != h.shape or torch.linalg.norm(f) == 0:
            continue
        rel = (torch.linalg.norm(h - f) / torch.linalg.norm(f)).item()
        print("%-28s rel-L2 %.3e" % (n, rel))


if __name__ == "__main__":
    main()
