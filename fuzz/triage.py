#!/usr/bin/env python3
"""triage.py: replays fuzzer artifacts and groups them by the first Kiln
source frame of the sanitizer report (or 'timeout'/'oom'/'clean').

Usage: python3 fuzz/triage.py BUILD_DIR ARTIFACT... [--timeout S]
Prints one line per bucket: count, frame, kind, smallest reproducer."""
import os
import re
import subprocess
import sys

FRAME = re.compile(r"#\d+ 0x[0-9a-f]+ in (\S+) (/\S+/src/\S+?):(\d+)")
KIND = re.compile(r"(AddressSanitizer: [\w-]+|LeakSanitizer|runtime error: [^\n]{0,60}|"
                   r"contract violation: [^\n]+|out-of-memory|Timeout|deadly signal)")


def main():
    args = sys.argv[1:]
    timeout = 30.0
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i:i + 2]
    build, files = args[0], args[1:]
    replay = os.path.join(build, "bin", "kiln_fuzz_replay")
    env = dict(os.environ, UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
               ASAN_OPTIONS="detect_leaks=1")
    buckets = {}
    for f in files:
        try:
            p = subprocess.run([replay, f], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout, env=env)
            out = p.stdout.decode(errors="replace")
            if p.returncode == 0:
                key = ("clean", "-")
            else:
                k = KIND.search(out)
                fr = FRAME.search(out)
                where = "%s %s:%s" % (fr.group(1), os.path.relpath(fr.group(2)), fr.group(3)) if fr else "?"
                key = (where, k.group(1) if k else "exit %d" % p.returncode)
        except subprocess.TimeoutExpired:
            key = ("timeout", "replay > %ss" % timeout)
        buckets.setdefault(key, []).append(f)
    for (where, kind), fs in sorted(buckets.items(), key=lambda kv: -len(kv[1])):
        fs.sort(key=os.path.getsize)
        print("%4d  %-60s %-40s %s" % (len(fs), where, kind, fs[0]))


if __name__ == "__main__":
    main()
