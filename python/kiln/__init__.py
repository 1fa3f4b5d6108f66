"""Kiln: an ONNX inference compiler and runtime.

Build phase::

    engine = kiln.build("model.onnx", profiles=[{"x": ((1, 3, 224, 224),
                        (8, 3, 224, 224), (32, 3, 224, 224))}])
    engine.save("model.kiln")

Run phase::

    engine = kiln.Engine.load("model.kiln")
    ctx = engine.create_context()          # one per thread
    out = ctx.run({"x": batch})            # {"y": numpy array}

onnxruntime-style: ``kiln.InferenceSession("model.onnx").run(None, feed)``.
ONNX backend: ``kiln.backend``. Accuracy tool: ``python -m kiln.compare``.
"""
from . import _kiln
from ._core import Context, DeviceArray, Engine, Layer, TensorInfo, build, load_pb, numpy_dtype
from ._errors import (CorruptEngineError, DeviceError, IncompatibleEngineError,
                      InternalError, InvalidArgumentError, InvalidModelError, KilnError,
                      KilnIOError, KilnMemoryError, KilnRuntimeError, KilnTimeoutError,
                      UnsupportedError)
from .session import InferenceSession, NodeArg, SessionOptions

__version__ = _kiln.version()

__all__ = [
    "build", "Engine", "Context", "DeviceArray", "TensorInfo", "Layer", "InferenceSession", "NodeArg",
    "SessionOptions", "load_pb", "numpy_dtype", "set_num_threads", "get_num_threads",
    "KilnError", "InvalidArgumentError", "InvalidModelError", "UnsupportedError",
    "IncompatibleEngineError", "CorruptEngineError", "KilnMemoryError", "KilnIOError",
    "DeviceError", "KilnTimeoutError", "KilnRuntimeError", "InternalError",
]


def set_num_threads(n):
    """Threads the CPU backend may use per run (process-wide; 0: one per core)."""
    _kiln.set_num_threads(int(n))


def get_num_threads():
    """Threads the CPU backend may use per run."""
    return _kiln.get_num_threads()
