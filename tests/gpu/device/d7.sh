#!/bin/bash
# Session 9, call 2: gpu_bench against torch (BERT and ResNet-50, b128/b256
# and b1), a per-kernel profile of BERT-base FP16 b128 under ncu (kernel
# durations without event overhead; the whole graph's duration), then the
# model set in FP16, BF16 and FP32 against onnxruntime with what is left
# (CEND = end of the call, s).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/e
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,power.limit --format=csv > /tmp/e/smi.txt 2>&1
timeout 240 python3 bench/gpu_bench.py $K --iters 50 --cases ${CASES:-bert_base_fp16_b128,resnet50_fp16_b256,bert_base_fp16_b1,resnet50_fp16_b1} > /tmp/e/gpu_bench.txt 2>&1
echo "gpu_bench rc $? at $((SECONDS-T0)) s"; grep -E "^(bert|resnet)|gpu\"" /tmp/e/gpu_bench.txt | cut -c1-230
# A/B: LayerNorm's 8-byte kernel (KILN_CUDA_LN16=0) against the 16-byte one
for ab in 0 1 0 1; do
  KILN_CUDA_LN16=$ab timeout 60 python3 bench/gpu_bench.py $K --iters 50 --no-torch --cases bert_base_fp16_b128 > /tmp/e/ln16_$ab.txt 2>&1
  echo "LN16=$ab: $(grep -E '^bert' /tmp/e/ln16_$ab.txt | cut -c1-120)"
done
E=/tmp/kiln-gpu-bench/bert_base_fp16_b128.kiln
S=input_ids:128x128,attention_mask:128x128,token_type_ids:128x128
if [ -f $E ]; then
  timeout 60 $K inspect $E --profile-runs 10 --sort time > /tmp/e/bert_prof.txt 2>&1
  timeout 90 ncu --clock-control none --metrics gpu__time_duration.sum --print-units base --csv --launch-skip 300 --launch-count 400 \
    $K bench --engine $E --shapes $S --no-data-transfers --no-cuda-graph --warmup 0 --duration 0 --iterations 8 > /tmp/e/ncu_kern.csv 2>/tmp/e/ncu_kern.err
  echo "ncu kernels rc $? at $((SECONDS-T0)) s"
  timeout 60 ncu --clock-control none --graph-profiling graph --metrics gpu__time_duration.sum --print-units base --csv --launch-skip 3 --launch-count 4 \
    $K bench --engine $E --shapes $S --no-data-transfers --warmup 0 --duration 0 --iterations 8 > /tmp/e/ncu_graph.csv 2>/tmp/e/ncu_graph.err
  echo "ncu graph rc $? at $((SECONDS-T0)) s"; tail -4 /tmp/e/ncu_graph.csv | cut -c1-300
  python3 - <<'PY' > /tmp/e/ncu_sum.txt 2>&1
import csv, collections
rows=[r for r in csv.reader(open('/tmp/e/ncu_kern.csv')) if len(r) > 10]
h=rows[0]; ki=h.index('Kernel Name'); vi=h.index('Metric Value'); ii=h.index('ID')
tot=collections.defaultdict(float); cnt=collections.Counter(); allv=0.0
for r in rows[1:]:
    try: v=float(r[vi].replace(',',''))
    except ValueError: continue
    k=r[ki][:90]; tot[k]+=v; cnt[k]+=1; allv+=v
print("kernels %d, total %.1f us over the profiled launches" % (sum(cnt.values()), allv/1e3))
for k,v in sorted(tot.items(), key=lambda x:-x[1])[:40]:
    print("%10.1f us %4d x %8.2f us  %s" % (v/1e3, cnt[k], v/1e3/cnt[k], k))
PY
  cat /tmp/e/ncu_sum.txt | head -30
fi
for prec in fp16 bf16 fp32; do
  left=$((${CEND:-560} - (SECONDS-T0)))
  [ $left -lt 40 ] && break
  extra="--device cuda"; tol=1e-4
  [ $prec != fp32 ] && { extra="$extra --$prec"; tol=1e-2; }
  timeout $left python3 tests/models/check_models.py $K --quick --modes engine --build-args="$extra" --tol $tol --top1 --json /tmp/e/models_$prec.json > /tmp/e/models_$prec.txt 2>&1
  echo "models $prec rc $? at $((SECONDS-T0)) s"; grep -vE "^\s*$" /tmp/e/models_$prec.txt | tail -30 | cut -c1-180
done
tar -C /tmp -czf $OUT/d7.tgz e
