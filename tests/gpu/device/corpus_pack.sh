#!/usr/bin/env bash
# tests/gpu/device/corpus_pack.sh: run HERE (the development machine, with
# PyPI reachable), from the repository root. Builds the corpus cases worth a
# GPU precision check (corpus_cases.GPU: trained models with continuous
# outputs; corpus_cases.GPU_OUT says why the others are left out) with
# check_corpus.py --prepare, copies them into .devrun/corpus/cases/ and packs
# that as .devrun/corpus.tar.xz for the device (no network there), where
# tests/gpu/run.sh (suite corpus) or prelude.sh unpacks it. The expected
# outputs are this machine's onnxruntime's.
#   CACHE=DIR   the corpus cache (default $KILN_CORPUS_CACHE or ~/.cache/kiln-corpus)
#   KEEP_DIR=1  keep .devrun/corpus/ next to the tarball (do not carry both)
#   CASES=a,b   pack these instead of corpus_cases.GPU
set -euo pipefail
# the repository root, whether run from tests/gpu/device or a copy in .devrun
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
CACHE=${CACHE:-${KILN_CORPUS_CACHE:-$HOME/.cache/kiln-corpus}}
if [ -z "${CASES:-}" ]; then
    CASES=$(cd tests/models && python3 -c "import corpus_cases as c; print(','.join(sorted(c.GPU)))")
fi
python3 tests/models/check_corpus.py --prepare --only "$CASES" --cache "$CACHE"
rm -rf .devrun/corpus .devrun/corpus.tar.xz
mkdir -p .devrun/corpus/cases
for n in ${CASES//,/ }; do
    mkdir .devrun/corpus/cases/"$n"
    # model.onnx is a hard link into CACHE/models: copy the contents
    cp "$CACHE/cases/$n/model.onnx" "$CACHE/cases/$n/meta.json" .devrun/corpus/cases/"$n"/
    cp -r "$CACHE/cases/$n"/test_data_set_* .devrun/corpus/cases/"$n"/
done
{
    echo "packed $(date -u +%Y-%m-%dT%H:%MZ) by tests/gpu/device/corpus_pack.sh;"
    python3 -c "import onnxruntime as o; print('expected outputs: onnxruntime', o.__version__, '(CPU, no graph optimization)')"
    (cd tests/models && python3 -c "
import corpus_cases as c
for n in '$CASES'.split(','):
    print('%-24s %s' % (n, c.GPU.get(n, '(CASES)')))")
} > .devrun/corpus/PACKED.txt
cat .devrun/corpus/PACKED.txt
raw=$(du -sb .devrun/corpus | cut -f1)
# the weights barely compress, the inputs (8-bit pictures as floats) do
XZ_OPT="-6 -T2" tar -C .devrun -cJf .devrun/corpus.tar.xz corpus
packed=$(stat -c %s .devrun/corpus.tar.xz)
[ "${KEEP_DIR:-0}" = 1 ] || rm -rf .devrun/corpus
echo "corpus: $(echo "$CASES" | tr ',' '\n' | wc -l) cases, $((raw / 1048576)) MiB as files," \
     "$((packed / 1048576)) MiB as .devrun/corpus.tar.xz ($packed bytes)"
echo ".devrun now holds $(du -sm .devrun | cut -f1) MiB (the carried tree must stay under 64 MiB)"
