/* tapead._fast: the hot paths, written against CPython's C API.
 *
 * 1. Var's number protocol. Each arithmetic operation on a Var is one direct call into the
 *    tape's recorder (no cffi call, GIL held: no other thread interleaves), and a Var holds no
 *    Python references but its Tape, so it is not tracked by the cyclic GC.
 * 2. Replays of small tapes (gradient, forward) without cffi's per-argument conversions.
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
    PyTypeObject *var_type;  /* tapead.Var, made at module init */
    PyTypeObject *cond_type; /* tapead.Cond: a comparison's outcome while recording */
    PyTypeObject *rec_type;  /* tapead.tape._Recording: holds a tape's address as `_addr` */
    PyObject *fail;          /* fail(status): raises the exception of a C status */
    PyObject *number;        /* number(obj): float for a real number, None otherwise */
    PyObject *mixed;         /* mixed(): raises TapeError for operands of two tapes */
    PyObject *on_guard;      /* on_guard(recording, index): notes where a Cond became a guard */
    PyObject *on_value;      /* on_value(recording, index): .value read while recording */
    int op_cmp[6];           /* TP_OP_LT .. TP_OP_NE in Py_LT .. Py_GE order */
    int op_add, op_sub, op_mul, op_div, op_pow, op_neg, op_abs, op_square, op_sqrt;
} R;

#define IS_VAR(o) (Py_TYPE(o) == R.var_type)

/* The C tape of a recording object (never a raw address from Python), or NULL with TypeError. */
static tp_tape *tape_of(PyObject *rec)
{
    if (!R.rec_type || !PyObject_TypeCheck(rec, R.rec_type)) {
        PyErr_SetString(PyExc_TypeError, "expected a tapead recording");
        return NULL;
    }
    PyObject *a = PyObject_GetAttrString(rec, "_addr");
    if (!a) return NULL;
    tp_tape *t = (tp_tape *)(uintptr_t)PyLong_AsUnsignedLongLong(a);
    Py_DECREF(a);
    if (!t && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a recording without a tape");
    return PyErr_Occurred() ? NULL : t;
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

/* setup(fail, number, mixed, on_guard, addresses, opcodes) */
static PyObject *setup(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *fail, *number, *mixed, *on_guard, *on_value;
    unsigned long long a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12;
    int lt, le, gt, ge, eq, ne;
    if (!PyArg_ParseTuple(args, "OOOOO(KKKKKKKKKKKK)(iiiiiiiiiiiiiii)", &fail, &number, &mixed,
                          &on_guard, &on_value, &a1, &a2, &a3, &a4, &a5, &a6, &a7, &a8, &a9, &a10, &a11, &a12,
                          &R.op_add, &R.op_sub, &R.op_mul, &R.op_div, &R.op_pow, &R.op_neg,
                          &R.op_abs, &R.op_square, &R.op_sqrt, &lt, &le, &gt, &ge, &eq, &ne))
        return NULL;
    R.op_cmp[Py_LT] = lt; R.op_cmp[Py_LE] = le; R.op_cmp[Py_GT] = gt; R.op_cmp[Py_GE] = ge;
    R.op_cmp[Py_EQ] = eq; R.op_cmp[Py_NE] = ne;
    R.rec3 = (void *)(uintptr_t)a9; R.konst = (void *)(uintptr_t)a10;
    R.guard = (void *)(uintptr_t)a11; R.closed = (void *)(uintptr_t)a12;
    Py_INCREF(on_guard); Py_XDECREF(R.on_guard); R.on_guard = on_guard;
    Py_INCREF(on_value); Py_XDECREF(R.on_value); R.on_value = on_value;
    R.rec1 = (void *)(uintptr_t)a1; R.rec2 = (void *)(uintptr_t)a2;
    R.rec2vc = (void *)(uintptr_t)a3; R.rec2cv = (void *)(uintptr_t)a4;
    R.value = (void *)(uintptr_t)a5; R.forward = (void *)(uintptr_t)a6;
    R.vjp = (void *)(uintptr_t)a7; R.n_ops = (void *)(uintptr_t)a8;
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
 * For a tape whose input is one vector of m numbers (or one scalar): x is a list or tuple of m
 * floats/ints, a C-contiguous 1-d float64 buffer of m items, or (m == 1) a number. Anything else
 * returns NotImplemented and tapead/tape.py takes its general path (and its error messages). */
#define SMALL 64
#define RELEASE_GIL_ABOVE 20000                 /* operations; below, the sweep is too short */

typedef struct { const double *x; double stack[SMALL]; double *heap; Py_buffer view; int has_view; } xin;

static void xin_release(xin *in)
{
    PyMem_Free(in->heap);
    if (in->has_view) PyBuffer_Release(&in->view);
}

/* 1: in->x holds m doubles; 0: not a form handled here; -1: error set. A scalar input (m = 1,
 * recorded from a number) takes only a number; a vector one only a list, tuple or 1-d buffer. */
static int xin_read(xin *in, PyObject *x, int64_t m, int scalar)
{
    in->heap = NULL; in->has_view = 0;
    if (scalar) {
        if (!PyFloat_CheckExact(x) && !PyLong_CheckExact(x)) return 0;
        in->stack[0] = PyFloat_AsDouble(x);
        if (in->stack[0] == -1.0 && PyErr_Occurred()) return -1;
        in->x = in->stack;
        return 1;
    }
    if (PyList_CheckExact(x) || PyTuple_CheckExact(x)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(x);
        if (n != m) return 0;
        double *buf = in->stack;
        if (m > SMALL && !(buf = in->heap = PyMem_Malloc((size_t)m * sizeof(double)))) {
            PyErr_NoMemory();
            return -1;
        }
        PyObject **items = PySequence_Fast_ITEMS(x);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *e = items[i];
            if (PyFloat_CheckExact(e)) buf[i] = PyFloat_AS_DOUBLE(e);
            else if (PyLong_CheckExact(e)) {
                buf[i] = PyLong_AsDouble(e);
                if (buf[i] == -1.0 && PyErr_Occurred()) { xin_release(in); return -1; }
            } else { xin_release(in); return 0; }
        }
        in->x = buf;
        return 1;
    }
    if (PyObject_CheckBuffer(x)) {
        if (PyObject_GetBuffer(x, &in->view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            PyErr_Clear();
            return 0;
        }
        in->has_view = 1;
        const char *f = in->view.format;
        if (in->view.ndim == 1 && in->view.itemsize == 8 && in->view.len == m * 8 && f &&
            (!strcmp(f, "d") || !strcmp(f, "<d") || !strcmp(f, "=d"))) {
            in->x = in->view.buf;
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

/* grad(recording, scalar, x, out): out = gradient of the single output at x (None: the last
 * point); scalar: the input was recorded from a number */
static PyObject *py_grad(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    static const double one = 1.0;
    if (n != 4) { PyErr_SetString(PyExc_TypeError, "grad(recording, scalar, x, out)"); return NULL; }
    tp_tape *t = tape_of(args[0]);
    if (!t || readable(t) < 0) return NULL;
    int64_t m = t->n_inputs;
    if (t->n_outputs != 1) {                       /* re-checked: a re-record may change it */
        PyErr_SetString(PyExc_ValueError, "tape.gradient needs a scalar output");
        return NULL;
    }
    int scalar = PyObject_IsTrue(args[1]);
    xin in;
    int k;
    if (args[2] == Py_None) {                      /* vjp copies x before it stores it back */
        in.x = t->last_x; in.heap = NULL; in.has_view = 0;
    } else if ((k = xin_read(&in, args[2], m, scalar)) <= 0) {
        if (k < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    Py_buffer out;
    if (out_buffer(args[3], &out, m) < 0) { xin_release(&in); return NULL; }
    int rc;
    if (R.n_ops(t) > RELEASE_GIL_ABOVE) {
        Py_BEGIN_ALLOW_THREADS
        rc = R.vjp(t, in.x, 1, &one, NULL, out.buf);
        Py_END_ALLOW_THREADS
    } else rc = R.vjp(t, in.x, 1, &one, NULL, out.buf);
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
    int scalar = PyObject_IsTrue(args[1]);
    xin in;
    int k = xin_read(&in, args[2], m, scalar);
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

static PyObject *set_recording_type(PyObject *mod, PyObject *type)
{
    (void)mod;
    if (!PyType_Check(type)) { PyErr_SetString(PyExc_TypeError, "a class"); return NULL; }
    Py_INCREF(type);
    Py_XDECREF(R.rec_type);
    R.rec_type = (PyTypeObject *)type;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS, "wire the recorder functions and hooks"},
    {"new", new_var, METH_VARARGS, "new(recording, index) -> Var"},
    {"vars", vars_range, METH_VARARGS, "vars(recording, first, n) -> list of Var"},
    {"set_recording_type", set_recording_type, METH_O, "the class whose objects own tapes"},
    {"rec1", (PyCFunction)(void (*)(void))py_rec1, METH_FASTCALL, "rec1(op, x) -> Var"},
    {"rec2", (PyCFunction)(void (*)(void))py_rec2, METH_FASTCALL, "rec2(op, x, y) -> Var"},
    {"grad", (PyCFunction)(void (*)(void))py_grad, METH_FASTCALL,
     "grad(recording, scalar, x, out) -> None, or NotImplemented for an x it does not take"},
    {"forward", (PyCFunction)(void (*)(void))py_forward, METH_FASTCALL,
     "forward(recording, scalar, x, out) -> None, or NotImplemented"},
    {NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tapead._fast", "hot paths: Var's number protocol, small replays", -1, module_methods,
};

/* A heap type from spec, added to module m as name (the module and R each hold a reference). */
static PyTypeObject *add_type(PyObject *m, PyType_Spec *spec, const char *name)
{
    PyObject *type = PyType_FromSpec(spec);
    if (!type) return NULL;
    Py_INCREF(type);
    if (PyModule_AddObject(m, name, type) < 0) {
        Py_DECREF(type);
        Py_DECREF(type);
        return NULL;
    }
    return (PyTypeObject *)type;
}

PyMODINIT_FUNC PyInit__fast(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    if (!(R.var_type = add_type(m, &var_spec, "Var")) ||
        !(R.cond_type = add_type(m, &cond_spec, "Cond"))) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
