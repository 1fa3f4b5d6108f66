#!/usr/bin/env python3
"""load_time.py: how long a built engine takes to load (issue 12: "an engine
loads in at most 200 ms"), through the Python package in one process:

- first: the process's first Engine.load (includes loading the CUDA runtime,
  cuBLASLt/cuDNN and creating the device context: a one-off per process);
- load: later loads of the same file, median of N (file read, fingerprint
  and checksum checks, weight upload to the device, tactic plans);
- load+context: load plus create_context (activation memory, stream).

The page cache is warm after the first read; `cold` in the output drops
this file's pages first (posix_fadvise DONTNEED) for one more load.

Usage: load_time.py ENGINE.kiln [...] [--reps N]"""
import argparse
import os
import statistics
import time

import kiln


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("engines", nargs="+")
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()
    first = True
    for path in a.engines:
        mb = os.path.getsize(path) / 1e6
        t = time.perf_counter()
        e = kiln.Engine.load(path)
        t_first = (time.perf_counter() - t) * 1e3
        del e
        loads, both = [], []
        for _ in range(a.reps):
            t = time.perf_counter()
            e = kiln.Engine.load(path)
            t1 = time.perf_counter()
            c = e.create_context()
            t2 = time.perf_counter()
            loads.append((t1 - t) * 1e3)
            both.append((t2 - t) * 1e3)
            del c, e
        drop_cache(path)
        t = time.perf_counter()
        e = kiln.Engine.load(path)
        t_cold = (time.perf_counter() - t) * 1e3
        del e
        print("%s (%.1f MB): %s %.1f ms; load median %.1f ms [min %.1f max %.1f]; "
              "load+context median %.1f ms; cold page cache %.1f ms" % (
                  os.path.basename(path), mb, "first in process" if first else "first",
                  t_first, statistics.median(loads), min(loads), max(loads),
                  statistics.median(both), t_cold), flush=True)
        first = False


if __name__ == "__main__":
    main()
