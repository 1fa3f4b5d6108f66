#!/usr/bin/env python3
"""Exports real models from torchvision / transformers / plain torch modules
to ONNX and writes each as a test case in the ONNX backend-test layout:

    OUT/<model>_op<N>/model.onnx
    OUT/<model>_op<N>/test_data_set_K/input_J.pb, output_J.pb
    OUT/<model>_op<N>/meta.json   (exporter, shapes, onnxruntime timings)

Every model is exported at opsets 17 and 18 with the legacy TorchScript
exporter (torch.onnx.export(..., dynamo=False)), with dynamic batch (and
sequence / spatial) axes; models named <model>_dynamo are the same models
through the dynamo exporter. The data sets differ in the dynamic dims from
the export example and from each other, so symbolic shapes are exercised.
Weights are random (no downloads), seeds are fixed, models are in eval mode,
BatchNorm statistics are set from a batch so activations stay O(1).
Expected outputs come from onnxruntime (CPU, one thread, default graph
optimizations); an export whose onnxruntime outputs differ from PyTorch's
by more than 1e-3 rel-L2 is refused as unfaithful. Finished cases are
skipped, and so are recorded export failures (export_error.txt), unless
--force.

usage: export_models.py [--out DIR] [--quick | --all] [--only NAME,...]
                        [--list] [--force]
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "..", "build", "models")
OPSETS = (17, 18)


# ---------------------------------------------------------------- models
# Each builder returns (module, example_inputs, test_sets, input_names,
# output_names, dynamic_axes). example_inputs feed the exporter (tracing);
# test_sets (a list of input tuples) become test_data_set_0, _1, ... and
# differ from the example in the dynamic dims, so the symbolic shapes get
# used at run time (set 1 is usually the smallest legal shape: batch 1, one
# token, an empty KV cache).

def _seed(s=0):
    import numpy as np
    import torch
    torch.manual_seed(s)
    np.random.seed(s)


def _img(n, size=224, frames=None):
    import torch
    if frames:
        return torch.randn(n, 3, frames, size, size)
    return torch.randn(n, 3, size, size)


def calibrate_bn(m, x):
    """Random init leaves BatchNorm at mean 0 / var 1, so activations shrink or
    grow layer after layer (mobilenet_v2's logits come out near 1e-9) and the
    comparison would test little. Set every BatchNorm's statistics to those of
    one batch, as training would, so activations stay O(1) throughout."""
    import torch
    bns = [b for b in m.modules() if isinstance(b, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return m.eval()
    m.eval()
    for b in bns:
        b.reset_running_stats()
        b.momentum = None  # cumulative average: one batch sets the stats exactly
        b.train()
    with torch.no_grad():
        m(*x) if isinstance(x, tuple) else m(x)
    return m.eval()


def _tv(name):
    import torchvision
    parts = name.split(".")
    obj = torchvision.models
    for p in parts:
        obj = getattr(obj, p)
    return obj


def _cnn(ctor, size=224, batches=(2, 1), frames=None, out_key=None, **kw):
    """A torchvision classifier (or a dict-returning model with out_key) with
    a dynamic batch axis."""
    def build():
        import torch
        _seed(0)
        m = _tv(ctor)(weights=None, **kw)
        head = getattr(getattr(m, "heads", None), "head", None)
        if head is not None:  # ViT zero-initializes its head: logits would be all 0
            torch.nn.init.normal_(head.weight, std=0.02)
            torch.nn.init.normal_(head.bias, std=0.02)
        if out_key:
            inner = m

            class Pick(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.m = inner

                def forward(self, x):
                    return self.m(x)[out_key]
            m = Pick()
        m = calibrate_bn(m, _img(4, size, frames))
        return (m, (_img(1, size, frames),), [(_img(b, size, frames),) for b in batches],
                ["input"], ["logits"], {"input": {0: "batch"}, "logits": {0: "batch"}})
    return build


def _hf_tokens(vocab, batch, seq, pad_from=None, seed=0):
    import torch
    g = torch.Generator().manual_seed(1234 + seed * 1000 + batch * 100 + seq)
    ids = torch.randint(0, vocab, (batch, seq), generator=g, dtype=torch.int64)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    if pad_from is not None and batch > 1:
        mask[1, pad_from:] = 0  # a padded second sequence exercises the mask path
    return ids, mask


class _HFWrap:
    """Mixin-free helper: a Module wrapping a transformers model whose
    forward maps positional tensors to keyword arguments and returns the
    chosen output fields as a tuple."""

    @staticmethod
    def make(inner, kwarg_names, fields, **fixed):
        import torch

        class Wrap(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = inner

            def forward(self, *args):
                o = self.inner(**dict(zip(kwarg_names, args)), return_dict=True, **fixed)
                return tuple(getattr(o, f) for f in fields)
        return Wrap()


def build_bert():
    import torch
    from transformers import BertConfig, BertModel
    _seed(0)
    cfg = BertConfig()  # bert-base-uncased geometry: 12 layers, 768 hidden, 12 heads
    cfg._attn_implementation = "eager"
    m = BertModel(cfg, add_pooling_layer=True).eval()
    w = _HFWrap.make(m, ["input_ids", "attention_mask", "token_type_ids"],
                     ["last_hidden_state", "pooler_output"])
    ids, mask = _hf_tokens(cfg.vocab_size, 1, 8)
    sets = []
    for b, t, pad in ((2, 24, 17), (1, 5, None)):
        tids, tmask = _hf_tokens(cfg.vocab_size, b, t, pad_from=pad)
        ttype = torch.zeros_like(tids)
        ttype[:, t // 2:] = 1
        sets.append((tids, tmask, ttype))
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
           "token_type_ids": {0: "batch", 1: "seq"},
           "last_hidden_state": {0: "batch", 1: "seq"}, "pooler_output": {0: "batch"}}
    return (w, (ids, mask, torch.zeros_like(ids)), sets,
            ["input_ids", "attention_mask", "token_type_ids"],
            ["last_hidden_state", "pooler_output"], dyn)


def build_distilbert():
    from transformers import DistilBertConfig, DistilBertModel
    _seed(0)
    cfg = DistilBertConfig(vocab_size=8000, n_layers=3)
    cfg._attn_implementation = "eager"
    m = DistilBertModel(cfg).eval()
    w = _HFWrap.make(m, ["input_ids", "attention_mask"], ["last_hidden_state"])
    sets = [_hf_tokens(cfg.vocab_size, 3, 16, pad_from=9), _hf_tokens(cfg.vocab_size, 1, 1)]
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
           "last_hidden_state": {0: "batch", 1: "seq"}}
    return (w, _hf_tokens(cfg.vocab_size, 1, 8), sets, ["input_ids", "attention_mask"],
            ["last_hidden_state"], dyn)


def build_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    _seed(0)
    # GPT-2 small geometry with a smaller vocabulary to keep the file small.
    cfg = GPT2Config(vocab_size=8192, n_positions=256, n_embd=768, n_layer=12, n_head=12,
                     use_cache=False, bos_token_id=0, eos_token_id=0)
    cfg._attn_implementation = "eager"
    m = GPT2LMHeadModel(cfg).eval()
    w = _HFWrap.make(m, ["input_ids", "attention_mask"], ["logits"], use_cache=False)
    # right padding only: GPT-2 position ids ignore the mask
    sets = [_hf_tokens(cfg.vocab_size, 2, 20, pad_from=14), _hf_tokens(cfg.vocab_size, 1, 1)]
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
           "logits": {0: "batch", 1: "seq"}}
    return (w, _hf_tokens(cfg.vocab_size, 1, 8), sets, ["input_ids", "attention_mask"],
            ["logits"], dyn)


def build_gpt2_kv():
    """A GPT-2 decoder step with a KV cache: past keys/values in, logits and
    the grown cache out (sets: a multi-token step, an empty past, and a
    one-token decode step)."""
    import torch
    from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel
    _seed(0)
    L, H, D = 4, 8, 32
    cfg = GPT2Config(vocab_size=2048, n_positions=128, n_embd=H * D, n_layer=L, n_head=H,
                     use_cache=True, bos_token_id=0, eos_token_id=0)
    cfg._attn_implementation = "eager"
    m = GPT2LMHeadModel(cfg).eval()

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, ids, mask, *past):
            cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1])
                                                 for i in range(L)], config=cfg)
            o = self.m(input_ids=ids, attention_mask=mask, past_key_values=cache,
                       use_cache=True, return_dict=True)
            outs = [o.logits]
            for layer in o.past_key_values.layers:
                outs += [layer.keys, layer.values]
            return tuple(outs)

    def mk(b, p, s, seed):
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, cfg.vocab_size, (b, s), generator=g)
        mask = torch.ones(b, p + s, dtype=torch.int64)
        return (ids, mask) + tuple(torch.randn(b, H, p, D, generator=g) for _ in range(2 * L))

    names = ["input_ids", "attention_mask"] + ["past_%d_%s" % (i, kv) for i in range(L)
                                               for kv in ("key", "value")]
    outs = ["logits"] + ["present_%d_%s" % (i, kv) for i in range(L) for kv in ("key", "value")]
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
           "logits": {0: "batch", 1: "seq"}}
    dyn.update({n: {0: "batch", 2: "past"} for n in names[2:]})
    dyn.update({n: {0: "batch", 2: "total"} for n in outs[1:]})
    # set 0 doubles as the dynamo exporter's example: every dynamic dim > 1
    # and distinct, or torch.export specializes / equates them
    return Step(), mk(1, 3, 1, 1), [mk(2, 7, 3, 2), mk(1, 0, 4, 3), mk(2, 5, 1, 4)], names, \
        outs, dyn


def build_llama():
    """A small Llama-style decoder: RMSNorm, rotary embeddings, grouped-query
    attention, SiLU-gated MLP."""
    from transformers import LlamaConfig, LlamaForCausalLM
    _seed(0)
    cfg = LlamaConfig(vocab_size=4096, hidden_size=256, intermediate_size=688,
                      num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                      max_position_embeddings=256, use_cache=False, bos_token_id=0,
                      eos_token_id=0, pad_token_id=0)
    cfg._attn_implementation = "eager"
    m = LlamaForCausalLM(cfg).eval()
    w = _HFWrap.make(m, ["input_ids", "attention_mask"], ["logits"], use_cache=False)
    sets = [_hf_tokens(cfg.vocab_size, 2, 19, pad_from=12), _hf_tokens(cfg.vocab_size, 1, 1)]
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
           "logits": {0: "batch", 1: "seq"}}
    return (w, _hf_tokens(cfg.vocab_size, 1, 8), sets, ["input_ids", "attention_mask"],
            ["logits"], dyn)


def build_t5():
    """A small T5 encoder-decoder (relative position buckets, cross-attention)."""
    from transformers import T5Config, T5ForConditionalGeneration
    _seed(0)
    cfg = T5Config(vocab_size=4096, d_model=256, d_kv=32, d_ff=512, num_layers=3,
                   num_decoder_layers=3, num_heads=8, use_cache=False,
                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    cfg._attn_implementation = "eager"
    m = T5ForConditionalGeneration(cfg).eval()
    w = _HFWrap.make(m, ["input_ids", "attention_mask", "decoder_input_ids"], ["logits"],
                     use_cache=False)

    def mk(b, s, t, pad, seed):
        ids, mask = _hf_tokens(cfg.vocab_size, b, s, pad_from=pad, seed=seed)
        dec, _ = _hf_tokens(cfg.vocab_size, b, t, seed=seed + 7)
        return ids, mask, dec

    dyn = {"input_ids": {0: "batch", 1: "src"}, "attention_mask": {0: "batch", 1: "src"},
           "decoder_input_ids": {0: "batch", 1: "tgt"}, "logits": {0: "batch", 1: "tgt"}}
    return (w, mk(1, 8, 4, None, 0), [mk(2, 21, 9, 15, 1), mk(1, 3, 1, None, 2)],
            ["input_ids", "attention_mask", "decoder_input_ids"], ["logits"], dyn)


def build_lstm():
    import torch
    _seed(0)

    class LSTMClassifier(torch.nn.Module):
        """Embedding -> 2-layer bidirectional LSTM -> last step -> Linear."""

        def __init__(self, vocab=1000, emb=64, hid=96, classes=5):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, emb)
            self.lstm = torch.nn.LSTM(emb, hid, num_layers=2, batch_first=True,
                                      bidirectional=True)
            self.fc = torch.nn.Linear(2 * hid, classes)

        def forward(self, tokens):
            y, (h, c) = self.lstm(self.emb(tokens))
            return self.fc(y[:, -1]), h, c

    m = LSTMClassifier().eval()
    sets = [(torch.randint(0, 1000, (3, 11)),), (torch.randint(0, 1000, (1, 1)),)]
    dyn = {"tokens": {0: "batch", 1: "seq"}, "logits": {0: "batch"}, "h_n": {1: "batch"},
           "c_n": {1: "batch"}}
    return (m, (torch.randint(0, 1000, (1, 7)),), sets, ["tokens"], ["logits", "h_n", "c_n"],
            dyn)


def build_gru():
    import torch
    _seed(0)

    class GRUTagger(torch.nn.Module):
        """Float features -> 2-layer GRU with an initial state -> per-step Linear."""

        def __init__(self, feat=40, hid=64, classes=10):
            super().__init__()
            self.gru = torch.nn.GRU(feat, hid, num_layers=2, batch_first=False)
            self.fc = torch.nn.Linear(hid, classes)

        def forward(self, x, h0):
            y, h = self.gru(x, h0)
            return self.fc(y), h

    m = GRUTagger().eval()
    sets = [(torch.randn(9, 3, 40), torch.randn(2, 3, 64)),
            (torch.randn(1, 1, 40), torch.randn(2, 1, 64))]
    dyn = {"x": {0: "seq", 1: "batch"}, "h0": {1: "batch"}, "y": {0: "seq", 1: "batch"},
           "h_n": {1: "batch"}}
    return (m, (torch.randn(5, 1, 40), torch.randn(2, 1, 64)), sets, ["x", "h0"],
            ["y", "h_n"], dyn)


def build_birnn():
    import torch
    _seed(0)

    class BiRNN(torch.nn.Module):
        """Bidirectional GRU and an Elman RNN (tanh) stacked, with masked mean
        pooling over time."""

        def __init__(self, feat=24, hid=32):
            super().__init__()
            self.gru = torch.nn.GRU(feat, hid, batch_first=True, bidirectional=True)
            self.rnn = torch.nn.RNN(2 * hid, hid, batch_first=True, nonlinearity="tanh")
            self.out = torch.nn.Linear(hid, 3)

        def forward(self, x, mask):
            y, _ = self.gru(x)
            y, h = self.rnn(y)
            m = mask.unsqueeze(-1).to(y.dtype)
            pooled = (y * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.out(pooled), h

    def mk(b, t):
        mask = torch.ones(b, t)
        if b > 1:
            mask[1, t // 2:] = 0
        return torch.randn(b, t, 24), mask

    dyn = {"x": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"},
           "logits": {0: "batch"}, "h_n": {1: "batch"}}
    return BiRNN().eval(), mk(1, 6), [mk(4, 13), mk(1, 1)], ["x", "mask"], \
        ["logits", "h_n"], dyn


def build_ssdlite_head():
    """torchvision SSDLite320-MobileNetV3 backbone + detection head (raw box
    regressions and class logits, before the data-dependent post-processing)."""
    import torch
    import torchvision
    _seed(0)
    det = torchvision.models.detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None).eval()

    class Head(torch.nn.Module):
        def __init__(self, d):
            super().__init__()
            self.backbone = d.backbone
            self.head = d.head

        def forward(self, x):
            feats = list(self.backbone(x).values())
            o = self.head(feats)
            return o["bbox_regression"], o["cls_logits"]

    h = calibrate_bn(Head(det), _img(2, 320))
    dyn = {"input": {0: "batch"}, "bbox_regression": {0: "batch"}, "cls_logits": {0: "batch"}}
    return (h, (_img(1, 320),), [(_img(2, 320),), (_img(1, 320),)], ["input"],
            ["bbox_regression", "cls_logits"], dyn)


def build_fasterrcnn_rpn():
    """torchvision Faster R-CNN (MobileNetV3 FPN) backbone + RPN head."""
    import torch
    import torchvision
    _seed(0)
    det = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None).eval()

    class Head(torch.nn.Module):
        def __init__(self, d):
            super().__init__()
            self.backbone = d.backbone
            self.rpn_head = d.rpn.head

        def forward(self, x):
            feats = list(self.backbone(x).values())
            obj, deltas = self.rpn_head(feats)
            return tuple(obj) + tuple(deltas)

    h = calibrate_bn(Head(det), _img(2, 320))
    with torch.no_grad():
        n_lvl = len(h(_img(1, 320))) // 2
    outs = ["objectness_%d" % i for i in range(n_lvl)] + ["deltas_%d" % i for i in range(n_lvl)]
    dyn = {"input": {0: "batch"}}
    dyn.update({o: {0: "batch"} for o in outs})
    return h, (_img(1, 320),), [(_img(2, 320),), (_img(1, 320),)], ["input"], outs, dyn


def build_detr_head():
    """A DETR-like detector from plain modules: ResNet-18 trunk, 1x1 projection,
    learned positional embedding, nn.Transformer encoder-decoder with object
    queries, class and box heads (sigmoid boxes)."""
    import torch
    import torchvision
    _seed(0)

    class DETR(torch.nn.Module):
        def __init__(self, classes=21, d=128, queries=20):
            super().__init__()
            r = torchvision.models.resnet18(weights=None)
            self.trunk = torch.nn.Sequential(*list(r.children())[:-2])
            self.proj = torch.nn.Conv2d(512, d, 1)
            self.pos = torch.nn.Parameter(torch.randn(1, 49, d) * 0.1)
            self.query = torch.nn.Parameter(torch.randn(1, queries, d))
            self.tf = torch.nn.Transformer(d, nhead=8, num_encoder_layers=2,
                                           num_decoder_layers=2, dim_feedforward=256,
                                           dropout=0.0, batch_first=True)
            self.cls = torch.nn.Linear(d, classes + 1)
            self.box = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.ReLU(),
                                           torch.nn.Linear(d, 4))

        def forward(self, x):
            f = self.proj(self.trunk(x))              # B, d, 7, 7
            src = f.flatten(2).transpose(1, 2) + self.pos
            q = self.query.expand(x.shape[0], -1, -1)
            h = self.tf(src, q)
            return self.cls(h), self.box(h).sigmoid()

    m = calibrate_bn(DETR(), _img(2))
    dyn = {"input": {0: "batch"}, "class_logits": {0: "batch"}, "boxes": {0: "batch"}}
    return m, (_img(1),), [(_img(2),), (_img(1),)], ["input"], ["class_logits", "boxes"], dyn


def build_yolo_head():
    """A YOLO-like single-stage detector from plain modules: CSP-ish conv
    trunk with SiLU, an FPN-style upsample+concat neck and per-level
    1x1 prediction convs decoded to (xywh, obj, cls) with grid offsets."""
    import torch
    _seed(0)

    def cbs(ci, co, k=3, s=1):
        return torch.nn.Sequential(torch.nn.Conv2d(ci, co, k, s, k // 2, bias=False),
                                   torch.nn.BatchNorm2d(co), torch.nn.SiLU())

    class Block(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.a = cbs(c, c // 2, 1)
            self.b = cbs(c // 2, c // 2, 3)
            self.c = cbs(c, c, 1)

        def forward(self, x):
            y = self.a(x)
            return self.c(torch.cat([y + self.b(y), y], 1))

    class YOLO(torch.nn.Module):
        def __init__(self, nc=8, na=3):
            super().__init__()
            self.nc, self.na = nc, na
            self.s1 = torch.nn.Sequential(cbs(3, 16, 3, 2), cbs(16, 32, 3, 2), Block(32))
            self.s2 = torch.nn.Sequential(cbs(32, 64, 3, 2), Block(64))      # stride 8
            self.s3 = torch.nn.Sequential(cbs(64, 128, 3, 2), Block(128))    # stride 16
            self.lat = cbs(128, 64, 1)
            self.up = torch.nn.Upsample(scale_factor=2, mode="nearest")
            self.fuse = cbs(128, 64, 3)
            self.p8 = torch.nn.Conv2d(64, na * (5 + nc), 1)
            self.p16 = torch.nn.Conv2d(128, na * (5 + nc), 1)

        def decode(self, p, stride):
            b, _, h, w = p.shape
            p = p.view(b, self.na, 5 + self.nc, h, w).permute(0, 1, 3, 4, 2)
            gy, gx = torch.meshgrid(torch.arange(h, dtype=p.dtype),
                                    torch.arange(w, dtype=p.dtype), indexing="ij")
            grid = torch.stack((gx, gy), -1)
            xy = (p[..., :2].sigmoid() * 2 - 0.5 + grid) * stride
            wh = (p[..., 2:4].sigmoid() * 2) ** 2 * stride * 4
            rest = p[..., 4:].sigmoid()
            return torch.cat([xy, wh, rest], -1).reshape(b, -1, 5 + self.nc)

        def forward(self, x):
            c8 = self.s2(self.s1(x))
            c16 = self.s3(c8)
            n8 = self.fuse(torch.cat([self.up(self.lat(c16)), c8], 1))
            return torch.cat([self.decode(self.p8(n8), 8), self.decode(self.p16(c16), 16)], 1)

    m = calibrate_bn(YOLO(), _img(2, 256))
    # height, width and batch are all dynamic: the grid is built from the shape
    dyn = {"input": {0: "batch", 2: "height", 3: "width"}, "detections": {0: "batch", 1: "boxes"}}
    return m, (_img(1, 256),), [(_img(2, 256),), (torch.randn(1, 3, 160, 224),)], ["input"], \
        ["detections"], dyn


def build_ssdlite_full():
    """The whole torchvision SSDLite320 detector, post-processing included
    (TopK, NMS, data-dependent shapes). Random weights: a zero score threshold
    keeps detections in the output."""
    import torch
    import torchvision
    _seed(0)
    det = torchvision.models.detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, score_thresh=0.0, detections_per_img=50,
        topk_candidates=100)
    calibrate_bn(det.backbone, torch.rand(2, 3, 320, 320))

    class Wrap(torch.nn.Module):
        def __init__(self, d):
            super().__init__()
            self.d = d

        def forward(self, x):
            o = self.d([x[0]])[0]
            return o["boxes"], o["scores"], o["labels"]

    return Wrap(det), (torch.rand(1, 3, 320, 320),), [(torch.rand(1, 3, 320, 320),)], \
        ["input"], ["boxes", "scores", "labels"], {}


def build_unet():
    """A UNet-style segmenter from plain modules: strided and dilated convs,
    grouped convs, GroupNorm, PReLU / LeakyReLU / ELU / Mish, ConvTranspose2d
    with output_padding, bilinear (align_corners) and bicubic upsampling,
    PixelShuffle, ceil-mode pooling and a skip-concatenating decoder."""
    import torch
    import torch.nn.functional as F
    _seed(0)
    nn = torch.nn

    class Down(nn.Module):
        def __init__(self, ci, co):
            super().__init__()
            self.c1 = nn.Conv2d(ci, co, 3, 2, 1)
            self.n1 = nn.GroupNorm(4, co)
            self.a1 = nn.PReLU(co)
            self.c2 = nn.Conv2d(co, co, 3, 1, 2, dilation=2, groups=4)
            self.a2 = nn.LeakyReLU(0.1)

        def forward(self, x):
            return self.a2(self.c2(self.a1(self.n1(self.c1(x)))))

    class UNet(nn.Module):
        def __init__(self, classes=5):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 5, 1, 2), nn.InstanceNorm2d(16, affine=True),
                                      nn.ELU())
            self.d1, self.d2, self.d3 = Down(16, 32), Down(32, 64), Down(64, 128)
            self.pool = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
            self.mpool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
            self.up3 = nn.ConvTranspose2d(128, 64, 3, 2, 1, output_padding=1)
            self.up2 = nn.ConvTranspose2d(128, 32, 4, 2, 1, groups=2)
            self.fuse1 = nn.Conv2d(64, 64, 1)
            self.ps = nn.PixelShuffle(2)
            self.head = nn.Conv2d(16 + 16 + 2, classes, 3, 1, 1)

        def forward(self, x):
            s = self.stem(x)
            a = self.d1(s)
            b = self.d2(a)
            c = self.d3(b)
            g = F.interpolate(self.pool(self.mpool(c)), size=c.shape[-2:], mode="bilinear",
                              align_corners=True)
            u = torch.cat([self.up3(c + g), b], 1)
            u = torch.cat([self.up2(u), a], 1)
            u = F.mish(self.fuse1(u))
            u = self.ps(u)                                   # 64 -> 16 channels, x2
            e = F.interpolate(s.mean(1, keepdim=True), scale_factor=0.5, mode="bicubic",
                              align_corners=False)
            e = F.interpolate(torch.cat([e, e.amax(1, keepdim=True)], 1),
                              size=u.shape[-2:], mode="nearest")
            logits = self.head(torch.cat([u, s, e], 1))
            return logits, logits.softmax(1)

    m = UNet().eval()
    hw = {0: "batch", 2: "height", 3: "width"}
    dyn = {"input": hw, "logits": hw, "probs": hw}
    return m, (_img(1, 64),), [(_img(2, 96),), (torch.randn(1, 3, 64, 128),)], ["input"], \
        ["logits", "probs"], dyn


def build_whisper_encoder():
    """The encoder of a small Whisper (Conv1d stem with GELU, sinusoidal
    positions, pre-LN transformer) on log-mel features."""
    import torch
    from transformers import WhisperConfig, WhisperModel
    _seed(0)
    cfg = WhisperConfig(vocab_size=1000, num_mel_bins=80, encoder_layers=2, decoder_layers=2,
                        d_model=192, encoder_attention_heads=4, decoder_attention_heads=4,
                        encoder_ffn_dim=384, decoder_ffn_dim=384, max_source_positions=100,
                        pad_token_id=0, bos_token_id=0, eos_token_id=0,
                        decoder_start_token_id=0)
    cfg._attn_implementation = "eager"
    enc = WhisperModel(cfg).get_encoder().eval()
    w = _HFWrap.make(enc, ["input_features"], ["last_hidden_state"])
    dyn = {"input_features": {0: "batch"}, "last_hidden_state": {0: "batch"}}
    return (w, (torch.randn(1, 80, 200),), [(torch.randn(3, 80, 200),), (torch.randn(1, 80, 200),)],
            ["input_features"], ["last_hidden_state"], dyn)


def build_clip_text():
    """CLIP's text tower: causal mask, quick-GELU, and pooling by gathering
    the hidden state at the argmax (end-of-text) token."""
    from transformers import CLIPTextConfig, CLIPTextModel
    _seed(0)
    cfg = CLIPTextConfig(vocab_size=2000, hidden_size=256, intermediate_size=512,
                         num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=64,
                         eos_token_id=2, bos_token_id=0, pad_token_id=1)
    cfg._attn_implementation = "eager"
    m = CLIPTextModel(cfg).eval()
    w = _HFWrap.make(m, ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"])

    def mk(b, t, seed):
        ids, mask = _hf_tokens(cfg.vocab_size, b, t, pad_from=t - 3, seed=seed)
        ids[ids == 2] = 3
        ids[:, -1] = 2  # one end-of-text token per row
        return ids, mask

    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
           "last_hidden_state": {0: "batch", 1: "seq"}, "pooler_output": {0: "batch"}}
    return (w, mk(1, 8, 0), [mk(2, 16, 1), mk(1, 2, 2)], ["input_ids", "attention_mask"],
            ["last_hidden_state", "pooler_output"], dyn)


def build_roberta():
    """A small RoBERTa: position ids are computed from the input ids
    (CumSum over a not-padding mask), padding tokens in the input."""
    from transformers import RobertaConfig, RobertaModel
    _seed(0)
    cfg = RobertaConfig(vocab_size=3000, hidden_size=256, intermediate_size=512,
                        num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=80,
                        pad_token_id=1, bos_token_id=0, eos_token_id=2)
    cfg._attn_implementation = "eager"
    m = RobertaModel(cfg, add_pooling_layer=True).eval()
    w = _HFWrap.make(m, ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"])

    def mk(b, t, seed):
        ids, mask = _hf_tokens(cfg.vocab_size, b, t, pad_from=t - 4, seed=seed)
        ids[ids == 1] = 5
        ids[mask == 0] = 1  # real padding tokens where the mask is 0
        return ids, mask

    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
           "last_hidden_state": {0: "batch", 1: "seq"}, "pooler_output": {0: "batch"}}
    return (w, mk(1, 8, 0), [mk(3, 20, 1), mk(1, 1, 2)], ["input_ids", "attention_mask"],
            ["last_hidden_state", "pooler_output"], dyn)


def _hf_model(make, kwarg_names, fields, sets, dyn, **fixed):
    _seed(0)
    m = make().eval()
    return _HFWrap.make(m, kwarg_names, fields, **fixed), sets[0], sets, list(kwarg_names), \
        list(fields), dyn


def _tok_dyn(names, outs):
    d = {n: {0: "batch", 1: "seq"} for n in names}
    d.update({o: {0: "batch", 1: "seq"} for o in outs})
    return d


def build_hf_detr():
    """transformers' DETR (its own ResNet-50 backbone, no timm): sine position
    embeddings from the pixel mask, encoder-decoder, class and box heads;
    dynamic batch, height and width."""
    import torch
    from transformers import DetrConfig, DetrForObjectDetection
    cfg = DetrConfig(use_timm_backbone=False, use_pretrained_backbone=False, num_queries=20,
                     d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                     decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256,
                     num_labels=10)
    cfg._attn_implementation = "eager"
    _seed(0)
    sets = [(torch.randn(2, 3, 224, 224),), (torch.randn(1, 3, 160, 192),)]
    return _hf_model(lambda: calibrate_bn(DetrForObjectDetection(cfg), torch.randn(2, 3, 224, 224)),
                     ["pixel_values"], ["logits", "pred_boxes"], sets,
                     {"pixel_values": {0: "batch", 2: "height", 3: "width"},
                      "logits": {0: "batch"}, "pred_boxes": {0: "batch"}})


def build_segformer():
    """SegFormer: overlapping patch embeddings, attention with a strided
    spatial-reduction conv, Mix-FFN depthwise conv, all-MLP decoder with
    bilinear upsampling; dynamic height and width."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation
    cfg = SegformerConfig(num_labels=6, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
                          decoder_hidden_size=64, num_attention_heads=[1, 2, 2, 4])
    cfg._attn_implementation = "eager"
    _seed(0)
    sets = [(torch.randn(2, 3, 128, 128),), (torch.randn(1, 3, 96, 160),)]
    return _hf_model(lambda: calibrate_bn(SegformerForSemanticSegmentation(cfg),
                                          torch.randn(2, 3, 128, 128)),
                     ["pixel_values"], ["logits"], sets,
                     {"pixel_values": {0: "batch", 2: "height", 3: "width"},
                      "logits": {0: "batch", 2: "h4", 3: "w4"}})


def build_dinov2():
    """DINOv2 ViT: position embeddings bicubic-interpolated to the input's
    patch grid (dynamic height and width), layer scale, CLS pooling."""
    import torch
    from transformers import Dinov2Config, Dinov2Model
    cfg = Dinov2Config(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=256, image_size=112, patch_size=14)
    cfg._attn_implementation = "eager"
    _seed(0)
    sets = [(torch.randn(2, 3, 112, 112),), (torch.randn(1, 3, 84, 140),)]
    return _hf_model(lambda: Dinov2Model(cfg), ["pixel_values"],
                     ["last_hidden_state", "pooler_output"], sets,
                     {"pixel_values": {0: "batch", 2: "height", 3: "width"},
                      "last_hidden_state": {0: "batch", 1: "tokens"}, "pooler_output": {0: "batch"}})


def build_mobilevit():
    """MobileViT: convs interleaved with transformers over unfolded patches."""
    import torch
    from transformers import MobileViTConfig, MobileViTForImageClassification
    cfg = MobileViTConfig(image_size=128, hidden_sizes=[48, 64, 80],
                          neck_hidden_sizes=[16, 24, 32, 48, 64, 80, 160], num_labels=10)
    cfg._attn_implementation = "eager"
    _seed(0)
    sets = [(torch.randn(2, 3, 128, 128),), (torch.randn(1, 3, 128, 128),)]
    return _hf_model(lambda: calibrate_bn(MobileViTForImageClassification(cfg),
                                          torch.randn(2, 3, 128, 128)),
                     ["pixel_values"], ["logits"], sets,
                     {"pixel_values": {0: "batch"}, "logits": {0: "batch"}})


def build_bart():
    """A small BART encoder-decoder (learned positions, cross-attention)."""
    from transformers import BartConfig, BartForConditionalGeneration
    cfg = BartConfig(vocab_size=1000, d_model=128, encoder_layers=2, decoder_layers=2,
                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=256,
                     decoder_ffn_dim=256, max_position_embeddings=128, use_cache=False,
                     pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    cfg._attn_implementation = "eager"

    def mk(b, s, t, seed):
        i, m = _hf_tokens(1000, b, s, pad_from=s - 3, seed=seed)
        d, _ = _hf_tokens(1000, b, t, seed=seed + 5)
        return i, m, d

    names = ["input_ids", "attention_mask", "decoder_input_ids"]
    dyn = {"input_ids": {0: "batch", 1: "src"}, "attention_mask": {0: "batch", 1: "src"},
           "decoder_input_ids": {0: "batch", 1: "tgt"}, "logits": {0: "batch", 1: "tgt"}}
    return _hf_model(lambda: BartForConditionalGeneration(cfg), names, ["logits"],
                     [mk(1, 8, 4, 0), mk(2, 14, 6, 1), mk(1, 2, 1, 2)], dyn, use_cache=False)


def build_bloom():
    """A small BLOOM decoder: ALiBi position biases instead of embeddings."""
    from transformers import BloomConfig, BloomForCausalLM
    cfg = BloomConfig(vocab_size=1000, hidden_size=128, n_layer=2, n_head=4, use_cache=False,
                      bos_token_id=0, eos_token_id=0, pad_token_id=0)
    cfg._attn_implementation = "eager"
    sets = [_hf_tokens(1000, 1, 8), _hf_tokens(1000, 2, 12, pad_from=9), _hf_tokens(1000, 1, 1)]
    return _hf_model(lambda: BloomForCausalLM(cfg), ["input_ids", "attention_mask"], ["logits"],
                     sets, _tok_dyn(["input_ids", "attention_mask"], ["logits"]), use_cache=False)


def build_deberta():
    """A small DeBERTa-v2 encoder: disentangled attention with log-bucketed
    relative positions (content-to-position and position-to-content)."""
    from transformers import DebertaV2Config, DebertaV2Model
    cfg = DebertaV2Config(vocab_size=1000, hidden_size=128, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=256,
                          max_position_embeddings=128, relative_attention=True,
                          position_buckets=32, pos_att_type=["p2c", "c2p"])
    cfg._attn_implementation = "eager"
    sets = [_hf_tokens(1000, 1, 8), _hf_tokens(1000, 2, 12, pad_from=9), _hf_tokens(1000, 1, 3)]
    return _hf_model(lambda: DebertaV2Model(cfg), ["input_ids", "attention_mask"],
                     ["last_hidden_state"], sets,
                     _tok_dyn(["input_ids", "attention_mask"], ["last_hidden_state"]))


def build_text_ops():
    """A small text encoder from plain modules with the layers exporters
    handle in less common ways: Embedding with padding_idx, Conv1d with
    padding='same' and an even kernel (asymmetric pads), LayerNorm without
    bias, nn.RMSNorm (the legacy exporter cannot convert it: this one goes
    through the dynamo exporter), sequence-first nn.MultiheadAttention with a
    key padding mask returning its averaged weights, causal
    scaled_dot_product_attention, tanh-approximated GELU."""
    import torch
    import torch.nn.functional as F
    _seed(0)
    nn = torch.nn

    class TextOps(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(100, 64, padding_idx=0)
            self.conv = nn.Conv1d(64, 64, 4, padding="same")
            self.ln = nn.LayerNorm(64, bias=False)
            self.rms = nn.RMSNorm(64)
            self.mha = nn.MultiheadAttention(64, 4)
            self.qkv = nn.Linear(64, 192)
            self.out = nn.Linear(64, 10)

        def forward(self, tokens, pad_mask):
            x = self.emb(tokens)
            x = self.ln(x + self.conv(x.transpose(1, 2)).transpose(1, 2))
            t = x.transpose(0, 1)
            y, w = self.mha(t, t, t, key_padding_mask=pad_mask, need_weights=True)
            x = self.rms(x + y.transpose(0, 1))
            q, k, v = self.qkv(x).view(x.shape[0], x.shape[1], 3, 4, 16).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = F.gelu(x + a.transpose(1, 2).reshape(x.shape), approximate="tanh")
            return self.out(x), w

    def mk(b, t):
        tok = torch.randint(1, 100, (b, t))
        pm = torch.zeros(b, t, dtype=torch.bool)
        if b > 1:
            pm[1, t - 2:] = True
            tok[1, t - 2:] = 0
        return tok, pm

    dyn = {"tokens": {0: "batch", 1: "seq"}, "pad_mask": {0: "batch", 1: "seq"},
           "logits": {0: "batch", 1: "seq"}, "attn_weights": {0: "batch", 1: "seq", 2: "seq"}}
    return TextOps().eval(), mk(2, 9), [mk(3, 12), mk(1, 1)], ["tokens", "pad_mask"], \
        ["logits", "attn_weights"], dyn


def build_roi_ops():
    """Detection-style sampling ops: GridSample (bilinear/border and
    nearest/zeros, both align_corners), torchvision RoIAlign (aligned, fixed
    sampling ratio) and RoIPool over a dynamic number of boxes."""
    import torch
    import torch.nn.functional as F
    import torchvision
    _seed(0)
    nn = torch.nn

    class RoiOps(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3, padding=1)
            self.off = nn.Conv2d(8, 2, 3, padding=1)

        def forward(self, x, boxes):
            f = torch.relu(self.c(x))
            flow = torch.tanh(self.off(f)).permute(0, 2, 3, 1)
            w1 = F.grid_sample(f, flow, mode="bilinear", padding_mode="border", align_corners=False)
            w2 = F.grid_sample(f, flow * 1.3, mode="nearest", padding_mode="zeros",
                               align_corners=True)
            r = torchvision.ops.roi_align(w1, boxes, output_size=(5, 5), spatial_scale=0.5,
                                          sampling_ratio=2, aligned=True)
            p = torchvision.ops.roi_pool(w2, boxes, output_size=(3, 3), spatial_scale=0.5)
            return r, p

    def mk(b, n, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(b, 3, 40, 48, generator=g)
        xy = torch.rand(n, 2, generator=g) * 60
        wh = torch.rand(n, 2, generator=g) * 30 + 2
        idx = torch.randint(0, b, (n, 1), generator=g).float()
        return x, torch.cat([idx, xy, xy + wh], 1)

    dyn = {"x": {0: "batch"}, "boxes": {0: "boxes"}, "roi_align": {0: "boxes"},
           "roi_pool": {0: "boxes"}}
    return RoiOps().eval(), mk(2, 6, 0), [mk(2, 7, 1), mk(1, 1, 2)], ["x", "boxes"], \
        ["roi_align", "roi_pool"], dyn


def build_logmel():
    """An audio front end: torch.stft (ONNX STFT, opset 17) with a Hann
    window, power spectrum, a mel filterbank MatMul, log, and a Conv1d;
    dynamic batch and sample count."""
    import torch
    _seed(0)
    nn = torch.nn

    class LogMel(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("win", torch.hann_window(400))
            self.register_buffer("fb", torch.rand(201, 40))
            self.conv = nn.Conv1d(40, 32, 3, padding=1)

        def forward(self, wav):
            spec = torch.stft(wav, 400, 160, 400, self.win, center=False, return_complex=False)
            power = spec.pow(2).sum(-1)
            mel = torch.log(torch.clamp(power.transpose(1, 2) @ self.fb, min=1e-10))
            return self.conv(mel.transpose(1, 2))

    dyn = {"wav": {0: "batch", 1: "samples"}, "features": {0: "batch", 2: "frames"}}
    return LogMel().eval(), (torch.randn(1, 4000),), \
        [(torch.randn(2, 6400),), (torch.randn(1, 560),)], ["wav"], ["features"], dyn


def build_greedy_loop():
    """A scripted greedy decoder: an ONNX Loop whose trip count is an input
    (zero included), an RNN-style step with Embedding/Gemm/Tanh, ArgMax fed
    back as the next token, and a loop-carried output that grows by Concat
    every iteration."""
    import torch
    _seed(0)
    nn = torch.nn

    class Greedy(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 16)
            self.wi = nn.Linear(16, 32)
            self.wh = nn.Linear(32, 32)
            self.out = nn.Linear(32, 50)

        def forward(self, h, steps: torch.Tensor):
            tok = torch.zeros(h.shape[0], dtype=torch.long)
            res = self.out(h).unsqueeze(1)[:, :0]
            for _ in range(int(steps)):
                h = torch.tanh(self.wi(self.emb(tok)) + self.wh(h))
                logits = self.out(h)
                tok = logits.argmax(-1)
                res = torch.cat([res, logits.unsqueeze(1)], 1)
            return res, h

    m = torch.jit.script(Greedy().eval())
    g = torch.Generator().manual_seed(3)
    sets = [(torch.randn(2, 32, generator=g), torch.tensor(5)),
            (torch.randn(1, 32, generator=g), torch.tensor(1)),
            (torch.randn(3, 32, generator=g), torch.tensor(0))]
    dyn = {"h0": {0: "batch"}, "logits": {0: "batch", 1: "steps"}, "h": {0: "batch"}}
    return m, (torch.randn(1, 32), torch.tensor(3)), sets, ["h0", "steps"], ["logits", "h"], dyn


def build_ops_zoo():
    """Single layers with less common lowerings: unfold/fold (Col2Im is
    opset 18, so this model goes through the dynamo exporter), antialiased
    bilinear and trilinear Resize, masked softmax, index_select, TopK with
    indices, Sort, CumSum, normalize, logsumexp; a dynamic index list."""
    import torch
    import torch.nn.functional as F
    _seed(0)
    nn = torch.nn

    class Zoo(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x, idx):
            f = self.c(x)
            cols = F.unfold(f, 3, padding=1, stride=2)
            back = F.fold(cols, f.shape[-2:], 3, padding=1, stride=2)
            aa = F.interpolate(f, scale_factor=0.5, mode="bilinear", antialias=True,
                               align_corners=False)
            tri = F.interpolate(f.unsqueeze(2).expand(-1, -1, 2, -1, -1),
                                scale_factor=(2, 1.5, 1.5), mode="trilinear", align_corners=False)
            tril = torch.tril(torch.ones(f.shape[-1], f.shape[-1]))
            att = (f.flatten(2) @ f.flatten(2).transpose(1, 2)).masked_fill(
                torch.eye(8, dtype=torch.bool), -1e4).softmax(-1)
            sel = torch.index_select(f, 1, idx)
            v, i = torch.topk(f.flatten(1), 5, dim=1)
            srt, _ = torch.sort(f.mean((2, 3)), dim=1, descending=True)
            cs = torch.cumsum(f.mean(1), dim=-1) @ tril
            return (back, aa, tri.mean(2), att, sel, v, i, srt, cs, F.normalize(f, dim=1),
                    torch.logsumexp(f, dim=1))

    # output names must not collide with the dynamo exporter's value names
    outs = ["y_" + o for o in ("fold", "antialias", "trilinear", "attn", "selected", "top_values",
                               "top_indices", "sorted", "cumsum", "normalized", "logsumexp")]
    dyn = {"x": {0: "batch"}, "idx": {0: "k"}}
    dyn.update({o: {0: "batch"} for o in outs})
    dyn["y_selected"] = {0: "batch", 1: "k"}
    return Zoo().eval(), (torch.randn(2, 3, 16, 20), torch.tensor([0, 3, 5])), \
        [(torch.randn(2, 3, 16, 20), torch.tensor([7, 1, 1, 4])),
         (torch.randn(1, 3, 16, 20), torch.tensor([2]))], ["x", "idx"], outs, dyn


# name -> (builder, in the --quick set)
MODELS = {
    # the acceptance set
    "resnet50": (_cnn("resnet50"), True),
    "mobilenet_v2": (_cnn("mobilenet_v2"), True),
    "efficientnet_b0": (_cnn("efficientnet_b0"), True),
    "vit_b_16": (_cnn("vit_b_16"), True),
    "bert_base": (build_bert, True),
    # more vision CNNs / vision transformers
    "convnext_tiny": (_cnn("convnext_tiny"), False),
    "mobilenet_v3_large": (_cnn("mobilenet_v3_large"), False),
    "shufflenet_v2": (_cnn("shufflenet_v2_x1_0"), False),
    "densenet121": (_cnn("densenet121"), False),
    "squeezenet1_1": (_cnn("squeezenet1_1", size=227), False),
    "inception_v3": (_cnn("inception_v3", size=299, aux_logits=False,
                          init_weights=True), False),
    "regnet_y_400mf": (_cnn("regnet_y_400mf"), False),
    "swin_t": (_cnn("swin_t"), False),
    "deeplabv3_mobilenet": (_cnn("segmentation.deeplabv3_mobilenet_v3_large", size=256,
                                 batches=(1,), out_key="out", weights_backbone=None,
                                 aux_loss=False), False),
    "r3d_18": (_cnn("video.r3d_18", size=64, frames=8, batches=(1,)), False),
    "unet_like": (build_unet, False),
    "segformer": (build_segformer, False),
    "dinov2": (build_dinov2, False),
    "mobilevit": (build_mobilevit, False),
    # transformer encoders and decoders
    "distilbert": (build_distilbert, False),
    "gpt2_small": (build_gpt2, False),
    "gpt2_kv_cache": (build_gpt2_kv, True),
    "llama_tiny": (build_llama, False),
    "t5_small": (build_t5, False),
    "roberta_small": (build_roberta, False),
    "clip_text": (build_clip_text, False),
    "whisper_encoder": (build_whisper_encoder, False),
    "logmel_frontend": (build_logmel, False),
    "text_ops": (build_text_ops, False),
    "deberta_v2": (build_deberta, False),
    "bart": (build_bart, False),
    "bloom": (build_bloom, False),
    # recurrent
    "lstm_classifier": (build_lstm, True),
    "gru_tagger": (build_gru, False),
    "birnn_pool": (build_birnn, False),
    "greedy_loop": (build_greedy_loop, True),
    # detection
    "ssdlite_head": (build_ssdlite_head, False),
    "fasterrcnn_rpn": (build_fasterrcnn_rpn, False),
    "detr_like": (build_detr_head, False),
    "hf_detr": (build_hf_detr, False),
    "roi_ops": (build_roi_ops, False),
    "ops_zoo": (build_ops_zoo, False),
    "yolo_like": (build_yolo_head, True),
    "ssdlite_full": (build_ssdlite_full, False),
}


# Also exported with the dynamo (torch.export) exporter, the default of
# torch.onnx.export nowadays, which writes quite different graphs.
DYNAMO = ["resnet50", "mobilenet_v2", "vit_b_16", "bert_base", "gpt2_small", "gpt2_kv_cache",
          "llama_tiny", "lstm_classifier", "detr_like"]


# Rewritten by onnxruntime's own tools (quantization, transformer
# optimizer) from an exported case at opset 17: tests/models/ort_tools.py.
def _derived():
    import ort_tools
    return ort_tools.DERIVED


def model_names():
    return list(MODELS) + [n + "_dynamo" for n in DYNAMO] + list(_derived())


def case_names(quick, only=None):
    """[(model, opset, case name)]; a model name ending in _dynamo is the
    dynamo export of the model without the suffix."""
    names = [n for n, (_, q) in MODELS.items() if q or not quick]
    if not quick:
        names += [n + "_dynamo" for n in DYNAMO] + list(_derived())
    if only:
        want = set(only)
        unknown = want - set(model_names())
        if unknown:
            sys.exit("unknown model(s): %s (see --list)" % ", ".join(sorted(unknown)))
        names = [n for n in model_names() if n in want]
    return [(n, op, "%s_op%d" % (n, op)) for n in names
            for op in (OPSETS[:1] if n in _derived() else OPSETS)]


# ---------------------------------------------------------------- writing
def _to_np(t):
    return t.detach().cpu().numpy()


def write_pb(path, arr, name):
    from onnx import numpy_helper
    t = numpy_helper.from_array(arr, name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def ort_session(path, optimize=True):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def rel_l2(a, b):
    import numpy as np
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    nb = np.linalg.norm(b)
    nd = np.linalg.norm(a - b)
    if nb == 0:
        return 0.0 if nd == 0 else float("inf")
    return float(nd / nb)


def _named(module, in_names):
    """torch.export maps dynamic_shapes by argument name and cannot see
    through *args: wrap the module in one whose forward names its inputs."""
    import torch
    ns = {}
    exec("def forward(self, %s):\n    return self.inner(%s)\n" % (
        ", ".join(in_names), ", ".join(in_names)), ns)
    cls = type("Named", (torch.nn.Module,), {"forward": ns["forward"]})
    w = cls()
    w.inner = module
    return w.eval()


def do_export(module, example, path, opset, in_names, out_names, dyn, exporter="legacy",
              dynamo_example=None):
    """exporter "legacy": the TorchScript exporter (it honours opset_version
    17/18), the dynamo exporter only if that fails. "dynamo": torch.export
    based only (it may write a newer opset than asked: kept, and recorded).
    Returns (exporter used, earlier errors)."""
    import torch
    errors = []
    for dynamo in ((False, True) if exporter == "legacy" else (True,)):
        try:
            kw = dict(opset_version=opset, input_names=in_names, output_names=out_names)
            mod, ex = module, example
            if dynamo:
                # weights in model.onnx.data, as this exporter does by default
                kw.update(dynamo=True, external_data=True)
                # an example of size 1 in a dynamic dim would be specialized
                ex = dynamo_example or example
                mod = _named(module, in_names)
                if dyn:
                    kw["dynamic_shapes"] = {
                        n: {ax: torch.export.Dim.DYNAMIC for ax in dyn[n]} if n in dyn
                        else None for n in in_names}
            else:
                kw.update(dynamo=False, dynamic_axes=dyn or None, do_constant_folding=True)
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                # no torch.no_grad() here: under it nn.MultiheadAttention takes
                # its fused fast path (aten::_native_multi_head_attention),
                # which the legacy exporter cannot convert
                torch.onnx.export(mod, ex, path, **kw)
            import onnx
            m = onnx.load(path, load_external_data=False)
            got = {o.domain or "ai.onnx": o.version for o in m.opset_import}
            if got.get("ai.onnx") != opset:
                if not dynamo:
                    raise RuntimeError("exporter wrote opset %s, wanted %d" % (got, opset))
                errors.append("dynamo exporter wrote ai.onnx opset %s for %d" % (
                    got.get("ai.onnx"), opset))
            return "dynamo" if dynamo else "legacy", errors
        except Exception as e:  # noqa: BLE001 - report every exporter failure
            errors.append("%s exporter: %s: %s" % ("dynamo" if dynamo else "legacy",
                                                   type(e).__name__, str(e)[:400]))
    raise RuntimeError("; ".join(errors))


def export_case(name, opset, case_dir, log):
    if name in _derived():
        import ort_tools
        base = _derived()[name][0]
        bdir = os.path.join(os.path.dirname(case_dir), "%s_op%d" % (base, opset))
        if not case_complete(bdir):
            shutil.rmtree(bdir, ignore_errors=True)
            export_case(base, opset, bdir, log)
        return ort_tools.derive(name, bdir, case_dir, opset, log)
    import numpy as np
    import torch
    torch.set_num_threads(1)
    t0 = time.time()
    base, exporter = (name[:-len("_dynamo")], "dynamo") if name.endswith("_dynamo") \
        else (name, "legacy")
    module, example, sets, in_names, out_names, dyn = MODELS[base][0]()
    # wrappers are created in training mode, and the legacy exporter restores
    # the top module's mode recursively afterwards: force eval everywhere
    module.eval()
    os.makedirs(case_dir, exist_ok=True)
    tmp = os.path.join(case_dir, "model.onnx")  # meta.json, written last, marks completion
    how, errs = do_export(module, example, tmp, opset, in_names, out_names, dyn, exporter,
                          dynamo_example=sets[0])
    module.eval()
    t_export = time.time() - t0

    import onnx
    model = onnx.load(tmp, load_external_data=False)
    init = {i.name for i in model.graph.initializer}
    graph_in = [i.name for i in model.graph.input if i.name not in init]
    graph_out = [o.name for o in model.graph.output]
    sess = ort_session(tmp)
    raw_sess = ort_session(tmp, optimize=False)
    meta_sets = []
    for si, test_in in enumerate(sets):
        feeds = {n: _to_np(t) for n, t in zip(in_names, test_in) if n in graph_in}
        missing = [n for n in graph_in if n not in feeds]
        if missing:
            raise RuntimeError("graph inputs without data: %s" % missing)
        outs = sess.run(None, feeds)  # warm-up, then timed runs
        times = []
        for _ in range(3):
            t = time.perf_counter()
            outs = sess.run(None, feeds)
            times.append(time.perf_counter() - t)
        # onnxruntime with graph optimizations off: its distance to the
        # optimized run is the float noise floor any implementation lives with
        floor = [rel_l2(a, b) for a, b in zip(raw_sess.run(None, feeds), outs)]
        # and the distance to PyTorch itself, as a check of the export
        with torch.no_grad():
            ref = module(*test_in)
        if isinstance(ref, torch.Tensor):
            ref = (ref,)
        vs_torch = [rel_l2(o, _to_np(r)) for o, r in zip(outs, ref)]
        if any(not v <= 1e-3 for v in vs_torch):
            raise RuntimeError("the export is unfaithful: onnxruntime differs from PyTorch "
                               "on test set %d (rel-L2 %s)" % (si, vs_torch))
        sd = os.path.join(case_dir, "test_data_set_%d" % si)
        os.makedirs(sd, exist_ok=True)
        for k, n in enumerate(graph_in):
            write_pb(os.path.join(sd, "input_%d.pb" % k), feeds[n], n)
        for k, (n, o) in enumerate(zip(graph_out, outs)):
            write_pb(os.path.join(sd, "output_%d.pb" % k), np.asarray(o), n)
        meta_sets.append({
            "inputs": {n: list(feeds[n].shape) for n in graph_in},
            "input_dtypes": {n: str(feeds[n].dtype) for n in graph_in},
            "outputs": {n: list(np.asarray(o).shape) for n, o in zip(graph_out, outs)},
            "ort_seconds_1thread": min(times), "ort_noise_floor_rel_l2": floor,
            "ort_vs_torch_rel_l2": vs_torch})
    meta = {
        "model": name, "opset": opset, "exporter": how, "exporter_errors": errs,
        "opset_written": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "external_data": os.path.isfile(tmp + ".data"),
        "torch": torch.__version__, "inputs": graph_in, "outputs": graph_out,
        "dynamic_axes": dyn, "sets": meta_sets, "export_seconds": t_export,
        "nodes": len(model.graph.node), "ops": sorted({n.op_type for n in model.graph.node}),
    }
    with open(os.path.join(case_dir, "meta.json.tmp"), "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(os.path.join(case_dir, "meta.json.tmp"), os.path.join(case_dir, "meta.json"))
    log("exported %-24s %-6s %5.1fs %4d nodes  ort %s  ort-noise %.1e  vs-torch %.1e" % (
        os.path.basename(case_dir), how, t_export, len(model.graph.node),
        "/".join("%.3fs" % m["ort_seconds_1thread"] for m in meta_sets),
        max(x for m in meta_sets for x in m["ort_noise_floor_rel_l2"]),
        max(x for m in meta_sets for x in m["ort_vs_torch_rel_l2"])))
    return meta


def case_complete(case_dir):
    return (os.path.isfile(os.path.join(case_dir, "model.onnx")) and
            os.path.isfile(os.path.join(case_dir, "meta.json")) and
            os.path.isfile(os.path.join(case_dir, "test_data_set_0", "output_0.pb")))


def export_all(out, quick, only=None, force=False, log=print):
    """Exports the missing cases; returns {case: error message} for failures."""
    os.makedirs(out, exist_ok=True)
    failures = {}
    for name, opset, case in case_names(quick, only):
        d = os.path.join(out, case)
        if case_complete(d) and not force:
            continue
        err = os.path.join(d, "export_error.txt")
        if os.path.isfile(err) and not force:
            # the exporters are deterministic: do not spend minutes failing again
            with open(err) as f:
                failures[case] = "(recorded) " + f.read().strip().splitlines()[0][:600]
            continue
        shutil.rmtree(d, ignore_errors=True)  # a half-written case from an earlier run
        try:
            export_case(name, opset, d, log)
        except Exception as e:  # noqa: BLE001 - one model failing must not stop the rest
            msg = "%s: %s" % (type(e).__name__, str(e)[:600])
            failures[case] = msg
            log("export FAILED %s: %s" % (case, msg))
            if os.environ.get("KILN_EXPORT_TRACEBACK"):
                traceback.print_exc()
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "export_error.txt"), "w") as f:
                f.write(msg.replace("\n", " ") + "\n" + traceback.format_exc())
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true",
                   help="the acceptance set (resnet50, mobilenet_v2, efficientnet_b0, "
                        "vit_b_16, bert_base) plus a KV-cache decoder, an LSTM, a "
                        "YOLO-like head and a Loop decoder, at opsets 17 and 18")
    g.add_argument("--all", action="store_true", help="every model (the default)")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--force", action="store_true", help="re-export existing cases")
    args = ap.parse_args()
    if args.list:
        for n in model_names():
            print("%-22s%s" % (n, " (quick)" if MODELS.get(n, (0, False))[1] else ""))
        return 0
    only = [s for s in args.only.split(",") if s] or None
    failures = export_all(os.path.abspath(args.out), args.quick, only, args.force)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
