#!/usr/bin/env python3
"""int8_corpus.py: INT8 post-training quantization of a trained corpus model
(tests/models/check_corpus.py's cache) by Kiln and by onnxruntime's
quantize_static, on the same calibration rows (the case's test data sets,
one row per set), measured against onnxruntime FP32 on those rows: rel-L2
and top-1 agreement of the first output. Kiln twice: every layer INT8, and
with --accuracy-budget top1:0.5% (validated on the same rows).
A user's check, not a CI test: few rows, calibration = validation.

usage: int8_corpus.py CASE [KILN]   (cache: $KILN_CORPUS_CACHE or ~/.cache/kiln-corpus)"""
import onnx, numpy as np, onnxruntime as ort, glob, os, sys, subprocess, json
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantType, QuantFormat, CalibrationMethod
name=sys.argv[1]
D=os.path.join(os.environ.get('KILN_CORPUS_CACHE', os.path.expanduser('~/.cache/kiln-corpus')), 'cases', name)
m=onnx.load(D+'/model.onnx', load_external_data=False)
inits={i.name for i in m.graph.initializer}
inp=[i.name for i in m.graph.input if i.name not in inits][0]
xs=[]
for s in sorted(glob.glob(D+'/test_data_set_*')):
    t=onnx.TensorProto(); t.ParseFromString(open(s+'/input_0.pb','rb').read())
    a=onnx.numpy_helper.to_array(t)
    for r in a: xs.append(r[None])
shp=xs[0].shape
# one row per calib set for kiln
cd='/tmp/kiln_int8c_'+name; os.makedirs(cd, exist_ok=True)
for i,x in enumerate(xs):
    os.makedirs(cd+'/test_data_set_%d'%i, exist_ok=True)
    open(cd+'/test_data_set_%d/input_0.pb'%i,'wb').write(onnx.numpy_helper.from_array(x, inp).SerializeToString())
class R(CalibrationDataReader):
    def __init__(s): s.i=iter([{inp:x} for x in xs])
    def get_next(s): return next(s.i, None)
s32=ort.InferenceSession(D+'/model.onnx')
y32=np.concatenate([s32.run(None,{inp:x})[0].reshape(1,-1) for x in xs])
try:
    from onnxruntime.quantization.shape_inference import quant_pre_process
    quant_pre_process(D+'/model.onnx','/tmp/kiln_int8c_pre.onnx')
    quantize_static('/tmp/kiln_int8c_pre.onnx','/tmp/kiln_int8c_q.onnx',R(),quant_format=QuantFormat.QDQ,per_channel=True,activation_type=QuantType.QInt8,weight_type=QuantType.QInt8)
    s8=ort.InferenceSession('/tmp/kiln_int8c_q.onnx')
    y8=np.concatenate([s8.run(None,{inp:x})[0].reshape(1,-1) for x in xs])
    print(name, len(xs), 'rows; ORT quantize_static minmax: rel-l2 %.3f top1 agree %.2f' % (np.linalg.norm(y8-y32)/np.linalg.norm(y32), (y8.argmax(1)==y32.argmax(1)).mean()))
except Exception as e:
    msg=[l for l in str(e).splitlines() if l.strip()] or [type(e).__name__]
    print(name, len(xs), 'rows; ORT quantize_static failed:', msg[-1][:160])
K=sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'build', 'bin', 'kiln'); sp='%s:%s' % (inp, 'x'.join(map(str,shp)))
for extra in [[], ['--accuracy-budget','top1:0.5%','--validate',cd]]:
    r=subprocess.run([K,'build',D+'/model.onnx','-o','/tmp/kiln_int8c.kiln','--shapes',sp,'--int8','--calib',cd]+extra, capture_output=True, text=True)
    msg=[l for l in r.stderr.splitlines() if 'budget' in l and ('met' in l or 'all' in l)]
    ys=[]
    for x in xs:
        np.save('/tmp/kiln_int8c_x.npy', x)
        subprocess.run([K,'run','--engine','/tmp/kiln_int8c.kiln','--input',inp+'=/tmp/kiln_int8c_x.npy','--output-dir','/tmp/kiln_int8c_out'],capture_output=True,check=True)
        t=onnx.TensorProto(); t.ParseFromString(open('/tmp/kiln_int8c_out/output_0.pb','rb').read()); ys.append(onnx.numpy_helper.to_array(t).reshape(1,-1))
    yk=np.concatenate(ys)
    print('  kiln int8 %s: rel-l2 %.3f top1 agree %.2f' % ('budget' if extra else 'all', np.linalg.norm(yk-y32)/np.linalg.norm(y32), (yk.argmax(1)==y32.argmax(1)).mean()), msg[-1][:150] if msg else '')
