/* tapead._var: the number protocol of Var in C. Each arithmetic operation on a Var is one direct
 * call into the tape's recorder (no cffi call, GIL held: no other thread interleaves), and a Var
 * holds no Python references but its Tape, so it is not tracked by the cyclic GC.
 *
 * Var is a heap type (PyType_FromSpec) so that tapead/var.py can add its Python-level methods
 * (grad, backward, NumPy hooks). The recorder functions live in the cffi module
 * (tapead._tapead); tapead/var.py hands their addresses and the error hooks to setup().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include "tape.h"

typedef struct {
    PyObject_HEAD
    PyObject *tape;          /* the Python Tape (keeps the C tape alive) */
    tp_tape *p;
    int32_t index;
} VarObject;

static struct {
    int32_t (*rec1)(tp_tape *, int, int32_t);
    int32_t (*rec2)(tp_tape *, int, int32_t, int32_t);
    int32_t (*rec2vc)(tp_tape *, int, int32_t, double);
    int32_t (*rec2cv)(tp_tape *, int, double, int32_t);
    double (*value)(const tp_tape *, int64_t);
    PyTypeObject *var_type;  /* tapead.Var, made at module init */
    PyObject *fail;          /* fail(status): raises the exception of a C status */
    PyObject *number;        /* number(obj): float for a real number, None otherwise */
    PyObject *mixed;         /* mixed(): raises TapeError for operands of two tapes */
    int op_add, op_sub, op_mul, op_div, op_pow, op_neg, op_abs, op_square, op_sqrt;
} R;

#define IS_VAR(o) (Py_TYPE(o) == R.var_type)

static PyObject *make(PyObject *tape, tp_tape *p, int32_t i)
{
    if (i < 0) {
        PyObject *r = PyObject_CallFunction(R.fail, "i", (int)i);
        Py_XDECREF(r);
        return NULL;
    }
    VarObject *v = PyObject_New(VarObject, R.var_type);
    if (!v) return NULL;
    Py_INCREF(tape);
    v->tape = tape; v->p = p; v->index = i;
    return (PyObject *)v;
}

static void var_dealloc(VarObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_XDECREF(self->tape);
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
            return make(x->tape, x->p, R.rec2(x->p, op, x->index, y->index));
        }
        if ((k = as_number(b, &c)) <= 0) {
            if (k < 0) return NULL;
            Py_RETURN_NOTIMPLEMENTED;
        }
        return make(x->tape, x->p, R.rec2vc(x->p, op, x->index, c));
    }
    VarObject *y = (VarObject *)b;
    if ((k = as_number(a, &c)) <= 0) {
        if (k < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    return make(y->tape, y->p, R.rec2cv(y->p, op, c, y->index));
}

static PyObject *nb_add(PyObject *a, PyObject *b) { return binary(R.op_add, a, b); }
static PyObject *nb_sub(PyObject *a, PyObject *b) { return binary(R.op_sub, a, b); }
static PyObject *nb_mul(PyObject *a, PyObject *b) { return binary(R.op_mul, a, b); }
static PyObject *nb_div(PyObject *a, PyObject *b) { return binary(R.op_div, a, b); }

static PyObject *unary(int op, PyObject *a)
{
    VarObject *x = (VarObject *)a;
    return make(x->tape, x->p, R.rec1(x->p, op, x->index));
}

static PyObject *nb_neg(PyObject *a) { return unary(R.op_neg, a); }
static PyObject *nb_abs(PyObject *a) { return unary(R.op_abs, a); }
static PyObject *nb_pos(PyObject *a) { Py_INCREF(a); return a; }

/* x ** 2 records SQUARE and x ** 0.5 SQRT (same values, cheaper sweeps); other powers POW. */
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
        if (c == 0.5) return unary(R.op_sqrt, a);
    }
    return binary(R.op_pow, a, b);
}

static int nb_bool(VarObject *self) { return R.value(self->p, self->index) != 0.0; }

/* Comparisons: plain bools on the values (branch guards come with safe replay). */
static PyObject *richcompare(PyObject *a, PyObject *b, int cmp)
{
    double va, vb;
    int k;
    if (IS_VAR(a)) va = R.value(((VarObject *)a)->p, ((VarObject *)a)->index);
    else if ((k = as_number(a, &va)) <= 0) {
        if (k < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (IS_VAR(b)) vb = R.value(((VarObject *)b)->p, ((VarObject *)b)->index);
    else if ((k = as_number(b, &vb)) <= 0) {
        if (k < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    Py_RETURN_RICHCOMPARE(va, vb, cmp);
}

static PyObject *get_value(VarObject *self, void *c)
{
    (void)c;
    return PyFloat_FromDouble(R.value(self->p, self->index));
}

static PyObject *get_tape(VarObject *self, void *c)
{
    (void)c;
    Py_INCREF(self->tape);
    return self->tape;
}

static PyMemberDef var_members[] = {
    {"index", T_INT, offsetof(VarObject, index), READONLY,
     "position of the variable on its tape (inputs first)"},
    {NULL}
};

static PyGetSetDef var_getset[] = {
    {"value", (getter)get_value, NULL, "primal value at recording", NULL},
    {"_tape", (getter)get_tape, NULL, "the Tape this variable belongs to", NULL},
    {NULL}
};

static PyType_Slot var_slots[] = {
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

/* setup(fail, number, mixed, addresses, opcodes) */
static PyObject *setup(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *fail, *number, *mixed;
    unsigned long long a1, a2, a3, a4, a5;
    if (!PyArg_ParseTuple(args, "OOO(KKKKK)(iiiiiiiii)", &fail, &number, &mixed, &a1, &a2, &a3,
                          &a4, &a5, &R.op_add, &R.op_sub, &R.op_mul, &R.op_div, &R.op_pow,
                          &R.op_neg, &R.op_abs, &R.op_square, &R.op_sqrt))
        return NULL;
    R.rec1 = (void *)(uintptr_t)a1; R.rec2 = (void *)(uintptr_t)a2;
    R.rec2vc = (void *)(uintptr_t)a3; R.rec2cv = (void *)(uintptr_t)a4;
    R.value = (void *)(uintptr_t)a5;
    Py_INCREF(fail); Py_INCREF(number); Py_INCREF(mixed);
    Py_XDECREF(R.fail); Py_XDECREF(R.number); Py_XDECREF(R.mixed);
    R.fail = fail; R.number = number; R.mixed = mixed;
    Py_RETURN_NONE;
}

/* new(tape, address, index): the Var of an existing variable */
static PyObject *new_var(PyObject *mod, PyObject *args)
{
    (void)mod;
    if (!R.fail) {
        PyErr_SetString(PyExc_RuntimeError, "tapead._var.setup() has not run");
        return NULL;
    }
    PyObject *tape;
    unsigned long long addr;
    int index;
    if (!PyArg_ParseTuple(args, "OKi", &tape, &addr, &index)) return NULL;
    return make(tape, (tp_tape *)(uintptr_t)addr, index);
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

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS, "wire the recorder functions and hooks"},
    {"new", new_var, METH_VARARGS, "new(tape, address, index) -> Var"},
    {"rec1", (PyCFunction)(void (*)(void))py_rec1, METH_FASTCALL, "rec1(op, x) -> Var"},
    {"rec2", (PyCFunction)(void (*)(void))py_rec2, METH_FASTCALL, "rec2(op, x, y) -> Var"},
    {NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tapead._var", "Var's number protocol in C", -1, module_methods,
};

PyMODINIT_FUNC PyInit__var(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    R.var_type = (PyTypeObject *)PyType_FromSpec(&var_spec);
    if (!R.var_type) { Py_DECREF(m); return NULL; }
    Py_INCREF(R.var_type);
    if (PyModule_AddObject(m, "Var", (PyObject *)R.var_type) < 0) {
        Py_DECREF(R.var_type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
