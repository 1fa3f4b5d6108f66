# ort_ops_bench.py: the peer side of bench/gemm_bench.c: the same GEMM and
# conv shapes as single-op ONNX models on onnxruntime's CPU provider, best
# of N wall time and GFLOP/s. Usage: python3 bench/ort_ops_bench.py [threads]
import onnx, onnxruntime as ort, numpy as np, time, sys
from onnx import helper, TensorProto, numpy_helper
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
def run(name, model, feeds, flops):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), so, providers=['CPUExecutionProvider'])
    for _ in range(3): s.run(None, feeds)
    best = 1e9; t_end = time.time() + 0.5; n = 0
    while time.time() < t_end or n < 5:
        t0 = time.perf_counter(); s.run(None, feeds); best = min(best, time.perf_counter() - t0); n += 1
    print(f"{name:55s} t={threads} {best*1e3:8.3f} ms {flops/best*1e-9:8.2f} GFLOP/s")
def gemm(M, K, N, act=None, transB=False):
    W = np.random.rand(*( (N, K) if transB else (K, N))).astype(np.float32) - 0.5
    b = np.random.rand(N).astype(np.float32)
    nodes = []
    if transB:
        nodes.append(helper.make_node('Gemm', ['A', 'W', 'b'], ['Y0' if act else 'Y'], transB=1))
    else:
        nodes += [helper.make_node('MatMul', ['A', 'W'], ['T']), helper.make_node('Add', ['T', 'b'], ['Y0' if act else 'Y'])]
    if act == 'Gelu':
        nodes.append(helper.make_node('Gelu', ['Y0'], ['Y']))
    g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('A', TensorProto.FLOAT, [M, K])],
                          [helper.make_tensor_value_info('Y', TensorProto.FLOAT, [M, N])],
                          [numpy_helper.from_array(W, 'W'), numpy_helper.from_array(b, 'b')])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 20)])
    run(f"gemm M={M} K={K} N={N}{' transB' if transB else ''} {act or ''}", m,
        {'A': np.random.rand(M, K).astype(np.float32)}, 2.0*M*K*N)
def conv(name, C, H, W_, M, k, s, p, G=1, resid=False):
    Wt = np.random.rand(M, C // G, k, k).astype(np.float32) - 0.5
    b = np.random.rand(M).astype(np.float32)
    oh = (H + 2*p - k)//s + 1; ow = (W_ + 2*p - k)//s + 1
    nodes = [helper.make_node('Conv', ['X', 'W', 'b'], ['C0' if resid else 'Y'], kernel_shape=[k, k], strides=[s, s], pads=[p]*4, group=G)]
    inputs = [helper.make_tensor_value_info('X', TensorProto.FLOAT, [1, C, H, W_])]
    feeds = {'X': np.random.rand(1, C, H, W_).astype(np.float32)}
    if resid:
        nodes += [helper.make_node('Add', ['C0', 'Z'], ['A0']), helper.make_node('Relu', ['A0'], ['Y'])]
        inputs.append(helper.make_tensor_value_info('Z', TensorProto.FLOAT, [1, M, oh, ow]))
        feeds['Z'] = np.random.rand(1, M, oh, ow).astype(np.float32)
    g = helper.make_graph(nodes, 'g', inputs, [helper.make_tensor_value_info('Y', TensorProto.FLOAT, [1, M, oh, ow])],
                          [numpy_helper.from_array(Wt, 'W'), numpy_helper.from_array(b, 'b')])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])
    run(f"conv {name}: {C}x{H}x{W_}->{M} k{k} s{s} g{G}{' +Z,Relu' if resid else ''}", m, feeds, 2.0*M*oh*ow*(C//G)*k*k)
gemm(128, 768, 768); gemm(128, 768, 3072, 'Gelu'); gemm(128, 3072, 768)
gemm(768, 128, 768); gemm(3072, 128, 768); gemm(1, 2048, 1000, transB=True)
conv('conv1', 3, 224, 224, 64, 7, 2, 3)
conv('l1 1x1 reduce', 64, 56, 56, 64, 1, 1, 0)
conv('l1 3x3', 64, 56, 56, 64, 3, 1, 1)
conv('l1 1x1 expand', 64, 56, 56, 256, 1, 1, 0, resid=True)
conv('l2 3x3 s2', 128, 56, 56, 128, 3, 2, 1)
conv('l2 3x3', 128, 28, 28, 128, 3, 1, 1)
conv('l3 3x3', 256, 14, 14, 256, 3, 1, 1)
conv('l3 1x1 expand', 256, 14, 14, 1024, 1, 1, 0, resid=True)
conv('l4 3x3', 512, 7, 7, 512, 3, 1, 1)
conv('l4 1x1 reduce', 2048, 7, 7, 512, 1, 1, 0)
conv('dw 3x3', 32, 112, 112, 32, 3, 1, 1, G=32)
conv('dw 3x3 s2', 144, 56, 56, 144, 3, 2, 1, G=144)
conv('dw 3x3', 576, 14, 14, 576, 3, 1, 1, G=576)
