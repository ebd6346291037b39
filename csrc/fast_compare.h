/* Comparisons of Vars and their conditions (tapead.Cond).
 * Part of tapead._fast: included once by csrc/fast.c, in order, after its types. */
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
    return C->konst(p, v, code);
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
    if (IS_VAR(a)) va = C->value(v->p, ((VarObject *)a)->index);
    else if ((k = as_number(a, &va)) <= 0) {
        if (k < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (IS_VAR(b)) vb = C->value(v->p, ((VarObject *)b)->index);
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
    if (rc >= 0) rc = C->konst(v->p, NAN, &cw);                 /* outcome NaN: not checked */
    if (rc >= 0) rc = gi = C->rec3(v->p, op_cmp[cmp], ca, cb, cw);
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
        int rc = C->guard(c->p, c->index, c->outcome);
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

