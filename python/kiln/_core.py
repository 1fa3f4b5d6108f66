"""Engines, contexts and the builder: the Python face of include/kiln.h."""
import json
import os

import numpy as np

from . import _errors, _kiln
from ._errors import InvalidArgumentError, UnsupportedError

_kiln._set_error_classes(_errors.BY_STATUS)

# kiln_dtype (= ONNX TensorProto.DataType) <-> numpy. bfloat16 and the
# float8 types have no numpy dtype of their own; ml_dtypes (which onnx
# installs) provides them, and the 4-bit types, when present. String has no
# dense byte layout a numpy array can share, so it is refused by name.
_NP = {
    1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
    7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
    13: np.uint64, 14: np.complex64, 15: np.complex128,
}
try:  # optional: only widens the set of dtypes
    import ml_dtypes as _ml
    _NP.update({16: _ml.bfloat16, 17: _ml.float8_e4m3fn, 18: _ml.float8_e4m3fnuz,
                19: _ml.float8_e5m2, 20: _ml.float8_e5m2fnuz})
    # 4-bit types: ml_dtypes keeps one element per byte (the code in the low
    # nibble); Kiln packs two per byte, first element in the low nibble (the
    # ONNX layout). _pack4/_unpack4 convert at the boundary.
    # 2-bit types likewise (four a byte in Kiln); float8e8m0 is one byte as is.
    for _code, _name in ((21, "uint4"), (22, "int4"), (23, "float4_e2m1fn"),
                         (24, "float8_e8m0fnu"), (25, "uint2"), (26, "int2")):
        if hasattr(_ml, _name):
            _NP[_code] = getattr(_ml, _name)
except ImportError:  # pragma: no cover
    pass
_NP = {k: np.dtype(v) for k, v in _NP.items()}
_PACKED4 = (21, 22, 23)
_PACKED2 = (25, 26)
_KILN_NAMES = {
    0: "undefined", 1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16",
    6: "int32", 7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64",
    12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
    17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
    21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
}
_PRECISIONS = {"fp32": 1, "fp16": 2, "bf16": 4, "int8": 8, "fp8": 16}
_SEVERITIES = {"error": 0, "warning": 1, "info": 2, "verbose": 3}
_SEVERITY_NAMES = {v: k for k, v in _SEVERITIES.items()}
_DEVICES = {"cpu": 0, "cuda": 1}


def numpy_dtype(kiln_dtype):
    """numpy dtype for a kiln_dtype code; raises UnsupportedError if none."""
    dt = _NP.get(kiln_dtype)
    if dt is None:
        raise UnsupportedError(3, "element type %s has no numpy equivalent usable by Kiln's "
                               "Python API" % _KILN_NAMES.get(kiln_dtype, kiln_dtype))
    return dt


def _pack4(a):
    """ml_dtypes 4-bit array -> Kiln's packed bytes (two elements a byte)."""
    u = a.reshape(-1).view(np.uint8) & 0x0F
    if u.size % 2:
        u = np.concatenate([u, np.zeros(1, np.uint8)])
    return u[0::2] | (u[1::2] << 4)


def _pack2(a):
    """ml_dtypes 2-bit array -> Kiln's packed bytes (four elements a byte,
    the first in the low bits)."""
    u = a.reshape(-1).view(np.uint8) & 0x03
    if u.size % 4:
        u = np.concatenate([u, np.zeros(4 - u.size % 4, np.uint8)])
    return u[0::4] | (u[1::4] << 2) | (u[2::4] << 4) | (u[3::4] << 6)


def _array(buf, shape, code):
    """A numpy array over (or, for 4-bit types, unpacked from) Kiln's bytes."""
    dt = _NP.get(code)
    if dt is None:
        numpy_dtype(code)  # raises with the type's name
    if code in _PACKED4:
        b = np.frombuffer(buf, np.uint8)
        n = np.empty(b.size * 2, np.uint8)
        n[0::2] = b & 0x0F
        n[1::2] = b >> 4
        return n[:int(np.prod(shape, dtype=np.int64))].view(dt).reshape(shape)
    if code in _PACKED2:
        b = np.frombuffer(buf, np.uint8)
        n = np.empty(b.size * 4, np.uint8)
        for k in range(4):
            n[k::4] = (b >> (2 * k)) & 0x03
        return n[:int(np.prod(shape, dtype=np.int64))].view(dt).reshape(shape)
    return np.ndarray(shape, dt, buf)


class TensorInfo:
    """An engine (or model) input or output.

    ``name``; ``dtype``: the numpy dtype (None where numpy has none);
    ``kiln_dtype``: the element type's name in Kiln (e.g. ``"float16"``);
    ``shape``: a tuple whose entries are ints, the names (str) of symbolic
    dims such as ``"batch"``, or None for unnamed unknown dims."""

    __slots__ = ("name", "dtype", "kiln_dtype", "shape", "_code")

    def __init__(self, name, code, shape):
        self.name = name
        self._code = code
        self.dtype = _NP.get(code)
        self.kiln_dtype = _KILN_NAMES.get(code, str(code))
        self.shape = shape

    def __repr__(self):
        return "TensorInfo(name=%r, dtype=%s, shape=%r)" % (self.name, self.kiln_dtype, self.shape)


class Layer:
    """One engine layer, as ``kiln inspect --json`` lists it: ``name``,
    ``op_type``, ``fused_from`` (list of ONNX node names), ``tactic``,
    ``precision`` ("fp32", ...) and ``build_time_us`` (None if not timed)."""

    __slots__ = ("name", "op_type", "fused_from", "tactic", "precision", "build_time_us")

    def __init__(self, t):
        self.name, self.op_type, fused, self.tactic, prec, bt = t
        self.fused_from = [s for s in (fused or "").split(",") if s]
        self.precision = {v: k for k, v in _PRECISIONS.items()}.get(prec, str(prec))
        self.build_time_us = bt if bt >= 0 else None

    def __repr__(self):
        return "Layer(%r, op_type=%r, tactic=%r)" % (self.name, self.op_type, self.tactic)


def _model_capsule(model, external_dir=None):
    """Imports a model given as a path, bytes or an onnx.ModelProto."""
    if isinstance(model, (str, os.PathLike)):
        return _kiln.model_load(os.fspath(model))
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    if isinstance(model, (bytes, bytearray, memoryview)):
        return _kiln.model_load_memory(bytes(model), external_dir)
    raise TypeError("model must be a path, bytes or an onnx.ModelProto, not %s"
                    % type(model).__name__)


def _shape_tuple(shape, what):
    try:
        return tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise InvalidArgumentError(1, "%s: a shape is a sequence of ints, got %r" % (what, shape))


_CALIB_METHODS = {"entropy": 0, "minmax": 1, "percentile": 2}
_METRICS = {"top1": 0, "rel-l2": 1, "cosine": 2}


def _int8_args(calib_data, calib_method, calib_percentile, calib_batches, calib_cache,
               accuracy_budget, validate_data):
    """The extension's int8 tuple, or None when no INT8 option is given."""
    if (calib_data is None and calib_cache is None and accuracy_budget is None
            and validate_data is None):
        return None
    if calib_method not in _CALIB_METHODS:
        raise InvalidArgumentError(1, "calib_method must be one of %s, not %r"
                                   % (", ".join(_CALIB_METHODS), calib_method))
    metric, value = -1, 0.0
    if accuracy_budget is not None:
        text = str(accuracy_budget)
        name, _, val = text.partition(":")
        if name not in _METRICS or not val:
            raise InvalidArgumentError(1, "accuracy_budget is METRIC:VALUE with METRIC one of "
                                       "%s (e.g. 'top1:0.5%%'), not %r" % (", ".join(_METRICS), text))
        try:
            value = float(val[:-1]) if val.endswith("%") else float(val)
        except ValueError:
            raise InvalidArgumentError(1, "accuracy_budget %r: %r is not a number" % (text, val))
        if name != "top1" and val.endswith("%"):
            raise InvalidArgumentError(1, "accuracy_budget %r: only top1 takes a percentage" % text)
        if validate_data is None:
            raise InvalidArgumentError(1, "accuracy_budget needs validate_data (a folder of "
                                       "input sets to measure on)")
        metric = _METRICS[name]
    return (None if calib_data is None else os.fspath(calib_data), _CALIB_METHODS[calib_method],
            float(calib_percentile), int(calib_batches),
            None if calib_cache is None else os.fspath(calib_cache), metric, value,
            None if validate_data is None else os.fspath(validate_data))


def build(model, *, shapes=None, profiles=None, device="cpu", precision=("fp32",),
          opt_level=3, workspace=None, timing_cache=None, log="warning",
          external_dir=None, calib_data=None, calib_method=None,
          calib_percentile=99.99, calib_batches=0, calib_cache=None,
          accuracy_budget=None, validate_data=None):
    """Optimizes an ONNX model for this machine and returns an :class:`Engine`.

    model: a path, the model's bytes or an ``onnx.ModelProto``.
    shapes: ``{input: shape}``, one profile where min = opt = max.
    profiles: a list of ``{input: (min, opt, max)}``, one dict per
        optimization profile; every input with a symbolic dim needs a range
        in every profile. Give shapes or profiles, not both.
    device: ``"cpu"`` or ``"cuda"`` (an NVIDIA GPU; needs a build with the
        CUDA backend and a GPU driver).
    precision: precisions layers may use, from ``"fp32"`` (always allowed),
        ``"fp16"``, ``"bf16"``, ``"int8"``, ``"fp8"`` (FP8 E4M3 post-training
        quantization, calibrated like INT8; not with ``"int8"``).
    opt_level: 0 (no tactic timing) to 5.
    workspace: the most scratch bytes one layer may use (default 1 GiB).
    timing_cache: path of a timing cache file, read and updated.
    log: the most verbose severity written to stderr (``"error"``,
        ``"warning"``, ``"info"``, ``"verbose"``), or a callable
        ``log(severity: str, message: str)`` that receives every message.
    external_dir: folder of external data when the model is given as bytes.
    calib_data: INT8 calibration inputs (a folder of ONNX test-data sets or
        ``NAME.npy`` files), with ``precision`` including ``"int8"`` or
        ``"fp8"``; calib_method ``"entropy"`` (the INT8 default), ``"minmax"``
        (the FP8 default; FP8 refuses entropy) or
        ``"percentile"`` (calib_percentile); calib_batches: use at most that
        many sets (0: all); calib_cache: a calibration cache file, read when
        it exists (then no calibration runs) and written otherwise.
    accuracy_budget: ``"top1:0.5%"``, ``"rel-l2:1e-2"`` or
        ``"cosine:0.999"``, measured against FP32 on validate_data (same
        layout as calib_data); layers that cost the most accuracy go back to
        FP32 until the budget holds. Models that already carry Q/DQ need
        none of these.

    The GIL is released while the engine builds.
    """
    if shapes is not None and profiles is not None:
        raise InvalidArgumentError(1, "give shapes or profiles, not both")
    if device not in _DEVICES:
        raise InvalidArgumentError(1, "device must be one of %s, not %r" % (sorted(_DEVICES), device))
    if isinstance(precision, str):
        precision = (precision,)
    flags = 0
    for p in precision:
        if p not in _PRECISIONS:
            raise InvalidArgumentError(1, "unknown precision %r (use %s)" % (p, ", ".join(_PRECISIONS)))
        flags |= _PRECISIONS[p]
    if callable(log):
        user = log

        def logfn(sev, msg):
            user(_SEVERITY_NAMES.get(sev, str(sev)), msg)
        max_sev = _SEVERITIES["verbose"]
    else:
        if log not in _SEVERITIES:
            raise InvalidArgumentError(1, "log must be a callable or one of %s" % list(_SEVERITIES))
        logfn, max_sev = None, _SEVERITIES[log]
    if calib_method is None:
        calib_method = "minmax" if flags & _PRECISIONS["fp8"] else "entropy"
    plist = _profile_list(shapes, profiles)
    cap = _model_capsule(model, external_dir)
    blob = _kiln.build(cap, _DEVICES[device], flags, int(opt_level),
                       -1 if workspace is None else int(workspace),
                       None if timing_cache is None else os.fspath(timing_cache),
                       logfn, max_sev, plist,
                       _int8_args(calib_data, calib_method, calib_percentile, calib_batches,
                                  calib_cache, accuracy_budget, validate_data))
    return Engine._from_blob(blob)


def _profile_list(shapes=None, profiles=None):
    """shapes / profiles as the extension takes them: a list per profile of
    (input, min, opt, max)."""
    plist = []
    if shapes is not None:
        plist.append([(n, _shape_tuple(s, n), _shape_tuple(s, n), _shape_tuple(s, n))
                      for n, s in shapes.items()])
    for prof in profiles or ():
        entry = []
        for n, rng in prof.items():
            if len(rng) != 3:
                raise InvalidArgumentError(1, "profile range of %r must be (min, opt, max)" % n)
            entry.append((n,) + tuple(_shape_tuple(s, n) for s in rng))
        plist.append(entry)
    return plist


class Engine:
    """A built engine: immutable, shared by any number of threads and
    contexts. Make one with :func:`kiln.build` or :meth:`Engine.load`."""

    def __init__(self):
        raise TypeError("use kiln.build(...) or kiln.Engine.load(...)")

    @classmethod
    def _make(cls, cap, blob, path):
        self = object.__new__(cls)
        self._cap = cap
        self._blob = blob
        self._path = path
        ins, outs = _kiln.engine_io(cap)
        self._inputs = [TensorInfo(*t) for t in ins]
        self._outputs = [TensorInfo(*t) for t in outs]
        return self

    @classmethod
    def _from_blob(cls, blob):
        return cls._make(_kiln.engine_load_memory(blob), blob, None)

    @classmethod
    def load(cls, path_or_bytes):
        """Loads an engine file (mapped; weights used in place) or engine
        bytes. Raises CorruptEngineError for damaged data and
        IncompatibleEngineError for engines of another Kiln version or CPU."""
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            return cls._from_blob(bytes(path_or_bytes))
        path = os.fspath(path_or_bytes)
        return cls._make(_kiln.engine_load_file(path), None, os.path.abspath(path))

    def serialize(self):
        """The engine file's bytes."""
        if self._blob is None:
            with open(self._path, "rb") as f:
                return f.read()
        return self._blob

    def save(self, path):
        """Writes the engine file atomically (temporary file + rename)."""
        _kiln.engine_save_blob(self.serialize(), os.fspath(path))

    @property
    def inputs(self):
        """List of :class:`TensorInfo`, in the engine's input order."""
        return list(self._inputs)

    @property
    def outputs(self):
        """List of :class:`TensorInfo`, in the engine's output order."""
        return list(self._outputs)

    @property
    def profiles(self):
        """One dict per optimization profile: ``{input: (min, opt, max)}``
        for the inputs the profile gives a range."""
        out = []
        for p in range(_kiln.engine_num_profiles(self._cap)):
            d = {}
            for t in self._inputs:
                if t.shape is None:
                    continue
                try:
                    d[t.name] = _kiln.engine_profile_shape(self._cap, p, t.name, len(t.shape))
                except InvalidArgumentError:
                    pass  # a static input the profile does not mention
            out.append(d)
        return out

    @property
    def layers(self):
        """List of :class:`Layer` in execution order."""
        return [Layer(t) for t in _kiln.engine_layers(self._cap)]

    def activation_bytes(self, profile=0):
        """Activation memory a context needs for a profile."""
        return _kiln.engine_activation_bytes(self._cap, profile)

    def describe(self, context=None):
        """The full description ``kiln inspect --json`` prints, as a dict;
        with a profiled context, per-layer times are included."""
        return json.loads(_kiln.engine_describe_json(
            self._cap, None if context is None else context._cap))

    def create_context(self, profile=0):
        """A new :class:`Context` (its own activation memory) on this engine."""
        return Context(self, profile)

    def __repr__(self):
        return "<kiln.Engine inputs=%s outputs=%s>" % (
            [t.name for t in self._inputs], [t.name for t in self._outputs])


class Context:
    """Execution state for one engine: activation memory, shapes, bindings.

    Thread rules (those of the C API): the engine is shared by any number of
    threads; a context is used by one thread at a time, so give each thread
    its own context (contexts share the engine's weights). A context used
    from a second thread while it runs raises RuntimeError instead of racing.
    The GIL is released while the engine runs, so threads with their own
    contexts run in parallel.

    CUDA engines take host arrays (copied in and out) or device arrays:
    torch and cupy CUDA tensors, or anything with ``__dlpack__`` on the
    engine's GPU, are bound in place (no host round trip), and the outputs
    come back as :class:`DeviceArray` (``torch.from_dlpack(out)`` takes one
    without a copy).
    """

    def __init__(self, engine, profile=0):
        if not isinstance(engine, Engine):
            raise TypeError("Context needs a kiln.Engine")
        self.engine = engine
        self._cap = _kiln.context_create(engine._cap)
        self._profile = 0
        # Per input: numpy dtype (None: not representable), the kiln dtype
        # name for messages, and how the bytes travel: 0 numpy's buffer
        # export, 1 a uint8 view (user-defined dtypes such as bfloat16 have
        # no buffer export), 2 packed 4-bit, 3 packed 2-bit; looked up once.
        self._in = {t.name: (t.dtype, t.kiln_dtype,
                             2 if t._code in _PACKED4 else 3 if t._code in _PACKED2 else
                             int(t.dtype is not None and t.dtype.num >= 256))
                    for t in engine._inputs}
        self._out_names = tuple(t.name for t in engine._outputs)
        if profile:
            self.set_profile(profile)

    @property
    def profile(self):
        """The selected optimization profile."""
        return self._profile

    def set_profile(self, profile):
        """Selects the optimization profile whose ranges inputs must fit."""
        _kiln.context_set_profile(self._cap, int(profile))
        self._profile = int(profile)

    def set_profiling(self, enabled=True):
        """Per-layer timing of the following runs (see :meth:`layer_times`)."""
        _kiln.context_set_profiling(self._cap, bool(enabled))

    def layer_times(self):
        """``[(layer name, total ms, runs), ...]`` accumulated while profiling."""
        return _kiln.context_layer_times(self._cap)

    def run(self, inputs, outputs=None, stream=None):
        """Runs the engine once.

        inputs: ``{name: array}`` for every engine input. numpy arrays must
            have the input's dtype exactly (a wrong dtype raises
            InvalidArgumentError rather than converting silently); C-contiguous
            arrays are read in place, others are copied once. Lists and
            scalars are converted to the input's dtype.
        outputs: names of the outputs to return (default: all).
        Returns ``{name: numpy array}``; the arrays are the caller's.
        Shapes outside the selected profile, unknown names and missing inputs
        raise InvalidArgumentError; nothing here can crash the process.

        Device arrays (CUDA engines): when the inputs are CUDA tensors
        (DLPack device type 2: torch, cupy), every input must be one; they
        are read in place and the outputs are returned as
        :class:`DeviceArray` on the same GPU. ``stream``: a CUDA stream (an
        int cudaStream_t, or an object with ``.cuda_stream`` such as
        ``torch.cuda.current_stream()``) to queue the run on; the call then
        returns without waiting, and the caller orders later work on that
        stream and keeps the inputs alive until it has run. Without it the
        run goes on the context's own stream (made to wait for the
        producers' streams through DLPack) and the call waits for it.
        """
        if any(_is_device_array(a) for a in inputs.values()):
            return self._run_device(inputs, outputs, stream)
        spec = self._in
        args = []
        for name, a in inputs.items():
            s = spec.get(name)
            if s is None:
                raise InvalidArgumentError(1, "the engine has no input %r (inputs: %s)"
                                           % (name, ", ".join(spec)))
            dt = s[0]
            if dt is None:
                numpy_dtype(_code_of(s[1]))  # raises with the type's name
            if type(a) is not np.ndarray:
                if hasattr(a, "__dlpack_device__"):
                    a = _from_dlpack(name, a)
                # numpy scalars and array subclasses keep their dtype (and
                # are checked); plain Python data takes the input's dtype.
                a = np.asarray(a) if isinstance(a, (np.generic, np.ndarray)) \
                    else np.asarray(a, dtype=dt)
            if a.dtype != dt:
                _bad_dtype(name, a.dtype, s[1])
            if not a.flags.c_contiguous:
                a = np.ascontiguousarray(a)
            if not s[2]:
                args.append((name, a))  # read in place by the extension
            elif s[2] == 1:
                # numpy cannot export ml_dtypes types through the buffer
                # protocol; hand over the same bytes as uint8, shape apart.
                args.append((name, a.shape, a.reshape(-1).view(np.uint8)))
            elif s[2] == 2:
                args.append((name, a.shape, _pack4(a)))  # 4-bit: packed copy
            else:
                args.append((name, a.shape, _pack2(a)))  # 2-bit: packed copy
        names = self._out_names if outputs is None else tuple(outputs)
        res = _kiln.context_run(self._cap, tuple(args), names)
        np_dt = _NP
        out = {}
        for n, (buf, shape, code) in zip(names, res):
            dt = np_dt.get(code)
            if dt is None or code in _PACKED4 or code in _PACKED2:
                out[n] = _array(buf, shape, code)
            else:
                out[n] = np.ndarray(shape, dt, buf)
        return out

    def _run_device(self, inputs, outputs, stream):
        eng = self.engine
        if _kiln.engine_backend(eng._cap) != "cuda":
            raise UnsupportedError(3, "device arrays need a CUDA engine; this engine runs on "
                                   "the %s (pass host arrays, e.g. tensor.cpu())"
                                   % _kiln.engine_backend(eng._cap))
        s = 0
        if stream is not None:
            s = int(getattr(stream, "cuda_stream", stream))
        # The producer orders its pending writes before work on this stream.
        consumer = s if s else _kiln.context_stream(self._cap)
        args = []
        for name, a in inputs.items():
            spec = self._in.get(name)
            if spec is None:
                raise InvalidArgumentError(1, "the engine has no input %r (inputs: %s)"
                                           % (name, ", ".join(self._in)))
            if not _is_device_array(a):
                raise InvalidArgumentError(1, "input %r is a host array but other inputs are "
                                           "device arrays; pass all inputs on the GPU or all "
                                           "on the host" % name)
            try:
                capsule = a.__dlpack__(stream=consumer)
            except TypeError:
                capsule = a.__dlpack__()
            args.append((name, capsule, _code_of(spec[1])))
        names = self._out_names if outputs is None else tuple(outputs)
        res = _kiln.context_run_device(self._cap, tuple(args), names, s)
        return {n: DeviceArray._wrap(buf) for n, buf in zip(names, res)}

    def __repr__(self):
        return "<kiln.Context profile=%d of %r>" % (self._profile, self.engine)


def _is_device_array(a):
    if type(a) is np.ndarray or not hasattr(a, "__dlpack_device__"):
        return False
    try:
        return int(a.__dlpack_device__()[0]) == _DLPACK_CUDA
    except Exception:
        return False


class DeviceArray:
    """An output of a CUDA engine left in GPU memory (owned by Kiln until
    every reference and every DLPack export is gone). ``torch.from_dlpack``
    and ``cupy.from_dlpack`` take it without a copy; :meth:`numpy` copies it
    to the host."""

    def __init__(self):
        raise TypeError("DeviceArray objects come from Context.run")

    @classmethod
    def _wrap(cls, buf):
        self = object.__new__(cls)
        self._buf = buf
        self.shape, self._code, self._ptr = _kiln.devbuf_info(buf)
        return self

    @property
    def dtype(self):
        """The numpy dtype (None where numpy has none)."""
        return _NP.get(self._code)

    @property
    def data_ptr(self):
        """The device address, as an int."""
        return self._ptr

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        if copy:
            raise BufferError("kiln.DeviceArray exports its memory without copying")
        return _kiln.devbuf_export(self._buf)

    def __dlpack_device__(self):
        return (_DLPACK_CUDA, int(os.environ.get("KILN_CUDA_DEVICE", "0") or 0))

    def numpy(self):
        """A host copy as a numpy array."""
        return _array(_kiln.devbuf_to_host(self._buf), self.shape, self._code)

    def __repr__(self):
        return "<kiln.DeviceArray shape=%s dtype=%s cuda>" % (self.shape, self.dtype)


_DLPACK_CPU = 1  # DLDeviceType kDLCPU
_DLPACK_CUDA = 2  # kDLCUDA


def _from_dlpack(name, a):
    """Host tensors (torch, cupy's host arrays, ...) are read through DLPack
    without a copy. CUDA tensors take Context._run_device; other devices
    are refused rather than silently copied."""
    dev = a.__dlpack_device__()
    if int(dev[0]) != _DLPACK_CPU:
        raise UnsupportedError(3, "input %r is on a device Kiln does not drive (DLPack device "
                               "type %d); pass a host array or a CUDA tensor"
                               % (name, int(dev[0])))
    return np.from_dlpack(a)


def _code_of(kiln_name):
    for k, v in _KILN_NAMES.items():
        if v == kiln_name:
            return k
    return 0


def _bad_dtype(name, got, want):
    raise InvalidArgumentError(1, "input %r is %s; the engine takes %s (convert with "
                               ".astype)" % (name, got, want))


def load_pb(path):
    """Reads one ONNX TensorProto file (the test data format) into
    ``(name, numpy array)`` without the onnx package."""
    name, buf, shape, code = _kiln.tensor_load_pb(os.fspath(path))
    return name, _array(buf, shape, code)
