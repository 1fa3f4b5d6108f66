#!/usr/bin/env python3
"""test_image_decoder.py: ImageDecoder against Pillow (what the ONNX
reference implementation decodes with) over many real encodings: JPEG
(4:2:0, 4:2:2, 4:4:4, progressive, grayscale, Adobe CMYK), PNG (RGB, RGBA, L, LA,
palette, 1-bit, 16-bit gray and RGB), BMP (24-bit, 32-bit, 8-bit and 1-bit palettes,
16-bit 5-5-5 and 5-6-5 bit fields, top-down), PNM (P1..P6, maxval 15, 100,
255, and 16-bit gray and color samples), TIFF (raw, LZW, deflate, packbits, gray, RGBA), WebP (lossy,
lossless, alpha) and JPEG 2000 (JP2 and raw codestream, lossless and lossy,
gray), at awkward sizes (1x1, 1xN, Nx1, odd), in RGB, BGR and Grayscale.
Expected pixels are Pillow's img.convert("RGB" / "L"), exact (atol 0).

Then hostile inputs, each of which must fail cleanly with a message (no
crash, no sanitizer report): every file truncated, garbage, empty input,
headers that declare huge images over few bytes (BMP, PNM, PNG with a valid
CRC), and a real 3000x3000 PNG (a few KB) refused by KILN_IMAGE_MAX_PIXELS.

usage: test_image_decoder.py build/bin/kiln   (prints "N passed, M failed")
"""
import io
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

RNG = np.random.default_rng(10)
SIZES = [(1, 1), (1, 9), (7, 1), (13, 17), (32, 32), (33, 64)]  # (h, w)
FORMATS = ["RGB", "BGR", "Grayscale"]


def smooth(h, w, c):
    """Gradients plus noise: compresses like a photo, exercises every value."""
    y, x = np.mgrid[0:h, 0:w]
    base = [(x * 255 // max(w - 1, 1) + k * 60) % 256 for k in range(c)]
    img = np.stack([(b + (y * 7)) % 256 for b in base], axis=-1).astype(np.int32)
    img += RNG.integers(-20, 21, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def pil_image(mode, h, w):
    if mode in ("RGB", "RGBA"):
        return Image.fromarray(smooth(h, w, len(mode)), mode)
    if mode in ("L", "LA"):
        a = smooth(h, w, len(mode))
        return Image.fromarray(a[..., 0] if mode == "L" else a, mode)
    if mode == "1":
        return Image.fromarray(smooth(h, w, 1)[..., 0] > 127)
    if mode.startswith("P"):
        colors = int(mode[1:] or 256)
        return Image.fromarray(smooth(h, w, 3), "RGB").quantize(colors)
    raise ValueError(mode)


def encode(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def bmp16(arr, masks):
    """A 16-bit BITFIELDS BMP (Pillow writes none), bottom-up."""
    h, w, _ = arr.shape
    bits = [bin(m).count("1") for m in masks]
    shifts = [(m & -m).bit_length() - 1 for m in masks]
    stride = (w * 2 + 3) // 4 * 4
    rows = b""
    for y in range(h - 1, -1, -1):
        row = b""
        for x in range(w):
            px = 0
            for c in range(3):
                px |= (int(arr[y, x, c]) >> (8 - bits[c])) << shifts[c]
            row += struct.pack("<H", px)
        rows += row + b"\0" * (stride - len(row))
    hdr = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 3, len(rows), 2835, 2835, 0, 0)
    hdr += struct.pack("<III", *masks)
    off = 14 + len(hdr)
    return b"BM" + struct.pack("<IHHI", off + len(rows), 0, 0, off) + hdr + rows


def bmp_top_down(data):
    """A bottom-up BMP rewritten top-down (negative height, rows reversed)."""
    off, = struct.unpack_from("<I", data, 10)
    w, h = struct.unpack_from("<ii", data, 18)
    bpp, = struct.unpack_from("<H", data, 28)
    stride = (w * bpp + 31) // 32 * 4
    rows = [data[off + i * stride: off + (i + 1) * stride] for i in range(h)]
    out = bytearray(data[:off]) + b"".join(reversed(rows)) + data[off + h * stride:]
    struct.pack_into("<i", out, 22, -h)
    return bytes(out)


def pnm_plain(img, kind, maxval=255):
    a = np.asarray(img)
    h, w = a.shape[:2]
    if kind == "P1":
        body = "\n".join(" ".join("0" if v else "1" for v in row) for row in a)
        return ("P1\n# plain bitmap\n%d %d\n%s\n" % (w, h, body)).encode()
    vals = (a.astype(np.int64) * maxval + 127) // 255
    body = "\n".join(" ".join(str(v) for v in row.reshape(-1)) for row in vals)
    return ("%s\n%d %d\n%d\n%s\n" % (kind, w, h, maxval, body)).encode()


def pnm_raw(arr, maxval):
    h, w = arr.shape[:2]
    kind = "P6" if arr.ndim == 3 else "P5"
    vals = (arr.astype(np.int64) * maxval + 127) // 255
    return b"%s %d %d %d\n" % (kind.encode(), w, h, maxval) + vals.astype(np.uint8).tobytes()


def png16_rgb(arr16):
    """A 16-bit RGB PNG (Pillow writes none), one filter-0 row per line."""
    h, w, _ = arr16.shape
    raw = b"".join(b"\0" + arr16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(k, b):
        return struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def gray16(h, w, top):
    """16-bit gray samples, many at or below 255 (where Pillow's clip to 8
    bits keeps them) and some above."""
    return RNG.integers(0, top + 1, size=(h, w)).astype(np.uint16)


def cases():
    """Yields (name, bytes)."""
    for h, w in SIZES:
        t = "%dx%d" % (h, w)
        rgb = pil_image("RGB", h, w)
        for sub in (0, 1, 2):
            yield "jpeg_sub%d_%s" % (sub, t), encode(rgb, "JPEG", quality=85, subsampling=sub)
        yield "jpeg_prog_%s" % t, encode(rgb, "JPEG", quality=70, progressive=True)
        yield "jpeg_gray_%s" % t, encode(pil_image("L", h, w), "JPEG")
        yield "jpeg_cmyk_%s" % t, encode(Image.fromarray(smooth(h, w, 4), "CMYK"), "JPEG")
        for mode in ("RGB", "RGBA", "L", "LA", "P", "1"):
            yield "png_%s_%s" % (mode, t), encode(pil_image(mode, h, w), "PNG")
        yield "png_gray16_%s" % t, encode(Image.fromarray(gray16(h, w, 400)), "PNG")
        yield "png_rgb16_%s" % t, png16_rgb(RNG.integers(0, 65536, size=(h, w, 3)))
        for mv in (300, 1000, 65535):
            g16 = np.minimum(gray16(h, w, 400), mv).astype(">u2")
            yield "pgm16_max%d_%s" % (mv, t), b"P5 %d %d %d\n" % (w, h, mv) + g16.tobytes()
        c16 = RNG.integers(0, 1001, size=(h, w, 3)).astype(">u2")
        yield "ppm16_max1000_%s" % t, b"P6 %d %d 1000\n" % (w, h) + c16.tobytes()
        for mode in ("RGB", "RGBA", "L", "P", "P16", "1"):
            yield "bmp_%s_%s" % (mode, t), encode(pil_image(mode, h, w), "BMP")
        yield "bmp_topdown_%s" % t, bmp_top_down(encode(rgb, "BMP"))
        a = smooth(h, w, 3)
        yield "bmp_555_%s" % t, bmp16(a, (0x7c00, 0x03e0, 0x001f))
        yield "bmp_565_%s" % t, bmp16(a, (0xf800, 0x07e0, 0x001f))
        yield "ppm_%s" % t, encode(rgb, "PPM")
        yield "pgm_%s" % t, encode(pil_image("L", h, w), "PPM")
        yield "pbm_%s" % t, encode(pil_image("1", h, w), "PPM")
        yield "ppm_max15_%s" % t, pnm_raw(a, 15)
        yield "pnm_P1_%s" % t, pnm_plain(pil_image("1", h, w), "P1")
        yield "pnm_P2_%s" % t, pnm_plain(pil_image("L", h, w), "P2")
        yield "pnm_P3_%s" % t, pnm_plain(rgb, "P3")
        yield "pnm_P3_max100_%s" % t, pnm_plain(rgb, "P3", 100)
        for comp in ("raw", "tiff_lzw", "tiff_adobe_deflate", "packbits"):
            yield "tiff_%s_%s" % (comp, t), encode(rgb, "TIFF", compression=comp)
        yield "tiff_gray_%s" % t, encode(pil_image("L", h, w), "TIFF")
        yield "tiff_rgba_%s" % t, encode(pil_image("RGBA", h, w), "TIFF")
        yield "webp_lossy_%s" % t, encode(rgb, "WEBP", quality=80)
        yield "webp_lossless_%s" % t, encode(rgb, "WEBP", lossless=True)
        yield "webp_alpha_%s" % t, encode(pil_image("RGBA", h, w), "WEBP", lossless=True)
        yield "jp2_%s" % t, encode(rgb, "JPEG2000")
        yield "jp2_lossy_%s" % t, encode(rgb, "JPEG2000", quality_mode="rates",
                                         quality_layers=[20])
        yield "j2k_%s" % t, encode(rgb, "JPEG2000", no_jp2=True)
        yield "jp2_gray_%s" % t, encode(pil_image("L", h, w), "JPEG2000")


def expected(data, fmt):
    img = Image.open(io.BytesIO(data))
    if fmt == "Grayscale":
        return np.asarray(img.convert("L"))[:, :, None]
    a = np.asarray(img.convert("RGB"))
    return a[:, :, ::-1] if fmt == "BGR" else a


def write_case(root, name, data, fmt, out=None):
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    node = helper.make_node("ImageDecoder", ["x"], ["y"], pixel_format=fmt)
    g = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [None])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [None, None, None])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    onnx.save(m, os.path.join(d, "model.onnx"))
    x = np.frombuffer(data, np.uint8)
    if out is None:
        out = np.zeros((1, 1, 3), np.uint8)
    for nm, arr in (("input_0", x), ("output_0", out)):
        with open(os.path.join(d, "test_data_set_0", nm + ".pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.ascontiguousarray(arr)).SerializeToString())
    return d


def run_check(kiln, dirs, mode, env=None):
    cmd = [kiln, "check", "--rtol", "0", "--atol", "0"] + \
        (["--reference"] if mode == "reference" else []) + dirs
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       errors="replace", env=env, timeout=1800)
    res = {}
    for line in p.stdout.splitlines():
        if line.startswith(("PASS ", "FAIL ")):
            res[line[5:].split(":", 1)[0].split(" ", 1)[0]] = line
    return p, res


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + \
        struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)


def hostile(good):
    """Yields (name, bytes, env-or-None, substring the message must hold)."""
    for name, data in good:
        yield "trunc_" + name, data[: len(data) // 2], None, ""
        if len(data) > 16:
            yield "head_" + name, data[:16], None, ""
    yield "garbage", bytes(RNG.integers(0, 256, 1000, dtype=np.uint8)), None, "no image format"
    yield "one_byte", b"\xff", None, "no image format"
    big = struct.pack("<IiiHHIIiiII", 40, 100000, 100000, 1, 24, 0, 0, 0, 0, 0, 0)
    yield "bmp_bomb", b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + big, None, "limit"
    yield "bmp_short", b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + \
        struct.pack("<IiiHHIIiiII", 40, 1000, 1000, 1, 24, 0, 0, 0, 0, 0, 0), None, "truncated"
    yield "pnm_bomb", b"P6 100000 100000 255\n" + b"\0" * 64, None, "limit"
    yield "pnm_short", b"P6 100 100 255\n" + b"\0" * 64, None, "truncated"
    yield "pnm_overflow", b"P5 99999999999999999999 1 255\n\0", None, ""
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + \
        png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + png_chunk(b"IEND", b"")
    yield "png_bomb", png, None, "limit"
    real = encode(Image.new("RGB", (3000, 3000)), "PNG")
    env = dict(os.environ, KILN_IMAGE_MAX_PIXELS="1000000")
    yield "png_bomb_real", real, env, "limit"


def main():
    kiln = sys.argv[1]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as root:
        good = list(cases())
        dirs = []
        for name, data in good:
            for fmt in FORMATS:
                dirs.append(write_case(root, "%s_%s" % (name, fmt), data, fmt,
                                       expected(data, fmt)))
        for mode in ("reference", "engine"):
            p, res = run_check(kiln, dirs, mode)
            for d in dirs:
                n = os.path.basename(d)
                line = res.get(n)
                if line and line.startswith("PASS"):
                    passed += 1
                else:
                    failed += 1
                    print("FAIL %s (%s): %s" % (n, mode, line or "no result, exit %d\n%s"
                                                % (p.returncode, p.stderr[-2000:])))
        # hostile inputs: one kiln per case so a crash is pinned to its case
        groups = {}
        for name, data, env, want in hostile(good[:40]):
            d = write_case(os.path.join(root, "hostile"), name, data, "RGB")
            key = None if env is None else tuple(sorted(env.items()))
            groups.setdefault(key, (env, []))[1].append((d, want))
        for env, items in groups.values():
            p, res = run_check(kiln, [d for d, _ in items], "reference", env)
            crashed = p.returncode not in (0, 1) or "Sanitizer" in p.stderr
            for d, want in items:
                n = os.path.basename(d)
                line = res.get(n, "")
                ok = (not crashed and line.startswith("FAIL") and want.lower() in line.lower())
                if ok:
                    passed += 1
                else:
                    failed += 1
                    print("FAIL hostile %s: %s (exit %d) %s" % (
                        n, line or "no result", p.returncode, p.stderr[-1500:]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
