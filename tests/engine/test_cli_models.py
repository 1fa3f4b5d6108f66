#!/usr/bin/env python3
"""The CLI on real exported models (issue 11's "done when"):
- `kiln bench` and `kiln inspect --profile-runs` run the exported BERT-base,
  GPT-2 and T5 models with no input files and no shapes given (token ids
  drawn inside each embedding table, masks of ones, symbolic dims at 1), and
  also at a batch and sequence length chosen on the command line;
- two builds of ResNet-50 with the same timing cache are byte-identical (the
  first one times tactics and fills the cache, the second is served by it).
Models come from tests/models/export_models.py (cached in build/models, the
folder the models suite uses). Ends with `N passed, M failed`.

usage: test_cli_models.py KILN_BINARY [--models-dir DIR]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
import export_models  # noqa: E402

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail and not ok else ""))
    sys.stdout.flush()


def run(cmd, timeout=900):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "build", "models"))
    args = ap.parse_args()
    kiln = os.path.abspath(args.kiln)
    mdir = os.path.abspath(args.models_dir)
    errors = export_models.export_all(mdir, False, ["bert_base", "gpt2_small", "t5_small",
                                                    "resnet50"],
                                      log=lambda s: print(s, flush=True))
    for name, shapes in (("bert_base", "input_ids:2x16,attention_mask:2x16,token_type_ids:2x16"),
                         ("gpt2_small", "input_ids:2x16,attention_mask:2x16"),
                         ("t5_small", "input_ids:2x16,attention_mask:2x16,decoder_input_ids:2x8")):
        case = name + "_op17"
        model = os.path.join(mdir, case, "model.onnx")
        if case in errors or not os.path.isfile(model):
            check("%s exported" % case, False, errors.get(case, "no model"))
            continue
        p = run([kiln, "bench", model, "--duration", "0.2", "--warmup", "20"])
        check("bench %s out of the box" % name,
              p.returncode == 0 and "Throughput:" in p.stdout, p.stderr[-500:])
        p = run([kiln, "inspect", model, "--profile-runs", "1"])
        check("inspect --profile-runs %s out of the box" % name,
              p.returncode == 0 and re.search(r"profile: 1 runs, [\d.]+ ms per run", p.stdout),
              p.stderr[-500:])
        p = run([kiln, "bench", model, "--shapes", shapes, "--duration", "0.1", "--warmup", "10",
                 "--json"])
        check("bench %s at --shapes %s" % (name, shapes),
              p.returncode == 0 and '"batch":2' in p.stdout, p.stderr[-500:])

    case = "resnet50_op17"
    model = os.path.join(mdir, case, "model.onnx")
    if case in errors or not os.path.isfile(model):
        check("%s exported" % case, False, errors.get(case, "no model"))
    else:
        tmp = tempfile.mkdtemp(prefix="kiln-cli-models-")
        cache = os.path.join(tmp, "r50.cache")
        blobs = []
        for i in range(2):
            eng = os.path.join(tmp, "r50_%d.kiln" % i)
            p = run([kiln, "build", model, "-o", eng, "--shapes", "input:1x3x224x224",
                     "--timing-cache", cache, "-q"])
            if p.returncode != 0:
                print(p.stderr[-500:])
            blobs.append(open(eng, "rb").read() if p.returncode == 0 else None)
            os.unlink(eng) if os.path.exists(eng) else None
        check("two ResNet-50 builds with one timing cache are byte-identical",
              blobs[0] is not None and blobs[0] == blobs[1])
        os.unlink(cache) if os.path.exists(cache) else None
        os.rmdir(tmp)
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
