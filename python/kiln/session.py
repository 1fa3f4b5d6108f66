"""kiln.InferenceSession: onnxruntime's session interface over Kiln engines,
so existing code switches by changing one import.

The model is built into an engine under the hood. Inputs with symbolic dims
get an engine per distinct set of input shapes (min = opt = max, the fastest
plan for that shape), built on first use; ``kiln_profiles`` gives explicit
ranges instead. Built engines are cached on disk, keyed by the model's
hash, the input shapes, the build options and the machine (CPU, features,
Kiln version), in ``$KILN_CACHE_DIR`` or ``~/.cache/kiln``.
"""
import hashlib
import os
import platform
import threading
import warnings

import numpy as np

from . import _core, _kiln
from ._errors import (CorruptEngineError, DeviceError, IncompatibleEngineError,
                      InvalidArgumentError, UnsupportedError)

_ORT_TYPES = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn",
    18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
    23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
}


class NodeArg:
    """An input or output as onnxruntime describes it: ``name``, ``type``
    (e.g. ``"tensor(float)"``) and ``shape`` (ints, dim names or None)."""

    __slots__ = ("name", "type", "shape")

    def __init__(self, name, code, shape):
        self.name = name
        self.type = "tensor(%s)" % _ORT_TYPES.get(code, "undefined")
        self.shape = list(shape) if shape is not None else None

    def __repr__(self):
        return "NodeArg(name=%r, type=%r, shape=%r)" % (self.name, self.type, self.shape)


class SessionOptions:
    """Accepted where onnxruntime takes SessionOptions. Kiln reads
    ``intra_op_num_threads`` (threads per run) and its own ``opt_level``
    (0-5, build-time tactic search) and ``cache_dir``; the rest is stored
    and ignored."""

    def __init__(self):
        self.intra_op_num_threads = 0
        self.inter_op_num_threads = 0
        self.graph_optimization_level = None
        self.log_severity_level = 2
        self.opt_level = 3
        self.cache_dir = None


def machine_fingerprint():
    """What makes an engine valid on this machine: CPU architecture and
    features (engines record the ISA their tactics need) and Kiln's version."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s|%s|%s" % (platform.machine(), _kiln.version(),
                         hashlib.sha256(flags.encode()).hexdigest()[:16])


def _default_cache_dir():
    d = os.environ.get("KILN_CACHE_DIR")
    if d:
        return d
    return os.path.join(os.path.expanduser("~"), ".cache", "kiln")


class _EngineSet:
    """Engines of one model, one per input-shape signature (or one built
    from explicit profiles), each with a context per thread."""

    def __init__(self, model, opt_level=3, cache_dir=None, profiles=None, use_cache=True,
                 external_dir=None, device=0, precisions=1):
        if isinstance(model, (str, os.PathLike)):
            path = os.fspath(model)
            with open(path, "rb") as f:
                self._bytes = f.read()
            self._external_dir = os.path.dirname(os.path.abspath(path))
        else:
            if hasattr(model, "SerializeToString"):
                model = model.SerializeToString()
            self._bytes = bytes(model)
            self._external_dir = external_dir
        self._model = _kiln.model_load_memory(self._bytes, self._external_dir)
        ins, outs = _kiln.model_io(self._model)
        self.inputs = ins
        self.outputs = outs
        self._names = [t[0] for t in ins]
        self._opt_level = opt_level
        self._profiles = profiles
        self._device = device          # 0 CPU, 1 CUDA (kiln.build's device codes)
        self._precisions = precisions  # KILN_PRECISION_* bits
        self.cpu_fallback = True       # CUDA unavailable: build for the CPU instead
        self._cache_dir = (cache_dir or _default_cache_dir()) if use_cache else None
        self._hash = hashlib.sha256(self._bytes).hexdigest()
        self._engines = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        static = all(s is not None and all(isinstance(d, int) for d in s) for _, _, s in ins)
        self._static_key = () if static or profiles else None

    def _build(self, key):
        if self._profiles:
            kw = {"profiles": self._profiles}
        elif key:
            kw = {"shapes": {name: shape for name, shape in key}}
        else:
            kw = {}
        path = None
        if self._cache_dir:
            ident = "%s|%s|%r|%r|%d|%d|%d" % (self._hash, machine_fingerprint(), key,
                                              self._profiles, self._opt_level, self._device,
                                              self._precisions)
            path = os.path.join(self._cache_dir,
                                hashlib.sha256(ident.encode()).hexdigest()[:32] + ".kiln")
            if os.path.isfile(path):
                try:
                    return _core.Engine.load(path)
                except (CorruptEngineError, IncompatibleEngineError):
                    pass  # rebuilt and replaced below
        try:
            blob = _kiln.build(self._model, self._device, self._precisions, self._opt_level, -1,
                               None, None, 1, _core._profile_list(**kw))
        except (DeviceError, UnsupportedError) as ex:
            if not self._device or not self.cpu_fallback:
                raise
            # No CUDA backend or no GPU here: onnxruntime falls back to its
            # CPU provider with a warning; so does Kiln.
            warnings.warn("kiln: the CUDA provider is not available (%s); running on the CPU"
                          % ex, RuntimeWarning, stacklevel=4)
            self._device, self._precisions = 0, 1
            return self._build(key)
        engine = _core.Engine._from_blob(blob)
        if path:
            try:
                os.makedirs(self._cache_dir, exist_ok=True)
                engine.save(path)
            except OSError:
                pass  # a read-only cache only costs rebuilds
        return engine

    def _engine(self, key):
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = self._engines[key] = self._build(key)
        return engine

    def context(self, feed):
        """The calling thread's context for an engine that takes these inputs."""
        local = self._local
        if self._static_key is not None:
            # One engine for every call: skip the shape key (the hot path).
            ctx = getattr(local, "static", None)
            if ctx is None:
                ctx = local.static = self._engine(self._static_key).create_context()
            return ctx
        names = self._names
        for n in feed:
            if n not in names:
                raise InvalidArgumentError(1, "the model has no input %r (inputs: %s)"
                                           % (n, ", ".join(names)))
        key = tuple(sorted((n, tuple(np.shape(a))) for n, a in feed.items()))
        ctxs = getattr(local, "ctxs", None)
        if ctxs is None:
            ctxs = local.ctxs = {}
        ctx = ctxs.get(key)
        if ctx is None:
            ctx = ctxs[key] = self._engine(key).create_context()
        return ctx


_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def _pick_provider(providers, provider_options):
    """(device, precision bits, provider name) from onnxruntime-style
    providers: names or (name, options) pairs, first one Kiln can serve."""
    opts_list = list(provider_options or [])
    for i, p in enumerate(providers or ()):
        name, popts = (p[0], dict(p[1] or {})) if isinstance(p, (tuple, list)) else (p, {})
        if i < len(opts_list) and opts_list[i]:
            popts.update(opts_list[i])
        if name in _GPU_PROVIDERS:
            prec = 1
            if str(popts.get("trt_fp16_enable", "")).lower() in ("1", "true"):
                prec |= 2
            if str(popts.get("trt_bf16_enable", "")).lower() in ("1", "true"):
                prec |= 4
            return 1, prec, name
        if name == "CPUExecutionProvider":
            return 0, 1, name
    return 0, 1, "CPUExecutionProvider"


class InferenceSession:
    """onnxruntime.InferenceSession over a Kiln engine.

    ``InferenceSession(path_or_bytes, sess_options=None, providers=None)``;
    ``run(output_names, input_feed)`` returns a list of numpy arrays in the
    order of output_names (None: every output). Providers, in onnxruntime's
    priority order: ``"CUDAExecutionProvider"`` or
    ``"TensorrtExecutionProvider"`` (with ``trt_fp16_enable`` /
    ``trt_bf16_enable`` in its options for half precision) builds CUDA
    engines; where this kiln or machine cannot (no CUDA backend, no GPU) the
    session falls back to the CPU with a warning, as onnxruntime does;
    ``"CPUExecutionProvider"`` or none: the CPU. ``get_providers()`` names
    the one in use. Kiln-specific keywords:
    ``kiln_profiles`` (explicit optimization profiles, see kiln.build),
    ``kiln_cache`` (False: no engine cache on disk).

    A session may be used by several threads at once: each thread gets its
    own execution context on the shared engine.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None,
                 provider_options=None, kiln_profiles=None, kiln_cache=True, **kwargs):
        opts = sess_options or SessionOptions()
        if getattr(opts, "intra_op_num_threads", 0):
            _kiln.set_num_threads(int(opts.intra_op_num_threads))
        device, precisions, provider = _pick_provider(providers, provider_options)
        kw = dict(opt_level=getattr(opts, "opt_level", 3),
                  cache_dir=getattr(opts, "cache_dir", None), profiles=kiln_profiles,
                  use_cache=kiln_cache)
        self._set = _EngineSet(path_or_bytes, device=device, precisions=precisions, **kw)
        if device and self._set._static_key is not None:
            # Static shapes: build now, so a machine without a GPU falls back
            # (with a warning) here rather than at the first run.
            self._set._engine(self._set._static_key)
        self._inputs = [NodeArg(*t) for t in self._set.inputs]
        self._outputs = [NodeArg(*t) for t in self._set.outputs]
        self._provider = provider
        self._all_outputs = tuple(o.name for o in self._outputs)
        self._output_set = frozenset(self._all_outputs)

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_overridable_initializers(self):
        return []

    def get_providers(self):
        """The provider in use: a CUDA one asked for but unavailable reads
        CPUExecutionProvider once the session fell back."""
        if self._set._device == 0 and self._provider in _GPU_PROVIDERS:
            return ["CPUExecutionProvider"]
        return [self._provider]

    def run(self, output_names, input_feed, run_options=None):
        """Runs the model; builds (or loads from the cache) an engine for new
        input shapes first. Raises kiln.InvalidArgumentError for unknown or
        missing inputs and wrong dtypes."""
        if not output_names:
            names = self._all_outputs
        else:
            names = tuple(output_names)
            for n in names:
                if n not in self._output_set:
                    raise InvalidArgumentError(1, "the model has no output %r" % n)
        out = self._set.context(input_feed).run(input_feed, names)
        return [out[n] for n in names]

    def run_with_ort_values(self, *a, **k):  # pragma: no cover - not offered
        raise NotImplementedError("Kiln sessions take and return numpy arrays")
