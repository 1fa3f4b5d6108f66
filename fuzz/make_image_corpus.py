#!/usr/bin/env python3
"""make_image_corpus.py: writes the ImageDecoder fuzz seeds (fuzz/corpus/image):
one small image per encoding that tests/engine/test_image_decoder.py checks
against Pillow (7x1 and 13x17 pixels), each behind the format byte the fuzz
body reads (0 RGB, 1 BGR, 2 Grayscale, cycling).

usage: make_image_corpus.py OUT_DIR
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "tid", os.path.join(HERE, "..", "tests", "engine", "test_image_decoder.py"))
tid = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tid)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
tid.SIZES = [(7, 1), (13, 17)]
for i, (name, data) in enumerate(tid.cases()):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([i % 3]) + data)
