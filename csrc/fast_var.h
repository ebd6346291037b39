/* Var's number protocol: each arithmetic operation on a Var records one operation.
 * Part of tapead._fast: included once by csrc/fast.c, in order, after its types. */
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
            return make(x->rec, x->p, C->rec2(x->p, op, x->index, y->index));
        }
        if ((k = as_number(b, &c)) <= 0) {
            if (k < 0) return NULL;
            Py_RETURN_NOTIMPLEMENTED;
        }
        return make(x->rec, x->p, C->rec2vc(x->p, op, x->index, c));
    }
    VarObject *y = (VarObject *)b;
    if ((k = as_number(a, &c)) <= 0) {
        if (k < 0) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    return make(y->rec, y->p, C->rec2cv(y->p, op, c, y->index));
}

static PyObject *nb_add(PyObject *a, PyObject *b) { return binary(TP_OP_ADD, a, b); }
static PyObject *nb_sub(PyObject *a, PyObject *b) { return binary(TP_OP_SUB, a, b); }
static PyObject *nb_mul(PyObject *a, PyObject *b) { return binary(TP_OP_MUL, a, b); }
static PyObject *nb_div(PyObject *a, PyObject *b) { return binary(TP_OP_DIV, a, b); }

static PyObject *unary(int op, PyObject *a)
{
    VarObject *x = (VarObject *)a;
    return make(x->rec, x->p, C->rec1(x->p, op, x->index));
}

static PyObject *nb_neg(PyObject *a) { return unary(TP_OP_NEG, a); }
static PyObject *nb_abs(PyObject *a) { return unary(TP_OP_ABS, a); }
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
        if (c == 2.0) return unary(TP_OP_SQUARE, a);
    }
    return binary(TP_OP_POW, a, b);
}


