"""What FP16 and BF16 cost in accuracy on the exported model set when PyTorch
itself runs them on the GPU: rel-L2 of torch's half-precision output against
its FP32 output on the same inputs the model tests use. If torch's own FP16
misses the 1e-2 budget on a model with random weights, Kiln's miss there says
nothing about Kiln. Prints one line per model and precision."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import export_models as em  # noqa: E402

names = sys.argv[1:] or ["resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16", "bert_base"]
for name in names:
    try:
        build, _ = em.MODELS[name]
        m, _, cases, *_ = build()
        m = m.eval().cuda()
        with torch.no_grad():
            for inputs in cases[:1]:
                xs = [x.cuda() for x in inputs]
                ref = m(*xs)
                ref = (ref[0] if isinstance(ref, (tuple, list)) else ref).float()
                for dt, tag in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
                    mh = m.to(dt)
                    xh = [x.to(dt) if x.is_floating_point() else x for x in xs]
                    y = mh(*xh)
                    y = (y[0] if isinstance(y, (tuple, list)) else y).float()
                    rel = (torch.linalg.norm(y - ref) / torch.linalg.norm(ref)).item()
                    top1 = bool((y.argmax(-1) == ref.argmax(-1)).all().item())
                    print(f"torch {name} {tag}: rel-L2 {rel:.3e} same top-1 {top1}", flush=True)
                    m = m.float()
    except Exception as ex:  # report and go on
        print(f"torch {name}: error {ex!r}"[:300], flush=True)
