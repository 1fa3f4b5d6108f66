"""make_tiny_cnn_dyn.py: writes tiny_cnn_dyn.onnx, examples/tiny_cnn.onnx with
symbolic height and width ([batch,3,H,W]; its GlobalAveragePool makes any
size work), so the batcher tests can queue requests of different shapes
that cannot share a batch.
Run: python3 tests/data/make_tiny_cnn_dyn.py examples/tiny_cnn.onnx tests/data/tiny_cnn_dyn.onnx
"""
import sys

import onnx


def main(src, dst):
    m = onnx.load(src)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param = "H"
    dims[3].dim_param = "W"
    del m.graph.value_info[:]
    onnx.checker.check_model(m)
    onnx.save(m, dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
