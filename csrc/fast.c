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
 * (tapead._tapead); tapead/var.py hands their addresses and the error hooks to setup().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <string.h>
#include "tape_impl.h"

typedef struct {
    PyObject_HEAD
    PyObject *rec;           /* its recording (tapead.tape._Recording: owns the C tape) */
    tp_tape *p;
    int32_t index;
} VarObject;

static struct {
    int32_t (*rec1)(tp_tape *, int, int32_t);
    int32_t (*rec2)(tp_tape *, int, int32_t, int32_t);
    int32_t (*rec2vc)(tp_tape *, int, int32_t, double);
    int32_t (*rec2cv)(tp_tape *, int, double, int32_t);
    double (*value)(const tp_tape *, int64_t);
    int32_t (*rec3)(tp_tape *, int, int32_t, int32_t, int32_t);
    int (*konst)(tp_tape *, double, int32_t *);
    int (*forward)(tp_tape *, const double *, double *);
    int (*vjp)(tp_tape *, const double *, int64_t, const double *, double *, double *);
    int64_t (*n_ops)(const tp_tape *);
    int (*guard)(tp_tape *, int64_t, int);
    int (*closed)(const tp_tape *);
    tp_tape *(*tape_new)(void);
    void (*tape_free)(tp_tape *);
    int (*claim)(tp_tape *);
    void (*close)(tp_tape *);
    int64_t (*add_inputs)(tp_tape *, const double *, int64_t);
    int (*set_outputs)(tp_tape *, const int32_t *, int64_t);
    PyTypeObject *var_type;  /* tapead.Var, made at module init */
    PyTypeObject *cond_type; /* tapead.Cond: a comparison's outcome while recording */
    PyTypeObject *rec_base;  /* tapead._fast.Recording, made at module init */
    PyTypeObject *tape_base; /* tapead._fast.TapeBase, made at module init */
    PyTypeObject *rec_type;  /* tapead.tape._Recording (a Recording), set by set_types */
    PyTypeObject *tape_type; /* tapead.Tape (a TapeBase), set by set_types */
    PyObject *np_empty;      /* numpy.empty */
    PyObject *object_dtype;  /* numpy.dtype(object) */
    PyTypeObject *ndarray;   /* numpy.ndarray */
    PyTypeObject *float64;   /* numpy.float64 (a float subclass) */
    PyObject *own;           /* own(address): the cffi pointer that frees the tape (`_p`) */
    PyObject *record_general; /* tapead.tape._record: ad.record's general path */
    PyObject *s_set_outputs, *s_gradient, *s_after_flip, *s_branch_changed;
    PyObject *fail;          /* fail(status): raises the exception of a C status */
    PyObject *number;        /* number(obj): float for a real number, None otherwise */
    PyObject *mixed;         /* mixed(): raises TapeError for operands of two tapes */
    PyObject *on_guard;      /* on_guard(recording, index): notes where a Cond became a guard */
    PyObject *on_value;      /* on_value(recording, index): .value read while recording */
    int op_cmp[6];           /* TP_OP_LT .. TP_OP_NE in Py_LT .. Py_GE order */
    int op_add, op_sub, op_mul, op_div, op_pow, op_neg, op_abs, op_square, op_sqrt;
} R;

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
    PyObject *pieces, *sizes, *out_shape, *grads, *guards, *sites, *colouring;
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

static PyObject *make(PyObject *rec, tp_tape *p, int32_t i)
{
    if (i < 0) {
        PyObject *r = PyObject_CallFunction(R.fail, "i", (int)i);
        Py_XDECREF(r);
        return NULL;
    }
    VarObject *v = PyObject_New(VarObject, R.var_type);
    if (!v) return NULL;
    Py_INCREF(rec);
    v->rec = rec; v->p = p; v->index = i;
    return (PyObject *)v;
}

static void var_dealloc(VarObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_XDECREF(self->rec);
    PyObject_Free(self);
    Py_DECREF(tp);                      /* instances of a heap type own a reference to it */
}

static Py_hash_t var_hash(PyObject *self)   /* identity, as torch.Tensor; == compares values */
{
    Py_hash_t h = (Py_hash_t)((uintptr_t)self >> 4);
    return h == -1 ? -2 : h;
}

/* A plain real number as a double: 1 when o is one, 0 when it is not a number, -1 on error. */
static int as_number(PyObject *o, double *c)
{
    if (PyFloat_Check(o)) { *c = PyFloat_AS_DOUBLE(o); return 1; }
    if (PyLong_Check(o)) {
        *c = PyLong_AsDouble(o);
        return (*c == -1.0 && PyErr_Occurred()) ? -1 : 1;
    }
    PyObject *r = PyObject_CallOneArg(R.number, o);
    if (!r) return -1;
    int ok = r != Py_None;
    if (ok) *c = PyFloat_AsDouble(r);
    Py_DECREF(r);
    return ok;
}

static PyObject *mixed_tapes(void)
{
    PyObject *r = PyObject_CallNoArgs(R.mixed);
    Py_XDECREF(r);
    return NULL;
}

/* Record op(a, b) where at least one of a, b is a Var. */
static PyObject *binary(int op, PyObject *a, PyObject *b)
{
    double c;
    int k;
    if (IS_VAR(a)) {
        VarObject *x = (VarObject *)a;
        if (IS_VAR(b)) {
            VarObject *y = (VarObject *)b;
            if (x->p != y->p) return mixed_tapes();
            return make(x->rec, x->p, R.rec2(x->p, op, x->index, y->index));
        }
        if ((k = as_number(b, &c)) <= 0) {
            if (k < 0) return NULL;
            Py_RETURN_NOTIMPLEMENTED;
        }
        return make(x->rec, x->p, R.rec2vc(x->p, op, x->index, c));
    }
    VarObject *y = (VarObject *)b;
    if ((k = as_number(a, &c)) <= 0) {
        if (k < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    return make(y->rec, y->p, R.rec2cv(y->p, op, c, y->index));
}

static PyObject *nb_add(PyObject *a, PyObject *b) { return binary(R.op_add, a, b); }
static PyObject *nb_sub(PyObject *a, PyObject *b) { return binary(R.op_sub, a, b); }
static PyObject *nb_mul(PyObject *a, PyObject *b) { return binary(R.op_mul, a, b); }
static PyObject *nb_div(PyObject *a, PyObject *b) { return binary(R.op_div, a, b); }

static PyObject *unary(int op, PyObject *a)
{
    VarObject *x = (VarObject *)a;
    return make(x->rec, x->p, R.rec1(x->p, op, x->index));
}

static PyObject *nb_neg(PyObject *a) { return unary(R.op_neg, a); }
static PyObject *nb_abs(PyObject *a) { return unary(R.op_abs, a); }
static PyObject *nb_pos(PyObject *a) { Py_INCREF(a); return a; }

/* x ** 2 records SQUARE (the same values, bit for bit, and a cheaper sweep); other powers POW. */
static PyObject *nb_pow(PyObject *a, PyObject *b, PyObject *mod)
{
    if (mod != Py_None) {
        PyErr_SetString(PyExc_TypeError, "pow() with a modulus is not differentiable");
        return NULL;
    }
    double c;
    if (IS_VAR(a) && !IS_VAR(b)) {
        int k = as_number(b, &c);
        if (k <= 0) {
            if (k < 0) return NULL;
            Py_RETURN_NOTIMPLEMENTED;
        }
        if (c == 2.0) return unary(R.op_square, a);
    }
    return binary(R.op_pow, a, b);
}


/* ---- comparisons: conditions ---------------------------------------------------------------
 * A comparison while the tape records (in this thread) is recorded as an unchecked comparison
 * operation and returns a Cond: a bool-like object holding the outcome and the comparison's
 * variable. Taking its truth value (if, while, and/or/not, bool(), int(), arithmetic) makes the
 * comparison a branch guard that every replay checks; ad.where takes the Cond itself as its
 * condition and never guards it. On a closed tape, comparisons are plain bools. */
typedef struct {
    PyObject_HEAD
    PyObject *rec;           /* the recording of the comparison */
    tp_tape *p;
    int32_t index;           /* the comparison's variable */
    char outcome, guarded;
} CondObject;

#define IS_COND(o) (Py_TYPE(o) == R.cond_type)

static int operand_code(tp_tape *p, PyObject *o, double v, int32_t *code)
{
    if (IS_VAR(o)) { *code = ((VarObject *)o)->index; return TP_OK; }
    return R.konst(p, v, code);
}

/* Note where the user's code made guard gi (on_guard reads the calling frame). */
static int note_guard(PyObject *rec, int32_t gi)
{
    PyObject *r = PyObject_CallFunction(R.on_guard, "Oi", rec, (int)gi);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

/* An int that float64 cannot hold (beyond 2**53): the doubles just below and above it. 1 when
 * o is such an int (then *lo < o < *hi), 0 when c == o exactly, -1 on error. */
static int inexact_int(PyObject *o, double c, double *lo, double *hi)
{
    PyObject *f = PyFloat_FromDouble(c);
    if (!f) return -1;
    int eq = PyObject_RichCompareBool(o, f, Py_EQ), gt = eq ? 0 : PyObject_RichCompareBool(o, f, Py_GT);
    Py_DECREF(f);
    if (eq < 0 || gt < 0) return -1;
    if (eq) return 0;
    *lo = gt ? c : nextafter(c, -INFINITY);
    *hi = gt ? nextafter(c, INFINITY) : c;
    return 1;
}

static PyObject *richcompare(PyObject *a, PyObject *b, int cmp)
{
    double va, vb;
    int k;
    if (IS_VAR(a) && IS_VAR(b) && ((VarObject *)a)->p != ((VarObject *)b)->p) return mixed_tapes();
    VarObject *v = (VarObject *)(IS_VAR(a) ? a : b);
    if (readable(v->p) < 0) return NULL;
    if (IS_VAR(a)) va = R.value(v->p, ((VarObject *)a)->index);
    else if ((k = as_number(a, &va)) <= 0) {
        if (k < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (IS_VAR(b)) vb = R.value(v->p, ((VarObject *)b)->index);
    else if ((k = as_number(b, &vb)) <= 0) {
        if (k < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    double lo, hi;                                /* Python compares ints exactly: so do we */
    if (!IS_VAR(b) && PyLong_Check(b) && (k = inexact_int(b, vb, &lo, &hi)) != 0) {
        if (k < 0) return NULL;
        switch (cmp) {                           /* a is the Var (Python reflects for us) */
        case Py_LT: case Py_LE: cmp = Py_LE; vb = lo; break;
        case Py_GT: case Py_GE: cmp = Py_GE; vb = hi; break;
        default: vb = NAN;                       /* == never holds, != always does */
        }
    }
    int outcome;
    switch (cmp) {
    case Py_LT: outcome = va < vb; break;
    case Py_LE: outcome = va <= vb; break;
    case Py_EQ: outcome = va == vb; break;
    case Py_NE: outcome = va != vb; break;
    case Py_GT: outcome = va > vb; break;
    default:    outcome = va >= vb; break;
    }
    int32_t ca, cb, cw, gi = 0;
    int rc = operand_code(v->p, a, va, &ca);
    if (rc >= 0) rc = operand_code(v->p, b, vb, &cb);
    if (rc >= 0) rc = R.konst(v->p, NAN, &cw);                 /* outcome NaN: not checked */
    if (rc >= 0) rc = gi = R.rec3(v->p, R.op_cmp[cmp], ca, cb, cw);
    if (rc == TP_ECLOSED) return PyBool_FromLong(outcome);     /* recording is over: plain */
    if (rc < 0) return status_error(rc);
    CondObject *c = PyObject_New(CondObject, R.cond_type);
    if (!c) return NULL;
    Py_INCREF(v->rec);
    c->rec = v->rec; c->p = v->p; c->index = gi; c->outcome = (char)outcome; c->guarded = 0;
    return (PyObject *)c;
}

/* The truth value of a condition: from now on a branch guard of its tape. */
static int cond_bool(CondObject *c)
{
    if (!c->guarded) {
        int rc = R.guard(c->p, c->index, c->outcome);
        if (rc == TP_ECLOSED) return c->outcome;               /* taken after the recording */
        if (rc < 0) { status_error(rc); return -1; }
        c->guarded = 1;
        if (note_guard(c->rec, c->index) < 0) return -1;
    }
    return c->outcome;
}

static int nb_bool(VarObject *self)
{
    PyObject *zero = PyFloat_FromDouble(0.0);
    if (!zero) return -1;
    PyObject *r = richcompare((PyObject *)self, zero, Py_NE);
    Py_DECREF(zero);
    if (!r) return -1;
    int t = IS_COND(r) ? cond_bool((CondObject *)r) : r == Py_True;
    Py_DECREF(r);
    return t;
}

static void cond_dealloc(CondObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_XDECREF(self->rec);
    PyObject_Free(self);
    Py_DECREF(tp);
}

/* A condition used as a number or compared: its truth value (a guard), then bool's behaviour. */
static PyObject *as_bool(PyObject *o)
{
    if (!IS_COND(o)) { Py_INCREF(o); return o; }
    int t = cond_bool((CondObject *)o);
    return t < 0 ? NULL : PyBool_FromLong(t);
}

#define COND_BINARY(NAME, CALL) \
static PyObject *NAME(PyObject *a, PyObject *b) \
{ \
    PyObject *x = as_bool(a), *y = x ? as_bool(b) : NULL, *r = y ? CALL(x, y) : NULL; \
    Py_XDECREF(x); Py_XDECREF(y); \
    return r; \
}
COND_BINARY(cond_add, PyNumber_Add)
COND_BINARY(cond_sub, PyNumber_Subtract)
COND_BINARY(cond_mul, PyNumber_Multiply)
COND_BINARY(cond_div, PyNumber_TrueDivide)
COND_BINARY(cond_floordiv, PyNumber_FloorDivide)
COND_BINARY(cond_mod, PyNumber_Remainder)
COND_BINARY(cond_and, PyNumber_And)
COND_BINARY(cond_or, PyNumber_Or)
COND_BINARY(cond_xor, PyNumber_Xor)

#define COND_UNARY(NAME, CALL) \
static PyObject *NAME(PyObject *a) \
{ \
    PyObject *x = as_bool(a), *r = x ? CALL(x) : NULL; \
    Py_XDECREF(x); \
    return r; \
}
COND_UNARY(cond_neg, PyNumber_Negative)
COND_UNARY(cond_pos, PyNumber_Positive)
COND_UNARY(cond_abs, PyNumber_Absolute)
COND_UNARY(cond_invert, PyNumber_Invert)
COND_UNARY(cond_int, PyNumber_Long)
COND_UNARY(cond_float, PyNumber_Float)

static PyObject *cond_pow(PyObject *a, PyObject *b, PyObject *mod)
{
    PyObject *x = as_bool(a), *y = x ? as_bool(b) : NULL, *r = y ? PyNumber_Power(x, y, mod) : NULL;
    Py_XDECREF(x); Py_XDECREF(y);
    return r;
}

static PyObject *cond_richcompare(PyObject *a, PyObject *b, int op)
{
    PyObject *x = as_bool(a), *y = x ? as_bool(b) : NULL, *r = y ? PyObject_RichCompare(x, y, op) : NULL;
    Py_XDECREF(x); Py_XDECREF(y);
    return r;
}

static Py_hash_t cond_hash(CondObject *self)
{
    int t = cond_bool(self);
    return t < 0 ? -1 : t;                       /* hash(True) == 1, hash(False) == 0 */
}

static PyObject *cond_str(CondObject *self)       /* "True" / "False", as a bool prints */
{
    PyObject *b = as_bool((PyObject *)self), *r = b ? PyObject_Str(b) : NULL;
    Py_XDECREF(b);
    return r;
}

static PyObject *cond_repr(CondObject *self)
{
    return PyUnicode_FromFormat("Cond(%s, index=%d)", self->outcome ? "True" : "False",
                                (int)self->index);
}

static PyObject *cond_get_rec(CondObject *self, void *c)
{
    (void)c;
    Py_INCREF(self->rec);
    return self->rec;
}

static PyObject *cond_get_guarded(CondObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->guarded);
}

static PyMemberDef cond_members[] = {
    {"index", T_INT, offsetof(CondObject, index), READONLY,
     "position of the comparison's variable on its tape"},
    {NULL}
};

static PyGetSetDef cond_getset[] = {
    {"_rec", (getter)cond_get_rec, NULL, "the recording of the comparison", NULL},
    {"guarded", (getter)cond_get_guarded, NULL,
     "True once its truth value was taken: replays check the comparison", NULL},
    {NULL}
};

static PyObject *cond_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type; (void)args; (void)kwds;
    PyErr_SetString(PyExc_TypeError, "a tapead.Cond is made by comparing Vars, not by calling Cond()");
    return NULL;
}

static PyType_Slot cond_slots[] = {
    {Py_tp_new, cond_new}, {Py_tp_dealloc, cond_dealloc}, {Py_tp_hash, cond_hash},
    {Py_tp_richcompare, cond_richcompare}, {Py_tp_repr, cond_repr}, {Py_tp_str, cond_str},
    {Py_tp_members, cond_members}, {Py_tp_getset, cond_getset},
    {Py_nb_bool, cond_bool}, {Py_nb_int, cond_int}, {Py_nb_float, cond_float},
    {Py_nb_add, cond_add}, {Py_nb_subtract, cond_sub},
    {Py_nb_multiply, cond_mul}, {Py_nb_true_divide, cond_div},
    {Py_nb_floor_divide, cond_floordiv}, {Py_nb_remainder, cond_mod}, {Py_nb_power, cond_pow},
    {Py_nb_negative, cond_neg}, {Py_nb_positive, cond_pos}, {Py_nb_absolute, cond_abs},
    {Py_nb_invert, cond_invert}, {Py_nb_and, cond_and}, {Py_nb_or, cond_or},
    {Py_nb_xor, cond_xor},
    {Py_tp_doc, "The outcome of a comparison of Vars while recording: acts as a bool. Taking its "
                "truth value (if, while, and, or, not, bool(), arithmetic) records a branch guard "
                "that replays check; ad.where(cond, x, y) takes it as a condition that stays "
                "valid on both sides (no guard)."},
    {0, NULL}
};

static PyType_Spec cond_spec = {
    "tapead.Cond", sizeof(CondObject), 0, Py_TPFLAGS_DEFAULT, cond_slots,
};

/* .value while the tape records in this thread: the number, and an equality guard on it (a
 * replay elsewhere re-records or raises BranchChanged instead of reusing a stale constant). */
static PyObject *get_value(VarObject *self, void *c)
{
    (void)c;
    if (readable(self->p) < 0) return NULL;
    if (!R.closed(self->p)) {                  /* on_value records the guards (tp_guard_value) */
        PyObject *r = PyObject_CallFunction(R.on_value, "Oi", self->rec, (int)self->index);
        if (!r) return NULL;
        Py_DECREF(r);
    }
    return PyFloat_FromDouble(R.value(self->p, self->index));
}

/* the value without a guard: repr, format and tapead's own code */
static PyObject *get_peek(VarObject *self, void *c)
{
    (void)c;
    if (readable(self->p) < 0) return NULL;
    return PyFloat_FromDouble(R.value(self->p, self->index));
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

/* setup(fail, number, mixed, on_guard, on_value, addresses, opcodes): addresses of tp_rec1, tp_rec2,
 * tp_rec2vc, tp_rec2cv, tp_value, tp_forward, tp_vjp, tp_n_ops, tp_rec3, tp_const, tp_guard,
 * tp_closed, tp_new, tp_free, tp_claim, tp_close, tp_add_inputs, tp_set_outputs, in that order */
#define N_ADDRESSES 18
static PyObject *setup(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *fail, *number, *mixed, *on_guard, *on_value, *addresses;
    int lt, le, gt, ge, eq, ne;
    if (!PyArg_ParseTuple(args, "OOOOOO!(iiiiiiiiiiiiiii)", &fail, &number, &mixed, &on_guard,
                          &on_value,
                          &PyTuple_Type, &addresses,
                          &R.op_add, &R.op_sub, &R.op_mul, &R.op_div, &R.op_pow, &R.op_neg,
                          &R.op_abs, &R.op_square, &R.op_sqrt, &lt, &le, &gt, &ge, &eq, &ne))
        return NULL;
    if (PyTuple_GET_SIZE(addresses) != N_ADDRESSES) {
        PyErr_Format(PyExc_ValueError, "setup expects %d addresses", N_ADDRESSES);
        return NULL;
    }
    void *a[N_ADDRESSES];
    for (int i = 0; i < N_ADDRESSES; i++) {
        a[i] = PyLong_AsVoidPtr(PyTuple_GET_ITEM(addresses, i));
        if (!a[i]) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a null address");
            return NULL;
        }
    }
    R.op_cmp[Py_LT] = lt; R.op_cmp[Py_LE] = le; R.op_cmp[Py_GT] = gt; R.op_cmp[Py_GE] = ge;
    R.op_cmp[Py_EQ] = eq; R.op_cmp[Py_NE] = ne;
    /* object pointers to function pointers: POSIX guarantees the round trip */
    R.rec1 = (int32_t (*)(tp_tape *, int, int32_t))a[0];
    R.rec2 = (int32_t (*)(tp_tape *, int, int32_t, int32_t))a[1];
    R.rec2vc = (int32_t (*)(tp_tape *, int, int32_t, double))a[2];
    R.rec2cv = (int32_t (*)(tp_tape *, int, double, int32_t))a[3];
    R.value = (double (*)(const tp_tape *, int64_t))a[4];
    R.forward = (int (*)(tp_tape *, const double *, double *))a[5];
    R.vjp = (int (*)(tp_tape *, const double *, int64_t, const double *, double *, double *))a[6];
    R.n_ops = (int64_t (*)(const tp_tape *))a[7];
    R.rec3 = (int32_t (*)(tp_tape *, int, int32_t, int32_t, int32_t))a[8];
    R.konst = (int (*)(tp_tape *, double, int32_t *))a[9];
    R.guard = (int (*)(tp_tape *, int64_t, int))a[10];
    R.closed = (int (*)(const tp_tape *))a[11];
    R.tape_new = (tp_tape *(*)(void))a[12];
    R.tape_free = (void (*)(tp_tape *))a[13];
    R.claim = (int (*)(tp_tape *))a[14];
    R.close = (void (*)(tp_tape *))a[15];
    R.add_inputs = (int64_t (*)(tp_tape *, const double *, int64_t))a[16];
    R.set_outputs = (int (*)(tp_tape *, const int32_t *, int64_t))a[17];
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

/* ---- small replays ------------------------------------------------------------------------
 * For a tape whose input is one vector of m numbers (fast == 1), one scalar (2) or k >= 2
 * scalars (3): x is a list or tuple of m floats/ints (kinds 1 and 3), a C-contiguous 1-d
 * float64 buffer of m items (kind 1), or a number (kind 2). Anything else is not taken here:
 * tapead/tape.py takes its general path, with its error messages (a number that does not convert
 * too: the general path raises what it raises). */
#define SMALL 64
#define RELEASE_GIL_ABOVE 20000                 /* operations; below, the sweep is too short */

typedef struct { const double *x; double stack[SMALL]; double *heap; Py_buffer view; int has_view; } xin;

static void xin_release(xin *in)
{
    PyMem_Free(in->heap);
    in->heap = NULL;
    if (in->has_view) PyBuffer_Release(&in->view);
    in->has_view = 0;
}

/* A plain number (float, int, numpy.float64; not bool) as a double: 1, or 0 for anything else
 * and for an int too large for a double (no error set). */
static int plain_number(PyObject *e, double *v)
{
    if (PyFloat_CheckExact(e) || (R.float64 && Py_TYPE(e) == R.float64)) {
        *v = PyFloat_AS_DOUBLE(e);
        return 1;
    }
    if (PyLong_CheckExact(e)) {
        *v = PyLong_AsDouble(e);
        if (*v == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
        return 1;
    }
    return 0;
}

/* 1: in->x holds m doubles (m < 0: any length >= 1, stored in *m); 0: not a form taken here;
 * -1: error set. kind as the recording's fast. */
static int xin_read(xin *in, PyObject *x, int64_t *m, int kind)
{
    in->heap = NULL; in->has_view = 0;
    if (kind == 2) {
        if (*m != 1 || !plain_number(x, in->stack)) return 0;
        in->x = in->stack;
        return 1;
    }
    if (PyList_CheckExact(x) || PyTuple_CheckExact(x)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(x);
        if (*m < 0 ? n < 1 : n != *m) return 0;
        double *buf = in->stack;
        if (n > SMALL && !(buf = in->heap = PyMem_Malloc((size_t)n * sizeof(double)))) {
            PyErr_NoMemory();
            return -1;
        }
        PyObject **items = PySequence_Fast_ITEMS(x);
        for (Py_ssize_t i = 0; i < n; i++)
            if (!plain_number(items[i], &buf[i])) { xin_release(in); return 0; }
        in->x = buf;
        *m = n;
        return 1;
    }
    if (kind == 1 && PyObject_CheckBuffer(x)) {
        if (PyObject_GetBuffer(x, &in->view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            PyErr_Clear();
            return 0;
        }
        in->has_view = 1;
        const char *f = in->view.format;
        if (in->view.ndim == 1 && in->view.itemsize == 8 && f &&
            (!strcmp(f, "d") || !strcmp(f, "<d") || !strcmp(f, "=d")) &&
            (*m < 0 ? in->view.len >= 8 : in->view.len == *m * 8)) {
            in->x = in->view.buf;
            *m = in->view.len / 8;
            return 1;
        }
        xin_release(in);
        return 0;
    }
    return 0;
}

static int out_buffer(PyObject *o, Py_buffer *view, int64_t n)
{
    if (PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) return -1;
    if (view->len != n * 8) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "output buffer of the wrong size");
        return -1;
    }
    return 0;
}

static PyObject *status_error(int rc)
{
    PyObject *r = PyObject_CallFunction(R.fail, "i", rc);
    Py_XDECREF(r);
    return NULL;
}

static int sweep_vjp(tp_tape *t, const double *x, double *g)
{
    static const double one = 1.0;
    int rc;
    if (R.n_ops(t) > RELEASE_GIL_ABOVE) {
        Py_BEGIN_ALLOW_THREADS
        rc = R.vjp(t, x, 1, &one, NULL, g);
        Py_END_ALLOW_THREADS
    } else rc = R.vjp(t, x, 1, &one, NULL, g);
    return rc;
}

/* the kind of input a replay reads: the recording's, or one scalar when asked for */
static int kind_of(PyObject *rec, PyObject *scalar)
{
    int s = PyObject_IsTrue(scalar);
    if (s < 0) return -1;
    int fast = ((RecObject *)rec)->fast;
    return s ? 2 : fast == 3 ? 3 : 1;
}

/* grad(recording, scalar, x, out): out = gradient of the single output at x (None: the last
 * point); scalar: the input was recorded from a number */
static PyObject *py_grad(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    if (n != 4) { PyErr_SetString(PyExc_TypeError, "grad(recording, scalar, x, out)"); return NULL; }
    tp_tape *t = tape_of(args[0]);
    if (!t || readable(t) < 0) return NULL;
    int64_t m = t->n_inputs;
    if (t->n_outputs != 1) {                       /* re-checked: a re-record may change it */
        PyErr_SetString(PyExc_ValueError, "tape.gradient needs a scalar output");
        return NULL;
    }
    int kind = kind_of(args[0], args[1]);
    if (kind < 0) return NULL;
    xin in;
    int k;
    if (args[2] == Py_None) {                      /* vjp copies x before it stores it back */
        in.x = t->last_x; in.heap = NULL; in.has_view = 0;
    } else if ((k = xin_read(&in, args[2], &m, kind)) <= 0) {
        if (k < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    Py_buffer out;
    if (out_buffer(args[3], &out, m) < 0) { xin_release(&in); return NULL; }
    int rc = sweep_vjp(t, in.x, out.buf);
    PyBuffer_Release(&out);
    xin_release(&in);
    if (rc < 0) return status_error(rc);
    Py_RETURN_NONE;
}

/* forward(recording, scalar, x, out): out = outputs at x */
static PyObject *py_forward(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    if (n != 4) {
        PyErr_SetString(PyExc_TypeError, "forward(recording, scalar, x, out)");
        return NULL;
    }
    tp_tape *t = tape_of(args[0]);
    if (!t || readable(t) < 0) return NULL;
    int64_t m = t->n_inputs, n_out = t->n_outputs;
    int kind = kind_of(args[0], args[1]);
    if (kind < 0) return NULL;
    xin in;
    int k = xin_read(&in, args[2], &m, kind);
    if (k <= 0) { if (k < 0) return NULL; Py_RETURN_NOTIMPLEMENTED; }
    Py_buffer out;
    if (out_buffer(args[3], &out, n_out) < 0) { xin_release(&in); return NULL; }
    int rc;
    if (R.n_ops(t) > RELEASE_GIL_ABOVE) {
        Py_BEGIN_ALLOW_THREADS
        rc = R.forward(t, in.x, out.buf);
        Py_END_ALLOW_THREADS
    } else rc = R.forward(t, in.x, out.buf);
    PyBuffer_Release(&out);
    xin_release(&in);
    if (rc < 0) return status_error(rc);
    Py_RETURN_NONE;
}

/* ---- Recording ------------------------------------------------------------------------------ */
static RecObject *rec_alloc(PyTypeObject *type)
{
    tp_tape *p = R.tape_new ? R.tape_new() : NULL;
    if (!p) {
        PyErr_SetString(PyExc_MemoryError, "could not allocate a tape");
        return NULL;
    }
    RecObject *r = (RecObject *)type->tp_alloc(type, 0);
    if (!r) { R.tape_free(p); return NULL; }
    r->p = p;
    return r;
}

/* Recording(tape): a new, empty recording of tape */
static PyObject *rec_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *tape;
    if ((kwds && PyDict_GET_SIZE(kwds)) || !PyArg_ParseTuple(args, "O:_Recording", &tape)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "_Recording(tape)");
        return NULL;
    }
    RecObject *r = rec_alloc(type);
    if (!r) return NULL;
    if (!(r->tape = PyWeakref_NewRef(tape, NULL))) { Py_DECREF(r); return NULL; }
    return (PyObject *)r;
}

static void rec_dealloc(RecObject *r)
{
    PyTypeObject *tp = Py_TYPE(r);
    if (r->weaklist) PyObject_ClearWeakRefs((PyObject *)r);
    Py_CLEAR(r->tape); Py_CLEAR(r->pieces); Py_CLEAR(r->sizes); Py_CLEAR(r->out_shape);
    Py_CLEAR(r->grads); Py_CLEAR(r->guards); Py_CLEAR(r->sites); Py_CLEAR(r->colouring);
    if (r->p_obj) Py_CLEAR(r->p_obj);             /* frees the tape unless someone holds it */
    else if (r->p) R.tape_free(r->p);
    r->p = NULL;
    tp->tp_free((PyObject *)r);
    Py_DECREF(tp);
}

/* pieces / sizes of a recording made by record(): [(m,)] / [m] for one vector, [()] * k / [1] * k
 * for k scalars */
static PyObject *lazy_inputs(RecObject *r, int sizes)
{
    if (!r->lazy || r->fast < 1 || r->fast > 3) return PyList_New(0);
    Py_ssize_t k = r->fast == 3 ? r->m : 1;
    PyObject *item = sizes ? PyLong_FromSsize_t(r->fast == 1 ? r->m : 1)
                           : r->fast == 1 ? Py_BuildValue("(n)", r->m) : PyTuple_New(0);
    if (!item) return NULL;
    PyObject *list = PyList_New(k);
    if (list)
        for (Py_ssize_t i = 0; i < k; i++) { Py_INCREF(item); PyList_SET_ITEM(list, i, item); }
    Py_DECREF(item);
    return list;
}

static PyObject *rec_lazy(RecObject *r, void *which)
{
    PyObject **slot;
    switch ((int)(intptr_t)which) {
    case 0: slot = &r->pieces; break;
    case 1: slot = &r->sizes; break;
    case 2: slot = &r->guards; break;
    case 3: slot = &r->sites; break;
    default:                                      /* colouring: False until found */
        if (!r->colouring) Py_RETURN_FALSE;
        Py_INCREF(r->colouring);
        return r->colouring;
    }
    if (!*slot) {
        int w = (int)(intptr_t)which;
        *slot = w < 2 ? lazy_inputs(r, w) : w == 2 ? PyList_New(0) : PyDict_New();
        if (!*slot) return NULL;
    }
    Py_INCREF(*slot);
    return *slot;
}

static int rec_set(RecObject *r, PyObject *v, void *which)
{
    PyObject **slot;
    switch ((int)(intptr_t)which) {
    case 0: slot = &r->pieces; break;
    case 1: slot = &r->sizes; break;
    case 2: slot = &r->guards; break;
    case 3: slot = &r->sites; break;
    default: slot = &r->colouring; break;
    }
    Py_XINCREF(v);
    Py_XSETREF(*slot, v);
    return 0;
}

static PyObject *rec_get_p(RecObject *r, void *c)
{
    (void)c;
    if (!r->p_obj) {
        if (!R.own) { PyErr_SetString(PyExc_RuntimeError, "tapead._fast.set_types not called"); return NULL; }
        PyObject *addr = PyLong_FromVoidPtr(r->p);
        if (!addr) return NULL;
        r->p_obj = PyObject_CallOneArg(R.own, addr);
        Py_DECREF(addr);
        if (!r->p_obj) return NULL;
    }
    Py_INCREF(r->p_obj);
    return r->p_obj;
}

static PyObject *rec_get_addr(RecObject *r, void *c)
{
    (void)c;
    return PyLong_FromVoidPtr(r->p);
}

static PyMemberDef rec_members[] = {
    {"tape", T_OBJECT, offsetof(RecObject, tape), 0, "weak reference to its Tape"},
    {"out_shape", T_OBJECT, offsetof(RecObject, out_shape), 0, "shape of y; None until t.outputs()"},
    {"grads", T_OBJECT, offsetof(RecObject, grads), 0,
     "adjoints of every variable from the last backward(), or None"},
    {"m", T_PYSSIZET, offsetof(RecObject, m), 0, "number of inputs"},
    {"n_out", T_PYSSIZET, offsetof(RecObject, n_out), 0, "number of outputs"},
    {"fast", T_INT, offsetof(RecObject, fast), 0,
     "1: the input is one vector, 2: one scalar, 3: k >= 2 scalars (C replay paths); 0: other"},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(RecObject, weaklist), READONLY, NULL},
    {NULL}
};

static PyGetSetDef rec_getset[] = {
    {"_p", (getter)rec_get_p, NULL, "the C tape as a cffi pointer (owns it once made)", NULL},
    {"_addr", (getter)rec_get_addr, NULL, "the C tape's address", NULL},
    {"pieces", (getter)rec_lazy, (setter)rec_set, "shape of each input piece, in order", (void *)0},
    {"sizes", (getter)rec_lazy, (setter)rec_set, "number of inputs of each piece", (void *)1},
    {"guards", (getter)rec_lazy, (setter)rec_set, "variable index of each branch guard", (void *)2},
    {"sites", (getter)rec_lazy, (setter)rec_set,
     "variable index of a guard -> (file, line, kind)", (void *)3},
    {"colouring", (getter)rec_lazy, (setter)rec_set,
     "the Hessian's colouring (tapead/sparsity.py): False until asked", (void *)4},
    {NULL}
};

static PyType_Slot rec_slots[] = {
    {Py_tp_new, rec_new}, {Py_tp_dealloc, rec_dealloc},
    {Py_tp_members, rec_members}, {Py_tp_getset, rec_getset},
    {Py_tp_doc, "One recording of a tape: owns the C tape; base of tapead.tape._Recording."},
    {0, NULL}
};

static PyType_Spec rec_spec = {
    "tapead._fast.Recording", sizeof(RecObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    rec_slots,
};

/* ---- the thread's recording ---------------------------------------------------------------
 * The recording this thread is making (a reference), or NULL: set by `with tape:` and by
 * record(), read by both (a thread runs Python code with the GIL held, so only the thread
 * itself touches its own). */
static __thread PyObject *current_rec;

static PyObject *current_get(void)             /* borrowed; NULL: none */
{
    return current_rec;
}

static int current_set(PyObject *rec)           /* rec NULL: none */
{
    PyObject *old = current_rec;
    Py_XINCREF(rec);
    current_rec = rec;
    Py_XDECREF(old);
    return 0;
}

static PyObject *py_current(PyObject *mod, PyObject *unused)
{
    (void)mod; (void)unused;
    PyObject *r = current_get();
    if (!r) Py_RETURN_NONE;
    Py_INCREF(r);
    return r;
}

static PyObject *py_set_current(PyObject *mod, PyObject *rec)
{
    (void)mod;
    if (current_set(rec == Py_None ? NULL : rec) < 0) return NULL;
    Py_RETURN_NONE;
}

/* ---- TapeBase: Tape's fields, and gradient ------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    PyObject *rec;           /* the current recording */
    PyObject *fn;            /* f of ad.record (re-recorded where a guard flips), or None */
    Py_ssize_t rerecords;
    char optimize;           /* each recording is optimised (Tape.optimize): re-record in Python */
    PyObject *weaklist;
} TapeObject;

static int tape_traverse(TapeObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->rec);
    Py_VISIT(self->fn);
    return 0;
}

static int tape_clear(TapeObject *self)
{
    Py_CLEAR(self->rec);
    Py_CLEAR(self->fn);
    return 0;
}

static void tape_dealloc(TapeObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weaklist) PyObject_ClearWeakRefs((PyObject *)self);
    tape_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *record_into(PyObject *f, PyObject *const *items, Py_ssize_t k, PyObject *tape);

/* The gradient at x of a recording taken by the C path: 1 with *res, 0 not taken here, -1
 * error, 2 a branch guard flipped (nothing stored). */
static int grad_fast(RecObject *r, PyObject *x, PyObject **res)
{
    tp_tape *t = r->p;
    if (readable(t) < 0) return -1;
    if (t->n_outputs != 1) return 0;
    int64_t m = t->n_inputs;
    int kind = r->fast, k;
    xin in;
    if (x == Py_None) {                           /* vjp copies x before it stores it back */
        in.x = t->last_x; in.heap = NULL; in.has_view = 0;
    } else if ((k = xin_read(&in, x, &m, kind)) <= 0) return k;
    double stack[SMALL], *g = stack;
    PyObject *arr = NULL;
    Py_buffer out;
    out.obj = NULL;
    if (kind == 1) {
        PyObject *n = PyLong_FromLongLong(m);
        arr = n ? PyObject_CallOneArg(R.np_empty, n) : NULL;
        Py_XDECREF(n);
        if (!arr || out_buffer(arr, &out, m) < 0) { Py_XDECREF(arr); xin_release(&in); return -1; }
        g = out.buf;
    } else if (m > SMALL && !(g = PyMem_Malloc((size_t)m * sizeof *g))) {
        xin_release(&in);
        PyErr_NoMemory();
        return -1;
    }
    int rc = sweep_vjp(t, in.x, g);
    xin_release(&in);
    if (rc >= 0) {
        if (kind == 1) *res = arr, arr = NULL;
        else if (kind == 2) *res = PyFloat_FromDouble(g[0]);
        else if ((*res = PyTuple_New(m)))
            for (int64_t i = 0; i < m; i++) {
                PyObject *v = PyFloat_FromDouble(g[i]);
                if (!v) { Py_CLEAR(*res); break; }
                PyTuple_SET_ITEM(*res, i, v);
            }
    }
    if (out.obj) PyBuffer_Release(&out);
    Py_XDECREF(arr);
    if (g != stack && kind != 1) PyMem_Free(g);
    if (rc == TP_EBRANCH) return 2;
    if (rc < 0) { status_error(rc); return -1; }
    return *res ? 1 : -1;
}

/* x of a replay method taking (x=None) */
static int parse_x(const char *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                   PyObject **x)
{
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "Tape.%s() takes from 1 to 2 positional arguments but "
                     "%zd were given", name, nargs + 1);
        return -1;
    }
    if (nargs) *x = args[0];
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, i);
        if (!PyUnicode_Check(kw) || PyUnicode_CompareWithASCIIString(kw, "x")) {
            PyErr_Format(PyExc_TypeError, "Tape.%s() got an unexpected keyword argument '%S'",
                         name, kw);
            return -1;
        }
        if (nargs) {
            PyErr_Format(PyExc_TypeError, "Tape.%s() got multiple values for argument 'x'", name);
            return -1;
        }
        *x = args[nargs + i];
    }
    return 0;
}

/* Raise rec.branch_changed() (from None) */
static PyObject *raise_branch_changed(PyObject *rec)
{
    PyObject *e = PyObject_CallMethodNoArgs(rec, R.s_branch_changed);
    if (!e) return NULL;
    PyException_SetCause(e, NULL);                /* `from None` */
    PyErr_SetObject((PyObject *)Py_TYPE(e), e);
    Py_DECREF(e);
    return NULL;
}

static PyObject *tape_gradient(TapeObject *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    PyObject *x = Py_None, *res = NULL, *rec = self->rec;
    if (parse_x("gradient", args, nargs, kwnames, &x) < 0) return NULL;
    Py_XINCREF(rec);
    for (int again = 0; rec && IS_REC(rec); again = 1) {
        RecObject *r = (RecObject *)rec;
        if (!r->fast || r->n_out != 1) break;      /* the general path (and its errors) */
        int k = grad_fast(r, x, &res);   /* x again after a re-record: another thread may
                                            move the new recording's last point meanwhile */
        if (k == 1 || k < 0) { Py_DECREF(rec); return res; }
        if (k == 0) break;
        if (again) {                               /* f took another branch on the same input */
            raise_branch_changed(rec);
            Py_DECREF(rec);
            return NULL;
        }
        /* a branch guard flipped at x: re-record f there (x as its pieces, as _after_flip
         * gives them, when record_into takes them; else _after_flip: BranchChanged for an
         * imperative tape) */
        PyObject *next = Py_NotImplemented;
        Py_INCREF(next);
        if (self->fn && self->fn != Py_None && x != Py_None && !self->optimize) {
            Py_DECREF(next);
            if (r->fast != 3) next = record_into(self->fn, &x, 1, (PyObject *)self);
            else if (PyList_CheckExact(x) || PyTuple_CheckExact(x))
                next = record_into(self->fn, PySequence_Fast_ITEMS(x),
                                   PySequence_Fast_GET_SIZE(x), (PyObject *)self);
            else { next = Py_NotImplemented; Py_INCREF(next); }
        }
        if (next == Py_NotImplemented) {
            Py_DECREF(next);
            PyObject *args2[3] = {(PyObject *)self, rec, x};
            next = PyObject_VectorcallMethod(R.s_after_flip, args2, 3, NULL);
        }
        Py_DECREF(rec);
        if (!next) return NULL;
        rec = next;
    }
    Py_XDECREF(rec);
    return PyObject_CallMethodOneArg((PyObject *)self, R.s_gradient, x);
}

static PyMethodDef tape_methods[] = {
    {"gradient", (PyCFunction)(void (*)(void))tape_gradient, METH_FASTCALL | METH_KEYWORDS,
     "gradient($self, /, x=None)\n--\n\n"
     "Gradient of the scalar output at x, shaped like x (one primal + one adjoint sweep); a "
     "tuple of floats for a tape recorded from several scalars."},
    {NULL}
};

static PyMemberDef tape_members[] = {
    {"_rec", T_OBJECT, offsetof(TapeObject, rec), 0, "the current recording"},
    {"_fn", T_OBJECT, offsetof(TapeObject, fn), 0, "f of ad.record, or None"},
    {"_rerecords", T_PYSSIZET, offsetof(TapeObject, rerecords), 0, "re-recordings so far"},
    {"_optimize", T_BOOL, offsetof(TapeObject, optimize), 0, "re-recordings are optimised"},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TapeObject, weaklist), READONLY, NULL},
    {NULL}
};

static PyType_Slot tape_slots[] = {
    {Py_tp_dealloc, tape_dealloc}, {Py_tp_traverse, tape_traverse}, {Py_tp_clear, tape_clear},
    {Py_tp_members, tape_members}, {Py_tp_methods, tape_methods},
    {Py_tp_doc, "Base of tapead.Tape: its fields and the C gradient path."},
    {0, NULL}
};

static PyType_Spec tape_spec = {
    "tapead._fast.TapeBase", sizeof(TapeObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, tape_slots,
};

/* ---- record ----------------------------------------------------------------------------------
 * record_into(f, items, k, tape): ad.record(f, *items) when the k items are scalars (float, int,
 * numpy.float64) or one vector (a 1-d C-contiguous float64 ndarray, or a list/tuple of such
 * numbers), f gets a Var per scalar or an object ndarray of Var, and records in this thread with
 * nothing else recording. tape NULL: a new Tape (f as its _fn); else a re-recording of tape (its
 * guards flipped), which becomes its recording. Returns the Tape (the new recording for a
 * re-record), or NotImplemented before doing anything when the call is not of that form: the
 * general path of tapead/tape.py takes it then. The steps and their errors are the general
 * path's. */
static PyObject *record_into(PyObject *f, PyObject *const *items, Py_ssize_t k, PyObject *tape)
{
    if (!R.rec_type || !R.tape_type || !R.np_empty) {
        PyErr_SetString(PyExc_RuntimeError, "tapead._fast.set_types not called");
        return NULL;
    }
    int fresh = tape == NULL;
    PyObject *outer = current_get();
    if (k < 1 || (fresh && outer)) Py_RETURN_NOTIMPLEMENTED;   /* nested: the general error */

    /* the inputs: k scalars (kind 2, 3) or one vector (kind 1) */
    xin in;
    int64_t m = k;
    int kind = k == 1 ? 2 : 3, got = 1;
    in.heap = NULL; in.has_view = 0; in.x = in.stack;
    if (k == 1 && !plain_number(items[0], in.stack)) {
        PyObject *x = items[0];
        got = 0;
        if (PyList_CheckExact(x) || PyTuple_CheckExact(x) || Py_TYPE(x) == R.ndarray) {
            kind = 1; m = -1;
            got = xin_read(&in, x, &m, 1);
        }
    } else if (k > 1) {
        double *buf = in.stack;
        if (k > SMALL && !(buf = in.heap = PyMem_Malloc((size_t)k * sizeof(double))))
            return PyErr_NoMemory();
        for (Py_ssize_t i = 0; got && i < k; i++) got = plain_number(items[i], &buf[i]);
        in.x = buf;
    }
    if (got <= 0) {
        xin_release(&in);
        if (got < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }

    RecObject *r = rec_alloc(R.rec_type);
    TapeObject *t = NULL;
    PyObject *arr = NULL, *y = NULL, *vs_stack[SMALL], **vs = vs_stack;
    Py_ssize_t nv = 0;
    int rc, ok = 0, set = 0;
    if (!r) goto done;
    r->m = (Py_ssize_t)m; r->fast = kind; r->lazy = 1;
    if (fresh) {                                 /* f may ask its Vars for their .tape */
        if (!(t = (TapeObject *)R.tape_type->tp_alloc(R.tape_type, 0))) goto done;
        Py_INCREF(r);
        t->rec = (PyObject *)r;
        Py_INCREF(f);
        t->fn = f;
    } else {
        t = (TapeObject *)tape;
        Py_INCREF(t);
    }
    if (!(r->tape = PyWeakref_NewRef((PyObject *)t, NULL))) goto done;
    if ((rc = R.claim(r->p)) < 0 || (rc = (int)R.add_inputs(r->p, in.x, m)) < 0) {
        status_error(rc);
        goto done;
    }
    xin_release(&in);
    Py_XINCREF(outer);
    if (current_set((PyObject *)r) < 0) { Py_XDECREF(outer); goto close; }
    set = 1;
    if (kind == 1) {                              /* an object ndarray of m Vars */
        PyObject *cargs[2] = {PyLong_FromLongLong(m), R.object_dtype};
        arr = cargs[0] ? PyObject_Vectorcall(R.np_empty, cargs, 2, NULL) : NULL;
        Py_XDECREF(cargs[0]);
        if (!arr) goto close;
        for (int64_t i = 0; i < m; i++) {
            PyObject *v = make((PyObject *)r, r->p, (int32_t)i);
            if (!v) goto close;
            int e = PySequence_SetItem(arr, (Py_ssize_t)i, v);
            Py_DECREF(v);
            if (e < 0) goto close;
        }
        y = PyObject_CallOneArg(f, arr);
    } else {
        if (k > SMALL && !(vs = PyMem_Malloc((size_t)k * sizeof *vs))) {
            vs = vs_stack;
            PyErr_NoMemory();
            goto close;
        }
        for (nv = 0; nv < k; nv++)
            if (!(vs[nv] = make((PyObject *)r, r->p, (int32_t)nv))) goto close;
        y = PyObject_Vectorcall(f, vs, (size_t)k, NULL);
    }
    if (!y) goto close;
    if (IS_VAR(y) && ((VarObject *)y)->rec == (PyObject *)r) {   /* one Var output: t.outputs */
        int32_t idx = ((VarObject *)y)->index;
        if ((rc = R.set_outputs(r->p, &idx, 1)) < 0) { status_error(rc); goto close; }
        if (!(r->out_shape = PyTuple_New(0))) goto close;
        r->n_out = 1;
    } else {
        PyObject *s = PyObject_CallMethodOneArg((PyObject *)r, R.s_set_outputs, y);
        if (!s) goto close;
        Py_DECREF(s);
    }
    ok = 1;
close:
    if (set) {                                    /* as __exit__: the recording thread closes */
        PyObject *exc_t, *exc_v, *exc_tb;
        PyErr_Fetch(&exc_t, &exc_v, &exc_tb);
        if (current_get() == (PyObject *)r && current_set(outer) < 0) {
            ok = 0;
            Py_XDECREF(exc_t); Py_XDECREF(exc_v); Py_XDECREF(exc_tb);
        } else PyErr_Restore(exc_t, exc_v, exc_tb);
        Py_XDECREF(outer);
    }
    R.close(r->p);
done:
    xin_release(&in);
    Py_XDECREF(y);
    Py_XDECREF(arr);
    for (Py_ssize_t i = 0; i < nv; i++) Py_DECREF(vs[i]);
    if (vs != vs_stack) PyMem_Free(vs);
    if (!ok) {
        Py_XDECREF(r);
        Py_XDECREF(t);
        return NULL;
    }
    if (fresh) {
        Py_DECREF(r);                             /* t holds it */
        return (PyObject *)t;
    }
    Py_SETREF(t->rec, (PyObject *)r);
    t->rerecords++;
    Py_INCREF(r);
    Py_DECREF(t);
    return (PyObject *)r;
}

/* record(f, *args): ad.record; the general path (tapead.tape._record) takes what record_into
 * does not, with the same arguments */
static PyObject *py_record(PyObject *mod, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    (void)mod;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (!R.record_general) {
        PyErr_SetString(PyExc_RuntimeError, "tapead._fast.set_types not called");
        return NULL;
    }
    if (n >= 2 && !kwnames) {
        PyObject *t = record_into(args[0], args + 1, n - 1, NULL);
        if (t != Py_NotImplemented) return t;
        Py_DECREF(t);
    }
    return PyObject_Vectorcall(R.record_general, args, nargsf, kwnames);
}

/* record_into(f, args, tape): re-record f at args (a list or tuple) into tape, or
 * NotImplemented (tapead/tape.py: Tape._rerecord) */
static PyObject *py_record_into(PyObject *mod, PyObject *const *a, Py_ssize_t n)
{
    (void)mod;
    if (n != 3 || !PyObject_TypeCheck(a[2], R.tape_base) ||
        !(PyList_CheckExact(a[1]) || PyTuple_CheckExact(a[1]))) {
        PyErr_SetString(PyExc_TypeError, "record_into(f, args, tape): args a list or tuple, "
                                         "tape a Tape");
        return NULL;
    }
    return record_into(a[0], PySequence_Fast_ITEMS(a[1]), PySequence_Fast_GET_SIZE(a[1]), a[2]);
}

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
    {"current", py_current, METH_NOARGS, "the recording this thread is making, or None"},
    {"set_current", py_set_current, METH_O, "set_current(recording or None)"},
    {"record", (PyCFunction)(void (*)(void))py_record, METH_FASTCALL | METH_KEYWORDS,
     "record(f, *args, optimize=False)\n--\n\n"
     "Call f once on Vars initialised to args (a Var per scalar argument, an object ndarray of "
     "Var per array argument) and return the closed Tape with f's result as outputs. A replay "
     "where one of f's comparisons comes out differently records f again at that point. "
     "optimize=True: the tape optimised (Tape.optimize), and so is every re-recording."},
    {"record_into", (PyCFunction)(void (*)(void))py_record_into, METH_FASTCALL,
     "record_into(f, args, tape) -> the new recording of tape, or NotImplemented"},
    {"rec1", (PyCFunction)(void (*)(void))py_rec1, METH_FASTCALL, "rec1(op, x) -> Var"},
    {"rec2", (PyCFunction)(void (*)(void))py_rec2, METH_FASTCALL, "rec2(op, x, y) -> Var"},
    {"grad", (PyCFunction)(void (*)(void))py_grad, METH_FASTCALL,
     "grad(recording, scalar, x, out) -> None, or NotImplemented for an x it does not take"},
    {"forward", (PyCFunction)(void (*)(void))py_forward, METH_FASTCALL,
     "forward(recording, scalar, x, out) -> None, or NotImplemented"},
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
        !(R.s_set_outputs = PyUnicode_InternFromString("set_outputs")) ||
        !(R.s_gradient = PyUnicode_InternFromString("_gradient")) ||
        !(R.s_after_flip = PyUnicode_InternFromString("_after_flip")) ||
        !(R.s_branch_changed = PyUnicode_InternFromString("branch_changed"))) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
