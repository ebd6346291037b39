/* tapead._fast: the hot paths, written against CPython's C API.
 *
 * 1. Var's number protocol. Each arithmetic operation on a Var is one direct call into the
 *    tape's recorder (no cffi call, GIL held: no other thread interleaves), and a Var holds no
 *    Python references but its Tape, so it is not tracked by the cyclic GC.
 * 2. Replays of small tapes (gradient, forward) without cffi's per-argument conversions.
 * 3. The objects of a recording: Recording (the C tape and its input/output structure) and
 *    TapeBase (Tape's fields and its gradient method), the base classes of tapead.tape's
 *    _Recording and Tape, and record(): ad.record for the common case (scalar arguments, or
 *    one vector) in one call: tape, inputs, Vars, f, outputs, close.
 *
 * Var is a heap type (PyType_FromSpec) so that tapead/var.py can add its Python-level methods
 * (grad, backward, NumPy hooks). The recorder functions live in the cffi module
 * (tapead._tapead); tapead/var.py hands their typed table (core_api.h) and the error hooks to
 * setup().
 *
 * One compilation unit in parts, included in order: fast_var.h (Var's arithmetic),
 * fast_compare.h (comparisons, Cond), fast_array.h (ad.Array's
 * indexing and block recording), this file (Var's attributes, setup), fast_replay.h (small
 * replays), fast_recording.h (the recording object), fast_tape.h (TapeBase, record), then the
 * module's functions and init below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <string.h>
#include "tape_impl.h"
#include "core_api.h"

typedef struct {
    PyObject_HEAD
    PyObject *rec;           /* its recording (tapead.tape._Recording: owns the C tape) */
    tp_tape *p;
    int32_t index;
} VarObject;

static const tp_core_api *C;      /* the core's functions (core_api.h), from setup() */

static struct {
    PyTypeObject *var_type;  /* tapead.Var, made at module init */
    PyTypeObject *cond_type; /* tapead.Cond: a comparison's outcome while recording */
    PyTypeObject *rec_base;  /* tapead._fast.Recording, made at module init */
    PyTypeObject *tape_base; /* tapead._fast.TapeBase, made at module init */
    PyTypeObject *rec_type;  /* tapead.tape._Recording (a Recording), set by set_types */
    PyTypeObject *tape_type; /* tapead.Tape (a TapeBase), set by set_types */
    PyTypeObject *array_base; /* tapead._fast.ArrayBase, made at module init */
    PyTypeObject *array_type; /* tapead.Array (an ArrayBase), set by array_type */
    PyObject *np_empty;      /* numpy.empty */
    PyObject *object_dtype;  /* numpy.dtype(object) */
    PyTypeObject *ndarray;   /* numpy.ndarray */
    PyTypeObject *float64;   /* numpy.float64 (a float subclass) */
    PyObject *own;           /* own(address): the cffi pointer that frees the tape (`_p`) */
    PyObject *record_general; /* tapead.tape._record: ad.record's general path */
    PyObject *s_set_outputs, *s_gradient, *s_after_flip, *s_branch_changed, *s_batched;
    PyObject *s_shape_x;
    PyObject *fail;          /* fail(status): raises the exception of a C status */
    PyObject *number;        /* number(obj): float for a real number, None otherwise */
    PyObject *mixed;         /* mixed(): raises TapeError for operands of two tapes */
    PyObject *on_guard;      /* on_guard(recording, index): notes where a Cond became a guard */
    PyObject *on_value;      /* on_value(recording, index): .value read while recording */
} R;

/* comparison opcodes in Py_LT .. Py_GE order */
static const int op_cmp[6] = {TP_OP_LT, TP_OP_LE, TP_OP_EQ, TP_OP_NE, TP_OP_GT, TP_OP_GE};

#define IS_VAR(o) (Py_TYPE(o) == R.var_type)

/* The recording object (tapead.tape._Recording): the C tape, and the input and output structure
 * that tapead/tape.py reads and writes as attributes. The lists a small recording rarely needs
 * (pieces, sizes, guards, sites) are made on first use; `_p`, the cffi pointer of the C tape, is
 * made on first use too and then owns the tape (ffi.gc), else the recording frees it. */
typedef struct {
    PyObject_HEAD
    tp_tape *p;
    PyObject *p_obj;         /* `_p`, or NULL */
    PyObject *tape;          /* weak reference to its Tape */
    PyObject *pieces, *sizes, *out_shape, *grads, *guards, *sites, *colouring, *sparse;
    Py_ssize_t m, n_out;
    int fast;                /* 1: one vector input, 2: one scalar, 3: k >= 2 scalars */
    int lazy;                /* pieces and sizes not made yet: they follow from fast and m */
    PyObject *weaklist;
} RecObject;

#define IS_REC(o) (R.rec_base && PyObject_TypeCheck(o, R.rec_base))

/* The C tape of a recording object (never a raw address from Python), or NULL with TypeError. */
static tp_tape *tape_of(PyObject *rec)
{
    if (!IS_REC(rec)) {
        PyErr_SetString(PyExc_TypeError, "expected a tapead recording");
        return NULL;
    }
    return ((RecObject *)rec)->p;
}

static PyObject *status_error(int rc);

/* 0, or -1 with TapeError: a thread other than the recording one reads an open tape */
static int readable(const tp_tape *t)
{
    if (tp_may_read(t)) return 0;
    status_error(TP_ETHREAD);
    return -1;
}

#include "fast_var.h"
#include "fast_compare.h"
#include "fast_array.h"

/* .value while the tape records in this thread: the number, and an equality guard on it (a
 * replay elsewhere re-records or raises BranchChanged instead of reusing a stale constant). */
static PyObject *get_value(VarObject *self, void *c)
{
    (void)c;
    if (readable(self->p) < 0) return NULL;
    if (!C->closed(self->p)) {                  /* on_value records the guards (tp_guard_value) */
        PyObject *r = PyObject_CallFunction(R.on_value, "Oi", self->rec, (int)self->index);
        if (!r) return NULL;
        Py_DECREF(r);
    }
    return PyFloat_FromDouble(C->value(self->p, self->index));
}

/* the value without a guard: repr, format and tapead's own code */
static PyObject *get_peek(VarObject *self, void *c)
{
    (void)c;
    if (readable(self->p) < 0) return NULL;
    return PyFloat_FromDouble(C->value(self->p, self->index));
}

static PyObject *get_rec(VarObject *self, void *c)
{
    (void)c;
    Py_INCREF(self->rec);
    return self->rec;
}

static PyMemberDef var_members[] = {
    {"index", T_INT, offsetof(VarObject, index), READONLY,
     "position of the variable on its tape (inputs first)"},
    {NULL}
};

static PyGetSetDef var_getset[] = {
    {"value", (getter)get_value, NULL, "primal value at recording (while recording, reading it "
     "records a branch guard on it)", NULL},
    {"_value", (getter)get_peek, NULL, "primal value at recording, no guard", NULL},
    {"_rec", (getter)get_rec, NULL, "the recording this variable belongs to", NULL},
    {NULL}
};

static PyObject *var_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type; (void)args; (void)kwds;
    PyErr_SetString(PyExc_TypeError, "a tapead.Var is made by a tape (t.variables, or operations "
                                     "on Vars), not by calling Var()");
    return NULL;
}

static PyType_Slot var_slots[] = {
    {Py_tp_new, var_new},
    {Py_tp_dealloc, var_dealloc}, {Py_tp_hash, var_hash}, {Py_tp_richcompare, richcompare},
    {Py_tp_members, var_members}, {Py_tp_getset, var_getset},
    {Py_nb_add, nb_add}, {Py_nb_subtract, nb_sub}, {Py_nb_multiply, nb_mul},
    {Py_nb_true_divide, nb_div}, {Py_nb_power, nb_pow}, {Py_nb_negative, nb_neg},
    {Py_nb_positive, nb_pos}, {Py_nb_absolute, nb_abs}, {Py_nb_bool, nb_bool},
    {Py_tp_doc, "An active scalar: a variable of a tape. Created by a tape, never by the user."},
    {0, NULL}
};

static PyType_Spec var_spec = {
    "tapead.Var", sizeof(VarObject), 0, Py_TPFLAGS_DEFAULT, var_slots,
};

/* ---- module functions ---------------------------------------------------------------------- */

/* setup(fail, number, mixed, on_guard, on_value, api): api is the address tp_api() returns, the
 * core's functions as the typed table of core_api.h */
static PyObject *setup(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *fail, *number, *mixed, *on_guard, *on_value, *api;
    if (!PyArg_ParseTuple(args, "OOOOOO", &fail, &number, &mixed, &on_guard, &on_value, &api))
        return NULL;
    const tp_core_api *c = PyLong_AsVoidPtr(api);
    if (!c) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "setup needs the core's table");
        return NULL;
    }
    C = c;
    Py_INCREF(on_guard); Py_XDECREF(R.on_guard); R.on_guard = on_guard;
    Py_INCREF(on_value); Py_XDECREF(R.on_value); R.on_value = on_value;
    Py_INCREF(fail); Py_INCREF(number); Py_INCREF(mixed);
    Py_XDECREF(R.fail); Py_XDECREF(R.number); Py_XDECREF(R.mixed);
    R.fail = fail; R.number = number; R.mixed = mixed;
    Py_RETURN_NONE;
}

/* new(recording, index): the Var of an existing variable */
static PyObject *new_var(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *rec;
    long long index;
    if (!PyArg_ParseTuple(args, "OL", &rec, &index)) return NULL;
    tp_tape *t = tape_of(rec);
    if (!t) return NULL;
    if (index < 0 || index >= tp_nvars(t)) {
        PyErr_SetString(PyExc_ValueError, "no such variable on this tape");
        return NULL;
    }
    return make(rec, t, (int32_t)index);
}

/* vars(recording, first, n): a list of the Vars first .. first+n-1 (inputs) */
static PyObject *vars_range(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *rec;
    Py_ssize_t first, n;
    if (!PyArg_ParseTuple(args, "Onn", &rec, &first, &n)) return NULL;
    tp_tape *t = tape_of(rec);
    if (!t) return NULL;
    if (first < 0 || n < 0 || first + n > tp_nvars(t)) {
        PyErr_SetString(PyExc_ValueError, "variable range out of bounds");
        return NULL;
    }
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = make(rec, t, (int32_t)(first + i));
        if (!v) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

/* rec1(op, x) and rec2(op, x, y): elementary functions (at least one operand a Var) */
static PyObject *py_rec1(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    if (n != 2 || !IS_VAR(args[1])) {
        PyErr_SetString(PyExc_TypeError, "rec1(op, var)");
        return NULL;
    }
    int op = PyLong_AsLong(args[0]);
    if (op == -1 && PyErr_Occurred()) return NULL;
    return unary(op, args[1]);
}

static PyObject *py_rec2(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    if (n != 3 || !(IS_VAR(args[1]) || IS_VAR(args[2]))) {
        PyErr_SetString(PyExc_TypeError, "rec2(op, x, y) with a Var operand");
        return NULL;
    }
    int op = PyLong_AsLong(args[0]);
    if (op == -1 && PyErr_Occurred()) return NULL;
    return binary(op, args[1], args[2]);
}

#include "fast_replay.h"
#include "fast_recording.h"
#include "fast_tape.h"

/* set_types(recording, tape, numpy.empty, numpy.dtype(object), numpy.ndarray, numpy.float64,
 * own, record_general): the Python classes made on Recording and TapeBase, and what record()
 * needs */
static PyObject *set_types(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *rec, *tape, *empty, *dtype, *nd, *f64, *own, *general;
    if (!PyArg_ParseTuple(args, "O!O!OOO!O!OO", &PyType_Type, &rec, &PyType_Type, &tape, &empty,
                          &dtype, &PyType_Type, &nd, &PyType_Type, &f64, &own, &general))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)rec, R.rec_base) ||
        !PyType_IsSubtype((PyTypeObject *)tape, R.tape_base) ||
        !PyType_IsSubtype((PyTypeObject *)f64, &PyFloat_Type)) {
        PyErr_SetString(PyExc_TypeError, "set_types: a Recording, a TapeBase, ..., a float type");
        return NULL;
    }
#define KEEP(field, obj, T) do { Py_INCREF(obj); Py_XSETREF(R.field, (T)(obj)); } while (0)
    KEEP(rec_type, rec, PyTypeObject *); KEEP(tape_type, tape, PyTypeObject *);
    KEEP(np_empty, empty, PyObject *); KEEP(object_dtype, dtype, PyObject *);
    KEEP(ndarray, nd, PyTypeObject *); KEEP(float64, f64, PyTypeObject *);
    KEEP(own, own, PyObject *); KEEP(record_general, general, PyObject *);
#undef KEEP
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS, "wire the recorder functions and hooks"},
    {"new", new_var, METH_VARARGS, "new(recording, index) -> Var"},
    {"vars", vars_range, METH_VARARGS, "vars(recording, first, n) -> list of Var"},
    {"set_types", set_types, METH_VARARGS,
     "set_types(recording, tape, empty, object_dtype, ndarray, float64, own, record_general)"},
    {"array_type", py_array_type, METH_O, "array_type(Array): the ad.Array class on ArrayBase"},
    {"current", py_current, METH_NOARGS, "the recording this thread is making, or None"},
    {"set_current", py_set_current, METH_O, "set_current(recording or None)"},
    {"record", (PyCFunction)(void (*)(void))py_record, METH_FASTCALL | METH_KEYWORDS,
     "record(f, *args, optimize=False)\n--\n\n"
     "Call f once on Vars initialised to args (a Var per scalar argument, an ad.Array per "
     "array argument; arrays=False: an object ndarray of Var) and return the closed Tape with f's result as outputs. A replay "
     "where one of f's comparisons comes out differently records f again at that point. "
     "optimize=True: the tape optimised (Tape.optimize), and so is every re-recording."},
    {"record_into", (PyCFunction)(void (*)(void))py_record_into, METH_FASTCALL,
     "record_into(f, args, tape) -> the new recording of tape, or NotImplemented"},
    {"shape", (PyCFunction)(void (*)(void))py_shape, METH_FASTCALL,
     "shape(recording, dims, strides) -> the id of the shape in the tape's table"},
    {"rec_block", (PyCFunction)(void (*)(void))py_rec_block, METH_FASTCALL,
     "rec_block(recording, op, attr, shape, blocks, array) -> the Array (Var) of one block op"},
    {"matmul", (PyCFunction)(void (*)(void))py_matmul, METH_FASTCALL,
     "matmul(recording, first, shape, first, shape) -> a @ b of two blocks, one MATMUL"},
    {"reduce", (PyCFunction)(void (*)(void))py_reduce, METH_FASTCALL,
     "reduce(op, array, axis, keepdims) -> one REDUCE (AMAX, ...), or NotImplemented"},
    {"strided", (PyCFunction)(void (*)(void))py_strided, METH_FASTCALL,
     "strided(recording, first, shape, strides) -> a Var, the block, or one PACK"},
    {"rec1", (PyCFunction)(void (*)(void))py_rec1, METH_FASTCALL, "rec1(op, x) -> Var"},
    {"rec2", (PyCFunction)(void (*)(void))py_rec2, METH_FASTCALL, "rec2(op, x, y) -> Var"},
    {"grad", (PyCFunction)(void (*)(void))py_grad, METH_FASTCALL,
     "grad(recording, scalar, x, out) -> None, or NotImplemented for an x it does not take"},
    {"forward", (PyCFunction)(void (*)(void))py_forward, METH_FASTCALL,
     "forward(recording, scalar, x, out) -> None, or NotImplemented"},
    {"vjp1", (PyCFunction)(void (*)(void))py_vjp1, METH_FASTCALL,
     "vjp1(recording, x, w) -> (y, x_bar) for x in array pieces and a float w, or NotImplemented"},
    {NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tapead._fast", "hot paths: Var's number protocol, small replays, record",
    -1, module_methods, NULL, NULL, NULL, NULL,
};

static int add_type(PyObject *m, const char *name, PyType_Spec *spec, PyTypeObject **slot)
{
    *slot = (PyTypeObject *)PyType_FromSpec(spec);
    if (!*slot) return -1;
    Py_INCREF(*slot);
    if (PyModule_AddObject(m, name, (PyObject *)*slot) < 0) {
        Py_DECREF(*slot);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__fast(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    if (add_type(m, "Var", &var_spec, &R.var_type) < 0 ||
        add_type(m, "Cond", &cond_spec, &R.cond_type) < 0 ||
        add_type(m, "Recording", &rec_spec, &R.rec_base) < 0 ||
        add_type(m, "TapeBase", &tape_spec, &R.tape_base) < 0 ||
        add_type(m, "ArrayBase", &array_spec, &R.array_base) < 0 ||
        add_type(m, "ArrayIterator", &array_iter_spec, &array_iter_type) < 0 ||
        !(R.s_set_outputs = PyUnicode_InternFromString("set_outputs")) ||
        !(R.s_gradient = PyUnicode_InternFromString("_gradient")) ||
        !(R.s_after_flip = PyUnicode_InternFromString("_after_flip")) ||
        !(R.s_branch_changed = PyUnicode_InternFromString("branch_changed")) ||
        !(R.s_batched = PyUnicode_InternFromString("_gradient_batch")) ||
        !(R.s_shape_x = PyUnicode_InternFromString("shape_x"))) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
