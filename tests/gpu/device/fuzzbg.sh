#!/bin/bash
# Background fuzzing on the device host's idle cores while GPU tests run.
# $1 = seconds. Reader and engine fuzzers, 4 forked jobs each, nice 19.
FT=${1:-400}
mkdir -p /tmp/fz/onnx /tmp/fz/eng /tmp/fz/art_onnx /tmp/fz/art_eng
cp fuzz/corpus/onnx/* /tmp/fz/onnx/ 2>/dev/null
cp fuzz/corpus/engine/* fuzz/regressions/engine/* /tmp/fz/eng/ 2>/dev/null
( cd /tmp/fz && { time nice -n 19 $OLDPWD/.devrun/fz/kiln_fuzz_onnx -fork=${FJ:-5} -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
   -max_total_time=$FT -rss_limit_mb=2048 -timeout=10 -artifact_prefix=/tmp/fz/art_onnx/ /tmp/fz/onnx > /tmp/fz/onnx.log 2>&1 ; } 2> /tmp/fz/onnx.time ) &
( cd /tmp/fz && { time nice -n 19 $OLDPWD/.devrun/fz/kiln_fuzz_engine -fork=${FJ:-5} -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
   -max_total_time=$FT -rss_limit_mb=2048 -timeout=10 -max_len=16384 -artifact_prefix=/tmp/fz/art_eng/ /tmp/fz/eng > /tmp/fz/eng.log 2>&1 ; } 2> /tmp/fz/eng.time ) &
