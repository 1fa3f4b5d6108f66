/* _kiln.c: the Python extension, a thin layer over include/kiln.h. It is
** written against the CPython limited API (Py_LIMITED_API, set by the build),
** so one abi3 wheel serves every Python 3 from 3.11 on (3.11 is the first
** limited API with the buffer protocol, which is how arrays are read in
** place). Handles travel as capsules whose destructors free the C objects. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

/* KilnError subclasses by status, installed by kiln/_errors.py at import. */
static PyObject *error_classes; /* dict: int status -> class */

static PyObject *raise_status(kiln_status st) {
    const char *msg = kiln_last_error();
    PyObject *cls = NULL;
    if (error_classes) {
        PyObject *key = PyLong_FromLong((long)st);
        if (key) {
            cls = PyDict_GetItem(error_classes, key); /* borrowed */
            Py_DECREF(key);
        }
    }
    if (!cls) {
        PyErr_Format(PyExc_RuntimeError, "kiln: %s: %s", kiln_status_name(st), msg);
        return NULL;
    }
    PyObject *exc = PyObject_CallFunction(cls, "is", (int)st, msg);
    if (exc) {
        PyErr_SetObject(cls, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *set_error_classes(PyObject *self, PyObject *arg) {
    if (!PyDict_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "expected a dict");
        return NULL;
    }
    Py_XDECREF(error_classes);
    Py_INCREF(arg);
    error_classes = arg;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ capsules */
#define MODEL_CAP "kiln.model"
#define ENGINE_CAP "kiln.engine"
#define CONTEXT_CAP "kiln.context"

typedef struct model_box {
    kiln_model *m;
    void *bytes; /* in-memory models: the copy the model reads from */
} model_box;

typedef struct context_box {
    kiln_context *c;
    PyObject *engine; /* the engine capsule, kept alive while the context is */
    int busy;         /* set (under the GIL) while a run is in progress */
} context_box;

static void model_free_cap(PyObject *cap) {
    model_box *b = PyCapsule_GetPointer(cap, MODEL_CAP);
    if (!b) return;
    kiln_model_free(b->m);
    free(b->bytes);
    free(b);
}

static void engine_free_cap(PyObject *cap) {
    kiln_engine_free(PyCapsule_GetPointer(cap, ENGINE_CAP));
}

static void context_free_cap(PyObject *cap) {
    context_box *b = PyCapsule_GetPointer(cap, CONTEXT_CAP);
    if (!b) return;
    kiln_context_destroy(b->c);
    Py_XDECREF(b->engine);
    free(b);
}

static kiln_model *get_model(PyObject *o) {
    model_box *b = PyCapsule_GetPointer(o, MODEL_CAP);
    return b ? b->m : NULL;
}
static kiln_engine *get_engine(PyObject *o) { return PyCapsule_GetPointer(o, ENGINE_CAP); }
static context_box *get_context(PyObject *o) { return PyCapsule_GetPointer(o, CONTEXT_CAP); }

/* ------------------------------------------------------------- helpers */
/* A shape tuple of ints into dims; returns the rank or -1 with an error. */
static int dims_from_tuple(PyObject *t, int64_t *dims, const char *what) {
    if (!PyTuple_Check(t)) {
        PyErr_Format(PyExc_TypeError, "%s: shape must be a tuple", what);
        return -1;
    }
    Py_ssize_t n = PyTuple_Size(t);
    if (n > KILN_MAX_RANK) {
        PyErr_Format(PyExc_ValueError, "%s: rank %zd exceeds Kiln's limit of %d", what, n,
                     KILN_MAX_RANK);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long v = PyLong_AsLongLong(PyTuple_GetItem(t, i));
        if (v == -1 && PyErr_Occurred()) return -1;
        dims[i] = (int64_t)v;
    }
    return (int)n;
}

static PyObject *tuple_from_dims(int rank, const int64_t *dims) {
    PyObject *t = PyTuple_New(rank < 0 ? 0 : rank);
    for (int i = 0; t && i < rank; i++) {
        PyObject *v = PyLong_FromLongLong((long long)dims[i]);
        if (!v) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SetItem(t, i, v);
    }
    return t;
}

/* (name, dtype, shape) with symbolic dims given by their names (str), or
** None for dims with neither a size nor a name; shape is None when the
** rank is unknown. */
static PyObject *io_tuple(const kiln_io_info *io) {
    PyObject *shape;
    if (io->rank < 0) {
        Py_INCREF(Py_None);
        shape = Py_None;
    } else {
        shape = PyTuple_New(io->rank);
        for (int d = 0; shape && d < io->rank; d++) {
            PyObject *v;
            if (io->dims[d] >= 0) {
                v = PyLong_FromLongLong((long long)io->dims[d]);
            } else if (io->dim_names[d]) {
                v = PyUnicode_FromString(io->dim_names[d]);
            } else {
                Py_INCREF(Py_None);
                v = Py_None;
            }
            if (!v) {
                Py_DECREF(shape);
                return NULL;
            }
            PyTuple_SetItem(shape, d, v);
        }
    }
    if (!shape) return NULL;
    return Py_BuildValue("(siN)", io->name, (int)io->dtype, shape);
}

/* -------------------------------------------------------------- general */
static PyObject *py_version(PyObject *self, PyObject *args) {
    return PyUnicode_FromString(kiln_version());
}

static PyObject *py_status_name(PyObject *self, PyObject *args) {
    int s;
    if (!PyArg_ParseTuple(args, "i", &s)) return NULL;
    return PyUnicode_FromString(kiln_status_name((kiln_status)s));
}

static PyObject *py_set_num_threads(PyObject *self, PyObject *args) {
    int n;
    if (!PyArg_ParseTuple(args, "i", &n)) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "number of threads must be >= 0");
        return NULL;
    }
    kiln_set_num_threads(n);
    Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *self, PyObject *args) {
    return PyLong_FromLong(kiln_get_num_threads());
}

/* ---------------------------------------------------------------- model */
static PyObject *py_model_load(PyObject *self, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    model_box *b = calloc(1, sizeof *b);
    if (!b) return PyErr_NoMemory();
    kiln_status st;
    Py_BEGIN_ALLOW_THREADS
    st = kiln_model_load(path, &b->m);
    Py_END_ALLOW_THREADS
    if (st) {
        free(b);
        return raise_status(st);
    }
    PyObject *cap = PyCapsule_New(b, MODEL_CAP, model_free_cap);
    if (!cap) {
        kiln_model_free(b->m);
        free(b);
    }
    return cap;
}

static PyObject *py_model_load_memory(PyObject *self, PyObject *args) {
    const char *data, *ext_dir = NULL;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "y#z", &data, &size, &ext_dir)) return NULL;
    model_box *b = calloc(1, sizeof *b);
    if (!b) return PyErr_NoMemory();
    /* The model reads from its buffer for its whole life; own a copy. */
    b->bytes = malloc(size ? (size_t)size : 1);
    if (!b->bytes) {
        free(b);
        return PyErr_NoMemory();
    }
    memcpy(b->bytes, data, (size_t)size);
    kiln_status st;
    Py_BEGIN_ALLOW_THREADS
    st = kiln_model_load_memory(b->bytes, (size_t)size, ext_dir, &b->m);
    Py_END_ALLOW_THREADS
    if (st) {
        free(b->bytes);
        free(b);
        return raise_status(st);
    }
    PyObject *cap = PyCapsule_New(b, MODEL_CAP, model_free_cap);
    if (!cap) {
        kiln_model_free(b->m);
        free(b->bytes);
        free(b);
    }
    return cap;
}

static PyObject *py_model_io(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    kiln_model *m = get_model(cap);
    if (!m) return NULL;
    int ni = kiln_model_num_inputs(m), no = kiln_model_num_outputs(m);
    PyObject *ins = PyList_New(0), *outs = PyList_New(0);
    for (int k = 0; ins && outs && k < ni + no; k++) {
        kiln_io_info io;
        kiln_status st = k < ni ? kiln_model_input(m, k, &io) : kiln_model_output(m, k - ni, &io);
        if (st) {
            raise_status(st);
            goto fail;
        }
        PyObject *t = io_tuple(&io);
        if (!t || PyList_Append(k < ni ? ins : outs, t)) {
            Py_XDECREF(t);
            goto fail;
        }
        Py_DECREF(t);
    }
    if (!ins || !outs) goto fail;
    return Py_BuildValue("(NN)", ins, outs);
fail:
    Py_XDECREF(ins);
    Py_XDECREF(outs);
    return NULL;
}

/* -------------------------------------------------------------- builder */
/* The builder logs from the thread that called build, with the GIL
** released; take it back for each message. */
static void log_to_python(void *user, kiln_severity sev, const char *msg) {
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunction((PyObject *)user, "is", (int)sev, msg);
    if (!r) PyErr_WriteUnraisable((PyObject *)user);
    Py_XDECREF(r);
    PyGILState_Release(g);
}

/* build(model, device, precisions, opt_level, workspace (<0: default),
**       timing_cache or None, log callable or None, max_severity,
**       profiles: [[(input, min, opt, max), ...], ...]) -> bytes */
static PyObject *py_build(PyObject *self, PyObject *args) {
    PyObject *mcap, *logfn, *profiles;
    int device, opt_level, max_sev;
    unsigned precisions;
    long long workspace;
    const char *cache;
    if (!PyArg_ParseTuple(args, "OiIiLzOiO", &mcap, &device, &precisions, &opt_level,
                          &workspace, &cache, &logfn, &max_sev, &profiles))
        return NULL;
    kiln_model *m = get_model(mcap);
    if (!m) return NULL;
    if (!PyList_Check(profiles)) {
        PyErr_SetString(PyExc_TypeError, "profiles must be a list");
        return NULL;
    }
    kiln_builder_config *cfg = NULL;
    void *blob = NULL;
    size_t size = 0;
    PyObject *result = NULL;
    kiln_status st = kiln_builder_config_create(&cfg);
    if (!st) st = kiln_builder_config_set_device(cfg, (kiln_device)device);
    if (!st) st = kiln_builder_config_set_precisions(cfg, precisions);
    if (!st) st = kiln_builder_config_set_opt_level(cfg, opt_level);
    if (!st && workspace >= 0) st = kiln_builder_config_set_workspace(cfg, (uint64_t)workspace);
    if (!st && cache) st = kiln_builder_config_set_timing_cache(cfg, cache);
    if (!st)
        st = kiln_builder_config_set_logger(cfg, logfn == Py_None ? NULL : log_to_python,
                                            logfn == Py_None ? NULL : logfn,
                                            (kiln_severity)max_sev);
    for (Py_ssize_t p = 0; !st && p < PyList_Size(profiles); p++) {
        PyObject *prof = PyList_GetItem(profiles, p);
        int index;
        if (!PyList_Check(prof)) {
            PyErr_SetString(PyExc_TypeError, "each profile must be a list");
            goto done;
        }
        if ((st = kiln_builder_config_add_profile(cfg, &index))) break;
        for (Py_ssize_t k = 0; !st && k < PyList_Size(prof); k++) {
            const char *name;
            PyObject *tmin, *topt, *tmax;
            int64_t dmin[KILN_MAX_RANK], dopt[KILN_MAX_RANK], dmax[KILN_MAX_RANK];
            if (!PyArg_ParseTuple(PyList_GetItem(prof, k), "sOOO", &name, &tmin, &topt, &tmax))
                goto done;
            int r1 = dims_from_tuple(tmin, dmin, name), r2 = r1 < 0 ? -1 : dims_from_tuple(topt, dopt, name),
                r3 = r2 < 0 ? -1 : dims_from_tuple(tmax, dmax, name);
            if (r3 < 0) goto done;
            if (r1 != r2 || r2 != r3) {
                PyErr_Format(PyExc_ValueError, "input '%s': min, opt and max must have the same rank",
                             name);
                goto done;
            }
            st = kiln_builder_config_set_shape(cfg, index, name, r1, dmin, dopt, dmax);
        }
    }
    if (!st) {
        Py_BEGIN_ALLOW_THREADS
        st = kiln_build_engine(m, cfg, &blob, &size);
        Py_END_ALLOW_THREADS
    }
    if (st) {
        raise_status(st);
        goto done;
    }
    result = PyBytes_FromStringAndSize(blob, (Py_ssize_t)size);
done:
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    return result;
}

/* --------------------------------------------------------------- engine */
static PyObject *py_engine_load_file(PyObject *self, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    kiln_engine *e = NULL;
    kiln_status st;
    Py_BEGIN_ALLOW_THREADS
    st = kiln_engine_load_file(path, &e);
    Py_END_ALLOW_THREADS
    if (st) return raise_status(st);
    PyObject *cap = PyCapsule_New(e, ENGINE_CAP, engine_free_cap);
    if (!cap) kiln_engine_free(e);
    return cap;
}

static PyObject *py_engine_load_memory(PyObject *self, PyObject *args) {
    const char *data;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "y#", &data, &size)) return NULL;
    kiln_engine *e = NULL;
    kiln_status st;
    Py_BEGIN_ALLOW_THREADS
    st = kiln_engine_load_memory(data, (size_t)size, &e);
    Py_END_ALLOW_THREADS
    if (st) return raise_status(st);
    PyObject *cap = PyCapsule_New(e, ENGINE_CAP, engine_free_cap);
    if (!cap) kiln_engine_free(e);
    return cap;
}

static PyObject *py_engine_save_blob(PyObject *self, PyObject *args) {
    const char *data, *path;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "y#s", &data, &size, &path)) return NULL;
    kiln_status st;
    Py_BEGIN_ALLOW_THREADS
    st = kiln_engine_save_blob(data, (size_t)size, path);
    Py_END_ALLOW_THREADS
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

/* engine_io(engine) -> (inputs, outputs), each a list of io tuples. */
static PyObject *py_engine_io(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    kiln_engine *e = get_engine(cap);
    if (!e) return NULL;
    int ni = kiln_engine_num_inputs(e), no = kiln_engine_num_outputs(e);
    PyObject *ins = PyList_New(0), *outs = PyList_New(0);
    for (int k = 0; ins && outs && k < ni + no; k++) {
        kiln_io_info io;
        kiln_status st = k < ni ? kiln_engine_input(e, k, &io) : kiln_engine_output(e, k - ni, &io);
        if (st) {
            raise_status(st);
            goto fail;
        }
        PyObject *t = io_tuple(&io);
        if (!t || PyList_Append(k < ni ? ins : outs, t)) {
            Py_XDECREF(t);
            goto fail;
        }
        Py_DECREF(t);
    }
    if (!ins || !outs) goto fail;
    return Py_BuildValue("(NN)", ins, outs);
fail:
    Py_XDECREF(ins);
    Py_XDECREF(outs);
    return NULL;
}

static PyObject *py_engine_num_profiles(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    kiln_engine *e = get_engine(cap);
    return e ? PyLong_FromLong(kiln_engine_num_profiles(e)) : NULL;
}

/* engine_profile_shape(engine, profile, input, rank) -> (min, opt, max) */
static PyObject *py_engine_profile_shape(PyObject *self, PyObject *args) {
    PyObject *cap;
    int profile, rank;
    const char *name;
    if (!PyArg_ParseTuple(args, "Oisi", &cap, &profile, &name, &rank)) return NULL;
    kiln_engine *e = get_engine(cap);
    if (!e) return NULL;
    if (rank < 0 || rank > KILN_MAX_RANK) {
        PyErr_SetString(PyExc_ValueError, "bad rank");
        return NULL;
    }
    int64_t mn[KILN_MAX_RANK], op[KILN_MAX_RANK], mx[KILN_MAX_RANK];
    kiln_status st = kiln_engine_profile_shape(e, profile, name, mn, op, mx);
    if (st) return raise_status(st);
    return Py_BuildValue("(NNN)", tuple_from_dims(rank, mn), tuple_from_dims(rank, op),
                         tuple_from_dims(rank, mx));
}

static PyObject *py_engine_activation_bytes(PyObject *self, PyObject *args) {
    PyObject *cap;
    int profile;
    if (!PyArg_ParseTuple(args, "Oi", &cap, &profile)) return NULL;
    kiln_engine *e = get_engine(cap);
    return e ? PyLong_FromUnsignedLongLong(kiln_engine_activation_bytes(e, profile)) : NULL;
}

/* engine_layers(engine) -> [(name, op_type, fused_from, tactic, precision,
** build_time_us), ...] */
static PyObject *py_engine_layers(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    kiln_engine *e = get_engine(cap);
    if (!e) return NULL;
    int n = kiln_engine_num_layers(e);
    PyObject *list = PyList_New(0);
    for (int i = 0; list && i < n; i++) {
        kiln_layer_info li;
        kiln_status st = kiln_engine_layer(e, i, &li);
        if (st) {
            Py_DECREF(list);
            return raise_status(st);
        }
        PyObject *t = Py_BuildValue("(zzzzId)", li.name, li.op_type, li.fused_from, li.tactic,
                                    li.precision, li.build_time_us);
        if (!t || PyList_Append(list, t)) {
            Py_XDECREF(t);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(t);
    }
    return list;
}

/* engine_describe_json(engine, context or None) -> str */
static PyObject *py_engine_describe_json(PyObject *self, PyObject *args) {
    PyObject *cap, *ccap;
    if (!PyArg_ParseTuple(args, "OO", &cap, &ccap)) return NULL;
    kiln_engine *e = get_engine(cap);
    if (!e) return NULL;
    const kiln_context *c = NULL;
    if (ccap != Py_None) {
        context_box *b = get_context(ccap);
        if (!b) return NULL;
        c = b->c;
    }
    char *json = NULL;
    kiln_status st = kiln_engine_describe_json(e, c, &json);
    if (st) return raise_status(st);
    PyObject *r = PyUnicode_FromString(json);
    kiln_free(json);
    return r;
}

/* -------------------------------------------------------------- context */
static PyObject *py_context_create(PyObject *self, PyObject *args) {
    PyObject *ecap;
    if (!PyArg_ParseTuple(args, "O", &ecap)) return NULL;
    kiln_engine *e = get_engine(ecap);
    if (!e) return NULL;
    context_box *b = calloc(1, sizeof *b);
    if (!b) return PyErr_NoMemory();
    kiln_status st = kiln_context_create(e, &b->c);
    if (st) {
        free(b);
        return raise_status(st);
    }
    Py_INCREF(ecap);
    b->engine = ecap;
    PyObject *cap = PyCapsule_New(b, CONTEXT_CAP, context_free_cap);
    if (!cap) {
        kiln_context_destroy(b->c);
        Py_DECREF(ecap);
        free(b);
    }
    return cap;
}

static context_box *claim(PyObject *cap) {
    context_box *b = get_context(cap);
    if (b && b->busy) {
        /* Two threads on one context would race on its bindings; refuse
        ** rather than corrupt (the docs say: one context per thread). */
        PyErr_SetString(PyExc_RuntimeError,
                        "this Context is running on another thread; use one Context per thread");
        return NULL;
    }
    return b;
}

static PyObject *py_context_set_profile(PyObject *self, PyObject *args) {
    PyObject *cap;
    int profile;
    if (!PyArg_ParseTuple(args, "Oi", &cap, &profile)) return NULL;
    context_box *b = claim(cap);
    if (!b) return NULL;
    kiln_status st = kiln_context_set_profile(b->c, profile);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *py_context_set_profiling(PyObject *self, PyObject *args) {
    PyObject *cap;
    int on;
    if (!PyArg_ParseTuple(args, "Op", &cap, &on)) return NULL;
    context_box *b = claim(cap);
    if (!b) return NULL;
    kiln_status st = kiln_context_set_profiling(b->c, on);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *py_context_layer_times(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    context_box *b = claim(cap);
    if (!b) return NULL;
    int n = kiln_context_num_layers(b->c);
    PyObject *list = PyList_New(0);
    for (int i = 0; list && i < n; i++) {
        const char *name;
        double ms;
        int runs;
        kiln_status st = kiln_context_layer_time(b->c, i, &name, &ms, &runs);
        if (st) {
            Py_DECREF(list);
            return raise_status(st);
        }
        PyObject *t = Py_BuildValue("(zdi)", name, ms, runs);
        if (!t || PyList_Append(list, t)) {
            Py_XDECREF(t);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(t);
    }
    return list;
}

/* context_run(ctx, inputs, outputs) -> tuple of (bytearray, shape, dtype)
** inputs: tuple of (name, array) or (name, shape, array), one per engine
**         input, already checked for dtype by the caller. The array is read
**         in place through the buffer protocol (C-contiguous required);
**         the 3-item form gives the shape separately, for dtypes numpy
**         cannot export (bfloat16 and float8 from ml_dtypes, passed as a
**         uint8 view);
** outputs: tuple of output names (str) to return.
** Every output is left to the context (NULL binding): the runtime copies a
** result once either way, so copying it from the context into the Python
** buffer costs the same as binding that buffer up front, and data-
** dependent output shapes need no special case. */
#define RUN_STACK_INPUTS 16

static PyObject *py_context_run(PyObject *self, PyObject *args) {
    PyObject *cap, *inputs, *outputs;
    if (!PyArg_ParseTuple(args, "OO!O!", &cap, &PyTuple_Type, &inputs, &PyTuple_Type, &outputs))
        return NULL;
    context_box *b = claim(cap);
    if (!b) return NULL;
    kiln_context *c = b->c;
    kiln_status st = KILN_OK;
    Py_ssize_t ni = PyTuple_Size(inputs), no = PyTuple_Size(outputs), held = 0;
    Py_buffer stack_views[RUN_STACK_INPUTS];
    Py_buffer *views = ni <= RUN_STACK_INPUTS ? stack_views : calloc((size_t)ni, sizeof *views);
    PyObject *result = NULL;
    if (!views) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < ni; i++) {
        PyObject *item = PyTuple_GetItem(inputs, i);
        Py_ssize_t len = PyTuple_Check(item) ? PyTuple_Size(item) : 0;
        if (len != 2 && len != 3) {
            PyErr_SetString(PyExc_TypeError, "each input is (name, array) or (name, shape, array)");
            goto done;
        }
        Py_ssize_t name_len;
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(item, 0), &name_len);
        if (!name) goto done;
        if (PyObject_GetBuffer(PyTuple_GetItem(item, len - 1), &views[i], PyBUF_C_CONTIGUOUS))
            goto done;
        held = i + 1;
        int64_t dims[KILN_MAX_RANK];
        int rank;
        if (len == 3) {
            if ((rank = dims_from_tuple(PyTuple_GetItem(item, 1), dims, name)) < 0) goto done;
        } else {
            rank = views[i].ndim;
            if (rank > KILN_MAX_RANK) {
                PyErr_Format(PyExc_ValueError, "input '%s': rank %d exceeds Kiln's limit of %d",
                             name, rank, KILN_MAX_RANK);
                goto done;
            }
            for (int d = 0; d < rank; d++) dims[d] = (int64_t)views[i].shape[d];
        }
        if ((st = kiln_context_set_input_shape(c, name, rank, dims)) ||
            (st = kiln_context_set_tensor(c, name, views[i].buf, (size_t)views[i].len))) {
            raise_status(st);
            goto done;
        }
    }
    /* Unbind every output, so no buffer from an earlier call is written. */
    const kiln_engine *e = get_engine(b->engine);
    int n_out = kiln_engine_num_outputs(e);
    for (int o = 0; o < n_out; o++) {
        kiln_io_info io;
        if ((st = kiln_engine_output(e, o, &io)) ||
            (st = kiln_context_set_tensor(c, io.name, NULL, 0))) {
            raise_status(st);
            goto done;
        }
    }
    b->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    st = kiln_context_execute(c);
    Py_END_ALLOW_THREADS
    b->busy = 0;
    if (st) {
        raise_status(st);
        goto done;
    }
    result = PyTuple_New(no);
    for (Py_ssize_t o = 0; result && o < no; o++) {
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(outputs, o), NULL);
        const kiln_tensor *t = NULL;
        if (!name) goto fail;
        if ((st = kiln_context_output(c, name, &t))) {
            raise_status(st);
            goto fail;
        }
        PyObject *buf = PyByteArray_FromStringAndSize(kiln_tensor_cdata(t),
                                                      (Py_ssize_t)kiln_tensor_nbytes(t));
        if (!buf) goto fail;
        PyObject *item = Py_BuildValue("(NNi)", buf,
                                       tuple_from_dims(kiln_tensor_rank(t), kiln_tensor_dims(t)),
                                       (int)kiln_tensor_dtype(t));
        if (!item) goto fail;
        PyTuple_SetItem(result, o, item);
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    /* Inputs stay bound to caller memory only for the call. */
    for (Py_ssize_t i = 0; i < held; i++) {
        PyObject *item = PyTuple_GetItem(inputs, i);
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(item, 0), NULL);
        if (name) kiln_context_set_tensor(c, name, NULL, 0);
        PyBuffer_Release(&views[i]);
    }
    if (views != stack_views) free(views);
    return result;
}

/* -------------------------------------------------------------- DLPack
** Device arrays (torch and cupy CUDA tensors) in and out of CUDA engines
** without a trip through the host. The structs below are the DLPack ABI
** (version 0.x "dltensor" capsules, which torch and cupy export and accept);
** they are declared here because DLPack is a header-only convention. */
typedef struct dl_device {
    int32_t type; /* 1 CPU, 2 CUDA, 3 CUDA host (pinned), ... */
    int32_t id;
} dl_device;
typedef struct dl_dtype {
    uint8_t code; /* 0 int, 1 uint, 2 float, 4 bfloat, 6 bool */
    uint8_t bits;
    uint16_t lanes;
} dl_dtype;
typedef struct dl_tensor {
    void *data;
    dl_device device;
    int32_t ndim;
    dl_dtype dtype;
    int64_t *shape;
    int64_t *strides; /* in elements; NULL: compact row-major */
    uint64_t byte_offset;
} dl_tensor;
typedef struct dl_managed {
    dl_tensor t;
    void *manager_ctx;
    void (*deleter)(struct dl_managed *self);
} dl_managed;

enum { DL_CUDA = 2 };

static int dl_to_kiln(dl_dtype d) {
    if (d.lanes != 1) return KILN_DTYPE_UNDEFINED;
    switch (d.code) {
    case 0: return d.bits == 8 ? KILN_DTYPE_INT8 : d.bits == 16 ? KILN_DTYPE_INT16
                 : d.bits == 32 ? KILN_DTYPE_INT32 : d.bits == 64 ? KILN_DTYPE_INT64 : 0;
    case 1: return d.bits == 8 ? KILN_DTYPE_UINT8 : d.bits == 16 ? KILN_DTYPE_UINT16
                 : d.bits == 32 ? KILN_DTYPE_UINT32 : d.bits == 64 ? KILN_DTYPE_UINT64 : 0;
    case 2: return d.bits == 16 ? KILN_DTYPE_FLOAT16 : d.bits == 32 ? KILN_DTYPE_FLOAT32
                 : d.bits == 64 ? KILN_DTYPE_FLOAT64 : 0;
    case 4: return d.bits == 16 ? KILN_DTYPE_BFLOAT16 : 0;
    case 6: return d.bits == 8 ? KILN_DTYPE_BOOL : 0;
    default: return KILN_DTYPE_UNDEFINED;
    }
}

static int kiln_to_dl(int k, dl_dtype *d) {
    static const struct { int k; uint8_t code, bits; } map[] = {
        {KILN_DTYPE_INT8, 0, 8},     {KILN_DTYPE_INT16, 0, 16},   {KILN_DTYPE_INT32, 0, 32},
        {KILN_DTYPE_INT64, 0, 64},   {KILN_DTYPE_UINT8, 1, 8},    {KILN_DTYPE_UINT16, 1, 16},
        {KILN_DTYPE_UINT32, 1, 32},  {KILN_DTYPE_UINT64, 1, 64},  {KILN_DTYPE_FLOAT16, 2, 16},
        {KILN_DTYPE_FLOAT32, 2, 32}, {KILN_DTYPE_FLOAT64, 2, 64}, {KILN_DTYPE_BFLOAT16, 4, 16},
        {KILN_DTYPE_BOOL, 6, 8},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].k == k) {
            d->code = map[i].code;
            d->bits = map[i].bits;
            d->lanes = 1;
            return 1;
        }
    return 0;
}

/* A device buffer Kiln allocated for an output: freed through the engine
** when the last owner (the kiln.DeviceArray, or a consumer holding an
** exported capsule) lets go. */
#define DEVBUF_CAP "kiln.devbuf"
typedef struct devbuf {
    PyObject *engine; /* engine capsule: its device frees the memory */
    void *ptr;
    size_t nbytes;
    int dtype;
    int rank;
    int64_t dims[KILN_MAX_RANK];
} devbuf;

static void devbuf_free_cap(PyObject *cap) {
    devbuf *b = PyCapsule_GetPointer(cap, DEVBUF_CAP);
    if (!b) return;
    if (b->ptr) kiln_engine_device_free(get_engine(b->engine), b->ptr);
    Py_XDECREF(b->engine);
    free(b);
}

/* An exported view: keeps the devbuf capsule alive until the consumer
** calls the deleter (possibly from a thread without the GIL). */
typedef struct dl_export {
    dl_managed m;
    PyObject *owner;
    int64_t shape[KILN_MAX_RANK];
} dl_export;

static void dl_export_delete(dl_managed *m) {
    dl_export *x = (dl_export *)m;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_XDECREF(x->owner);
    PyGILState_Release(g);
    free(x);
}

/* A "dltensor" capsule nobody consumed is released by its own destructor. */
static void dl_capsule_free(PyObject *cap) {
    if (!PyCapsule_IsValid(cap, "dltensor")) return; /* consumed: "used_dltensor" */
    dl_managed *m = PyCapsule_GetPointer(cap, "dltensor");
    if (m && m->deleter) m->deleter(m);
}

/* devbuf_export(devbuf capsule) -> "dltensor" capsule over the buffer. */
static PyObject *py_devbuf_export(PyObject *self, PyObject *arg) {
    devbuf *b = PyCapsule_GetPointer(arg, DEVBUF_CAP);
    if (!b) return NULL;
    dl_export *x = calloc(1, sizeof *x);
    if (!x) return PyErr_NoMemory();
    if (!kiln_to_dl(b->dtype, &x->m.t.dtype)) {
        free(x);
        PyErr_SetString(PyExc_TypeError, "this dtype has no DLPack form");
        return NULL;
    }
    const char *dev = getenv("KILN_CUDA_DEVICE");
    x->m.t.data = b->ptr;
    x->m.t.device.type = DL_CUDA;
    x->m.t.device.id = dev ? atoi(dev) : 0;
    x->m.t.ndim = b->rank;
    for (int i = 0; i < b->rank; i++) x->shape[i] = b->dims[i];
    x->m.t.shape = x->shape;
    x->m.t.strides = NULL;
    x->m.manager_ctx = x;
    x->m.deleter = dl_export_delete;
    Py_INCREF(arg);
    x->owner = arg;
    PyObject *cap = PyCapsule_New(&x->m, "dltensor", dl_capsule_free);
    if (!cap) dl_export_delete(&x->m);
    return cap;
}

/* devbuf_info(devbuf) -> (shape, dtype, pointer as int) */
static PyObject *py_devbuf_info(PyObject *self, PyObject *arg) {
    devbuf *b = PyCapsule_GetPointer(arg, DEVBUF_CAP);
    if (!b) return NULL;
    return Py_BuildValue("(NiK)", tuple_from_dims(b->rank, b->dims), b->dtype,
                         (unsigned long long)(uintptr_t)b->ptr);
}

/* devbuf_to_host(devbuf) -> bytearray (a synchronous copy) */
static PyObject *py_devbuf_to_host(PyObject *self, PyObject *arg) {
    devbuf *b = PyCapsule_GetPointer(arg, DEVBUF_CAP);
    if (!b) return NULL;
    PyObject *buf = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)b->nbytes);
    if (!buf || !b->nbytes) return buf;
    kiln_status st = kiln_engine_copy_to_host(get_engine(b->engine), PyByteArray_AsString(buf),
                                              b->ptr, b->nbytes);
    if (st) {
        Py_DECREF(buf);
        return raise_status(st);
    }
    return buf;
}

/* Reads a "dltensor" capsule for input `name`: a compact CUDA tensor. */
static int dl_input(PyObject *cap, const char *name, int want_dtype, int want_dev,
                    dl_tensor **out) {
    dl_managed *m = PyCapsule_GetPointer(cap, "dltensor");
    if (!m) return -1;
    dl_tensor *t = &m->t;
    if (t->device.type != DL_CUDA) {
        PyErr_Format(PyExc_ValueError, "input '%s' is not CUDA device memory (DLPack device "
                     "type %d)", name, (int)t->device.type);
        return -1;
    }
    if (t->device.id != want_dev) {
        PyErr_Format(PyExc_ValueError, "input '%s' is on CUDA device %d; the engine runs on "
                     "device %d (KILN_CUDA_DEVICE)", name, (int)t->device.id, want_dev);
        return -1;
    }
    int k = dl_to_kiln(t->dtype);
    if (k != want_dtype) {
        PyErr_Format(PyExc_TypeError, "input '%s' has DLPack dtype (code %d, %d bits); the "
                     "engine takes %s", name, (int)t->dtype.code, (int)t->dtype.bits,
                     kiln_dtype_name((kiln_dtype)want_dtype));
        return -1;
    }
    if (t->ndim < 0 || t->ndim > KILN_MAX_RANK) {
        PyErr_Format(PyExc_ValueError, "input '%s': rank %d exceeds Kiln's limit of %d", name,
                     (int)t->ndim, KILN_MAX_RANK);
        return -1;
    }
    if (t->strides) {
        int64_t expect = 1;
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (t->shape[d] != 1 && t->strides[d] != expect) {
                PyErr_Format(PyExc_ValueError, "input '%s' is not contiguous (call "
                             ".contiguous() first)", name);
                return -1;
            }
            expect *= t->shape[d];
        }
    }
    *out = t;
    return 0;
}

/* context_run_device(ctx, inputs, outputs, stream) -> tuple of devbuf
** inputs: tuple of (name, dltensor capsule, kiln dtype); outputs: names.
** stream: a cudaStream_t as an int, or 0 for the context's own stream.
** With the context's stream the call waits for the run; with a caller's
** stream it returns once the run is queued (the caller keeps the inputs
** alive and orders later work on that stream). Outputs are new device
** buffers of the engine's device. */
static PyObject *py_context_run_device(PyObject *self, PyObject *args) {
    PyObject *cap, *inputs, *outputs;
    unsigned long long stream_i;
    if (!PyArg_ParseTuple(args, "OO!O!K", &cap, &PyTuple_Type, &inputs, &PyTuple_Type,
                          &outputs, &stream_i))
        return NULL;
    context_box *b = claim(cap);
    if (!b) return NULL;
    kiln_context *c = b->c;
    const kiln_engine *e = get_engine(b->engine);
    kiln_status st = KILN_OK;
    const char *devenv = getenv("KILN_CUDA_DEVICE");
    int want_dev = devenv ? atoi(devenv) : 0;
    Py_ssize_t ni = PyTuple_Size(inputs), no = PyTuple_Size(outputs);
    PyObject *result = PyTuple_New(no);
    if (!result) return NULL;
    for (Py_ssize_t i = 0; i < ni; i++) {
        PyObject *item = PyTuple_GetItem(inputs, i);
        if (!PyTuple_Check(item) || PyTuple_Size(item) != 3) {
            PyErr_SetString(PyExc_TypeError, "each input is (name, dltensor, dtype)");
            goto fail;
        }
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(item, 0), NULL);
        long want = PyLong_AsLong(PyTuple_GetItem(item, 2));
        dl_tensor *t;
        if (!name || (want == -1 && PyErr_Occurred()) ||
            dl_input(PyTuple_GetItem(item, 1), name, (int)want, want_dev, &t))
            goto fail;
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= (size_t)(t->shape[d] < 0 ? 0 : t->shape[d]);
        if ((st = kiln_context_set_input_shape(c, name, t->ndim, t->shape)) ||
            (st = kiln_context_set_device_tensor(c, name, (char *)t->data + t->byte_offset,
                                                 n * (size_t)((t->dtype.bits + 7) / 8)))) {
            raise_status(st);
            goto fail;
        }
    }
    int n_out = kiln_engine_num_outputs(e);
    for (int o = 0; o < n_out; o++) {
        kiln_io_info io;
        if ((st = kiln_engine_output(e, o, &io)) ||
            (st = kiln_context_set_tensor(c, io.name, NULL, 0))) {
            raise_status(st);
            goto fail;
        }
    }
    for (Py_ssize_t o = 0; o < no; o++) {
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(outputs, o), NULL);
        if (!name) goto fail;
        devbuf *d = calloc(1, sizeof *d);
        if (!d) {
            PyErr_NoMemory();
            goto fail;
        }
        PyObject *dcap = PyCapsule_New(d, DEVBUF_CAP, devbuf_free_cap);
        if (!dcap) {
            free(d);
            goto fail;
        }
        Py_INCREF(b->engine);
        d->engine = b->engine;
        PyTuple_SetItem(result, o, dcap);
        int k = -1;
        for (int q = 0; q < n_out && k < 0; q++) {
            kiln_io_info io;
            if (!kiln_engine_output(e, q, &io) && strcmp(io.name, name) == 0) {
                k = q;
                d->dtype = (int)io.dtype;
            }
        }
        if (k < 0) {
            PyErr_Format(PyExc_KeyError, "the engine has no output '%s'", name);
            goto fail;
        }
        if ((st = kiln_context_output_shape(c, name, &d->rank, d->dims))) {
            raise_status(st);
            goto fail;
        }
        size_t count = 1;
        for (int q = 0; q < d->rank; q++) {
            if (d->dims[q] < 0) {
                PyErr_Format(PyExc_ValueError, "output '%s' has a data-dependent shape; run "
                             "with host arrays to read it", name);
                goto fail;
            }
            count *= (size_t)d->dims[q];
        }
        d->nbytes = count * kiln_dtype_size((kiln_dtype)d->dtype);
        if ((st = kiln_engine_device_alloc(e, d->nbytes ? d->nbytes : 1, &d->ptr)) ||
            (st = kiln_context_set_device_tensor(c, name, d->ptr, d->nbytes))) {
            raise_status(st);
            goto fail;
        }
    }
    b->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    st = kiln_context_enqueue(c, (void *)(uintptr_t)stream_i);
    if (!st && !stream_i) st = kiln_context_synchronize(c);
    Py_END_ALLOW_THREADS
    b->busy = 0;
    if (st) {
        raise_status(st);
        goto fail;
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    /* Device bindings last only for the call: the next host run must not
    ** read or write the caller's tensors or freed outputs. */
    for (Py_ssize_t i = 0; i < ni; i++) {
        PyObject *item = PyTuple_GetItem(inputs, i);
        const char *name = PyTuple_Check(item) && PyTuple_Size(item) == 3
                               ? PyUnicode_AsUTF8AndSize(PyTuple_GetItem(item, 0), NULL)
                               : NULL;
        if (name) kiln_context_set_tensor(c, name, NULL, 0);
    }
    for (Py_ssize_t o = 0; o < no; o++) {
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(outputs, o), NULL);
        if (name) kiln_context_set_tensor(c, name, NULL, 0);
    }
    return result;
}

static PyObject *py_engine_backend(PyObject *self, PyObject *arg) {
    kiln_engine *e = get_engine(arg);
    return e ? PyUnicode_FromString(kiln_engine_backend(e)) : NULL;
}

/* context_stream(ctx) -> the context's own cudaStream_t as an int (0 on
** the CPU). */
static PyObject *py_context_stream(PyObject *self, PyObject *arg) {
    context_box *b = get_context(arg);
    return b ? PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)kiln_context_stream(b->c))
             : NULL;
}

/* ----------------------------------------------------------- reference */
/* tensor_load_pb(path) -> (name, bytearray, shape, dtype): reads the ONNX
** test data format without needing the onnx package. */
static PyObject *py_tensor_load_pb(PyObject *self, PyObject *args) {
    const char *path, *name = NULL;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    kiln_tensor *t = NULL;
    kiln_status st = kiln_tensor_load_pb(path, &t, &name);
    if (st) return raise_status(st);
    PyObject *r = Py_BuildValue("(zNNi)", name,
                                PyByteArray_FromStringAndSize(kiln_tensor_cdata(t),
                                                              (Py_ssize_t)kiln_tensor_nbytes(t)),
                                tuple_from_dims(kiln_tensor_rank(t), kiln_tensor_dims(t)),
                                (int)kiln_tensor_dtype(t));
    kiln_tensor_destroy(t);
    return r;
}

static PyMethodDef methods[] = {
    {"_set_error_classes", set_error_classes, METH_O, "Install the KilnError classes."},
    {"context_run_device", py_context_run_device, METH_VARARGS, NULL},
    {"engine_backend", py_engine_backend, METH_O, NULL},
    {"context_stream", py_context_stream, METH_O, NULL},
    {"devbuf_export", py_devbuf_export, METH_O, NULL},
    {"devbuf_info", py_devbuf_info, METH_O, NULL},
    {"devbuf_to_host", py_devbuf_to_host, METH_O, NULL},
    {"version", py_version, METH_NOARGS, "Library version string."},
    {"status_name", py_status_name, METH_VARARGS, "Name of a kiln_status value."},
    {"set_num_threads", py_set_num_threads, METH_VARARGS, "Threads per execution (0: all cores)."},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "Threads per execution."},
    {"model_load", py_model_load, METH_VARARGS, NULL},
    {"model_load_memory", py_model_load_memory, METH_VARARGS, NULL},
    {"model_io", py_model_io, METH_VARARGS, NULL},
    {"build", py_build, METH_VARARGS, NULL},
    {"engine_load_file", py_engine_load_file, METH_VARARGS, NULL},
    {"engine_load_memory", py_engine_load_memory, METH_VARARGS, NULL},
    {"engine_save_blob", py_engine_save_blob, METH_VARARGS, NULL},
    {"engine_io", py_engine_io, METH_VARARGS, NULL},
    {"engine_num_profiles", py_engine_num_profiles, METH_VARARGS, NULL},
    {"engine_profile_shape", py_engine_profile_shape, METH_VARARGS, NULL},
    {"engine_activation_bytes", py_engine_activation_bytes, METH_VARARGS, NULL},
    {"engine_layers", py_engine_layers, METH_VARARGS, NULL},
    {"engine_describe_json", py_engine_describe_json, METH_VARARGS, NULL},
    {"context_create", py_context_create, METH_VARARGS, NULL},
    {"context_set_profile", py_context_set_profile, METH_VARARGS, NULL},
    {"context_set_profiling", py_context_set_profiling, METH_VARARGS, NULL},
    {"context_layer_times", py_context_layer_times, METH_VARARGS, NULL},
    {"context_run", py_context_run, METH_VARARGS, NULL},
    {"tensor_load_pb", py_tensor_load_pb, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kiln",
    "Low-level bindings of include/kiln.h; use the kiln package instead.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kiln(void) { return PyModule_Create(&module); }
