"""kiln.backend: an ONNX backend (onnx.backend.base) over Kiln engines, so
``onnx.backend.test`` and anything else written against that interface runs
through Kiln::

    import kiln.backend
    rep = kiln.backend.prepare(model)          # builds the engine
    outputs = rep.run([x])                     # list of numpy arrays

Models whose inputs all have static shapes are built at prepare(); with
symbolic dims an engine is built for each new set of input shapes on first
run (see kiln.InferenceSession). Engines are not cached on disk here unless
``cache=True``: backend tests build thousands of throwaway models.
"""
import numpy as np

from . import _core
from .session import _EngineSet

try:  # onnx is optional for the rest of the package, required here
    from onnx.backend.base import Backend, BackendRep
except ImportError:  # pragma: no cover
    Backend, BackendRep = object, object


class KilnBackendRep(BackendRep):
    """A prepared model: run(inputs) takes a list (in graph input order) or
    a dict of arrays and returns the outputs as a list (the namedtuple
    onnx's runner expects)."""

    def __init__(self, engines):
        self._set = engines
        self._in_names = [t[0] for t in engines.inputs]
        self._out_names = tuple(t[0] for t in engines.outputs)

    def run(self, inputs, **kwargs):
        if isinstance(inputs, dict):
            feed = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            inputs = list(inputs)
            if len(inputs) > len(self._in_names):
                raise ValueError("model takes %d inputs, got %d" % (len(self._in_names), len(inputs)))
            feed = dict(zip(self._in_names, inputs))
        ctx = self._set.context(feed)
        out = ctx.run(feed, self._out_names)
        try:
            from onnx.backend.base import namedtupledict
            return namedtupledict("Outputs", self._out_names)(*[out[n] for n in self._out_names])
        except ImportError:  # pragma: no cover
            return [out[n] for n in self._out_names]


class KilnBackend(Backend):
    """ONNX backend: prepare / run_model / supports_device."""

    @classmethod
    def is_compatible(cls, model, device="CPU", **kwargs):
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model, device="CPU", opt_level=0, cache=False, **kwargs):
        """Imports the model and builds its engine (opt_level 0 by default:
        no tactic timing, since backend tests run each model once)."""
        if not cls.supports_device(device):
            raise RuntimeError("Kiln's backend cannot run on %r here (CPU%s)"
                               % (device, ", CUDA" if _cuda_available() else ""))
        engines = _EngineSet(model, opt_level=opt_level, use_cache=cache,
                             device=1 if _device_kind(device) == "CUDA" else 0)
        if engines._static_key is not None:
            engines._engine(engines._static_key)  # build now, as prepare() should
        return KilnBackendRep(engines)

    @classmethod
    def run_model(cls, model, inputs, device="CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        """Wraps the node in a one-node model (input types from the arrays,
        output types inferred by onnx) and runs it."""
        import onnx
        from onnx import helper, numpy_helper  # noqa: F401
        ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype),
                                             np.shape(a))
               for n, a in zip(node.input, inputs) if n]
        outs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
        graph = helper.make_graph([node], "run_node", ins, outs)
        model = helper.make_model(graph)
        model = onnx.shape_inference.infer_shapes(model)
        feed = {n: np.asarray(a) for n, a in zip(node.input, inputs) if n}
        return cls.prepare(model, device, **kwargs).run(feed)

    @classmethod
    def supports_device(cls, device):
        """CPU always; CUDA where this kiln has the CUDA backend and the
        machine a GPU (probed once by building a one-node engine)."""
        kind = _device_kind(device)
        return kind == "CPU" or (kind == "CUDA" and _cuda_available())


def _device_kind(device):
    return str(device).upper().split(":")[0]


_cuda_probe = []


def _cuda_available():
    if not _cuda_probe:
        try:
            from onnx import TensorProto, helper
            x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
            y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
            m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])],
                                                    "probe", [x], [y]))
            _core.build(m.SerializeToString(), device="cuda", opt_level=0)
            _cuda_probe.append(True)
        except Exception:  # no backend, no driver, no GPU: CPU only
            _cuda_probe.append(False)
    return _cuda_probe[0]


prepare = KilnBackend.prepare
run_model = KilnBackend.run_model
run_node = KilnBackend.run_node
supports_device = KilnBackend.supports_device
is_compatible = KilnBackend.is_compatible
