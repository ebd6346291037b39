/* ArrayBase: the C part of ad.Array (tapead/array.py subclasses it). An Array is a block of
 * variables first .. first + size - 1 of a recording, in C order, with a shape. Scalar loops
 * over an Array argument (`x[i]`, `for xi in x`, `len(x)`, `A[i, j]`) take an element Var here
 * with no Python frame, as fast as an object ndarray of Var; every other key goes to the
 * __getitem__ that tapead/array.py defines (taken off the class by array_type() below, so that
 * the C slots serve Array).
 * Part of tapead._fast: included once by csrc/fast.c, in order, after fast_var.h. */
typedef struct {
    PyObject_HEAD
    PyObject *rec;           /* its recording (tapead.tape._Recording) */
    tp_tape *p;
    PyObject *shape;         /* tuple of ints */
    Py_ssize_t n0;           /* shape[0]; 0 for a 0-d array */
    int32_t first;
    int ndim;
} ArrayObject;

static PyObject *array_getitem_py;   /* tapead.array.Array.__getitem__: every other key */

/* shape as a tuple of non-negative ints; sets ndim and n0 */
static int array_set_shape(ArrayObject *a, PyObject *shape)
{
    PyObject *seq = PySequence_Tuple(shape);
    if (!seq) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    PyObject *t = PyTuple_New(n);
    if (!t) { Py_DECREF(seq); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = PyNumber_Long(PyTuple_GET_ITEM(seq, i));
        if (!d) { Py_DECREF(seq); Py_DECREF(t); return -1; }
        PyTuple_SET_ITEM(t, i, d);
    }
    Py_DECREF(seq);
    Py_ssize_t n0 = n ? PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0)) : 0;
    if (n0 == -1 && PyErr_Occurred()) { Py_DECREF(t); return -1; }
    Py_XSETREF(a->shape, t);
    a->ndim = (int)n;
    a->n0 = n0;
    return 0;
}

static int array_set_rec(ArrayObject *a, PyObject *rec)
{
    tp_tape *p = tape_of(rec);
    if (!p) return -1;
    Py_INCREF(rec);
    Py_XSETREF(a->rec, rec);
    a->p = p;
    return 0;
}

/* ArrayBase(rec, first, shape) */
static PyObject *array_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *rec, *shape;
    long long first;
    if ((kwds && PyDict_GET_SIZE(kwds)) ||
        !PyArg_ParseTuple(args, "OLO:Array", &rec, &first, &shape)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Array(recording, first, shape)");
        return NULL;
    }
    if (first < 0 || first > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "Array: first out of range");
        return NULL;
    }
    ArrayObject *a = (ArrayObject *)type->tp_alloc(type, 0);
    if (!a) return NULL;
    a->first = (int32_t)first;
    if (array_set_rec(a, rec) < 0 || array_set_shape(a, shape) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    return (PyObject *)a;
}

/* A 1-d Array of variables first .. first + n - 1 of recording r, of type `type` (record()) */
static PyObject *array_make(PyTypeObject *type, PyObject *r, tp_tape *p, int32_t first,
                            Py_ssize_t n)
{
    ArrayObject *a = (ArrayObject *)type->tp_alloc(type, 0);
    if (!a) return NULL;
    if (!(a->shape = Py_BuildValue("(n)", n))) { Py_DECREF(a); return NULL; }
    Py_INCREF(r);
    a->rec = r; a->p = p; a->first = first; a->ndim = 1; a->n0 = n;
    return (PyObject *)a;
}

static void array_dealloc(ArrayObject *a)
{
    PyTypeObject *tp = Py_TYPE(a);
    Py_CLEAR(a->rec);
    Py_CLEAR(a->shape);
    tp->tp_free((PyObject *)a);
    Py_DECREF(tp);
}

static Py_ssize_t array_len(ArrayObject *a)
{
    if (!a->ndim) {
        PyErr_SetString(PyExc_TypeError, "len() of a 0-d ad.Array");
        return -1;
    }
    return a->n0;
}

/* flat offset of the ints key (one per axis) in C order, or -1: not such a key, -2: error */
static Py_ssize_t array_offset(ArrayObject *a, PyObject *key)
{
    if (PyLong_CheckExact(key)) {
        if (a->ndim != 1) return -1;
        Py_ssize_t i = PyLong_AsSsize_t(key);
        if (i == -1 && PyErr_Occurred()) return -2;
        if (i < 0) i += a->n0;
        if (i < 0 || i >= a->n0) {
            PyErr_Format(PyExc_IndexError, "index %zd is out of bounds for axis 0 with size %zd",
                         PyLong_AsSsize_t(key), a->n0);
            return -2;
        }
        return i;
    }
    if (!PyTuple_CheckExact(key) || PyTuple_GET_SIZE(key) != a->ndim || !a->ndim) return -1;
    Py_ssize_t off = 0;
    for (int d = 0; d < a->ndim; d++) {
        PyObject *k = PyTuple_GET_ITEM(key, d);
        if (!PyLong_CheckExact(k)) return -1;
        Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(a->shape, d));
        Py_ssize_t i = PyLong_AsSsize_t(k);
        if (i == -1 && PyErr_Occurred()) return -2;
        if (i < 0) i += n;
        if (i < 0 || i >= n) {
            PyErr_Format(PyExc_IndexError, "index %zd is out of bounds for axis %d with size %zd",
                         PyLong_AsSsize_t(k), d, n);
            return -2;
        }
        off = off * n + i;
    }
    return off;
}

static PyObject *array_subscript(ArrayObject *a, PyObject *key)
{
    Py_ssize_t off = array_offset(a, key);
    if (off >= 0) {
        if (readable(a->p) < 0) return NULL;
        return make(a->rec, a->p, a->first + (int32_t)off);
    }
    if (off == -2) return NULL;
    if (!array_getitem_py) {
        PyErr_SetString(PyExc_TypeError, "ad.Array indexing is not set up (tapead._fast.array_type)");
        return NULL;
    }
    return PyObject_CallFunctionObjArgs(array_getitem_py, (PyObject *)a, key, NULL);
}

static PyObject *array_item(ArrayObject *a, Py_ssize_t i)
{
    if (!a->ndim) { PyErr_SetString(PyExc_TypeError, "a 0-d ad.Array cannot be indexed"); return NULL; }
    if (i < 0 || i >= a->n0) {
        PyErr_Format(PyExc_IndexError, "index %zd is out of bounds for axis 0 with size %zd", i, a->n0);
        return NULL;
    }
    if (a->ndim == 1) {
        if (readable(a->p) < 0) return NULL;
        return make(a->rec, a->p, a->first + (int32_t)i);
    }
    PyObject *k = PyLong_FromSsize_t(i);
    if (!k) return NULL;
    PyObject *r = array_subscript(a, k);
    Py_DECREF(k);
    return r;
}

/* iteration: the elements along axis 0 (Vars of a 1-d array) */
typedef struct {
    PyObject_HEAD
    ArrayObject *a;
    Py_ssize_t i;
} ArrayIterObject;

static PyTypeObject *array_iter_type;

static PyObject *array_iter(ArrayObject *a)
{
    if (!a->ndim) {
        PyErr_SetString(PyExc_TypeError, "iteration over a 0-d ad.Array");
        return NULL;
    }
    ArrayIterObject *it = PyObject_New(ArrayIterObject, array_iter_type);
    if (!it) return NULL;
    Py_INCREF(a);
    it->a = a; it->i = 0;
    return (PyObject *)it;
}

static PyObject *array_iter_next(ArrayIterObject *it)
{
    if (!it->a || it->i >= it->a->n0) {
        Py_CLEAR(it->a);
        return NULL;                              /* StopIteration */
    }
    return array_item(it->a, it->i++);
}

static void array_iter_dealloc(ArrayIterObject *it)
{
    PyTypeObject *tp = Py_TYPE(it);
    Py_XDECREF(it->a);
    PyObject_Free(it);
    Py_DECREF(tp);
}

static PyObject *array_get_rec(ArrayObject *a, void *c)
{
    (void)c;
    Py_INCREF(a->rec);
    return a->rec;
}

static int array_put_rec(ArrayObject *a, PyObject *v, void *c)
{
    (void)c;
    if (!v) { PyErr_SetString(PyExc_AttributeError, "cannot delete _rec"); return -1; }
    return array_set_rec(a, v);
}

static PyObject *array_get_shape(ArrayObject *a, void *c)
{
    (void)c;
    Py_INCREF(a->shape);
    return a->shape;
}

static int array_put_shape(ArrayObject *a, PyObject *v, void *c)
{
    (void)c;
    if (!v) { PyErr_SetString(PyExc_AttributeError, "cannot delete shape"); return -1; }
    return array_set_shape(a, v);
}


/* ---- a + b, a - b, a * b, a / b: one MAP recorded here when the operands are Arrays of one
 * shape, Vars and real numbers (Python's float, int); anything else (broadcasting, ndarrays,
 * NumPy scalars, empty arrays) goes to the Python methods of tapead/array.py. */
enum { ARITH_ADD, ARITH_SUB, ARITH_MUL, ARITH_DIV, N_ARITH };
static const int arith_op[N_ARITH] = {TP_OP_ADD, TP_OP_SUB, TP_OP_MUL, TP_OP_DIV};
static const char *arith_name[N_ARITH] = {"add", "sub", "mul", "truediv"};
static PyObject *arith_py[N_ARITH][2];     /* Array.__op__ and __rop__ of tapead/array.py */

static PyObject *rec_lazy(RecObject *r, void *which);

/* operand words (first, shape id) of o over the shape of a; 1 done, 0 not here, -1 error */
static int map_operand(ArrayObject *a, PyObject *o, int64_t *dims, int64_t *cst, int32_t *w)
{
    static const int64_t zeros[TP_MAXDIM] = {0};
    int32_t first;
    const int64_t *st = zeros;
    if (Py_TYPE(o) == R.array_type) {
        ArrayObject *b = (ArrayObject *)o;
        if (b->p != a->p) return 0;           /* Python's error */
        if (b != a) {
            int eq = PyObject_RichCompareBool(b->shape, a->shape, Py_EQ);
            if (eq <= 0) return eq;
        }
        first = b->first; st = cst;
    } else if (IS_VAR(o)) {
        if (((VarObject *)o)->p != a->p) return 0;
        first = ((VarObject *)o)->index;
    } else if (PyFloat_CheckExact(o) || PyLong_CheckExact(o)) {
        double c = PyFloat_AsDouble(o);
        if (c == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
        int rc = C->konst(a->p, c, &first);
        if (rc < 0) { status_error(rc); return -1; }
    } else return 0;
    int32_t id = C->shape(a->p, a->ndim, dims, st);
    if (id < 0) { status_error(id); return -1; }
    w[0] = first; w[1] = id;
    return 1;
}

static PyObject *arith(int k, PyObject *x, PyObject *y)
{
    ArrayObject *a = (ArrayObject *)(Py_TYPE(x) == R.array_type ? x : y);
    int64_t dims[TP_MAXDIM], cst[TP_MAXDIM], size = 1;
    int32_t words[4];
    int ok = R.array_type && Py_TYPE((PyObject *)a) == R.array_type && a->ndim <= TP_MAXDIM &&
             IS_REC(a->rec);
    for (int d = a->ndim - 1; ok && d >= 0; d--) {
        dims[d] = PyLong_AsLongLong(PyTuple_GET_ITEM(a->shape, d));
        cst[d] = size;
        size *= dims[d];
    }
    if (ok && size > 0) {
        RecObject *r = (RecObject *)a->rec;
        int got = map_operand(a, x, dims, cst, words);
        if (got > 0) got = map_operand(a, y, dims, cst, words + 2);
        if (got < 0) return NULL;
        if (got > 0) {
            if (r->fast) {                   /* array tapes replay through the general paths */
                for (intptr_t i = 0; i < 2; i++) {
                    PyObject *l = rec_lazy(r, (void *)i);
                    if (!l) return NULL;
                    Py_DECREF(l);
                }
                r->fast = 0;
            }
            int32_t zs = C->shape(a->p, a->ndim, dims, cst), z = zs;   /* the result's */
            if (zs < 0 || (z = C->rec_block(a->p, TP_OP_MAP, arith_op[k], zs, words, 2)) < 0) {
                status_error(z);
                return NULL;
            }
            ArrayObject *out = (ArrayObject *)R.array_type->tp_alloc(R.array_type, 0);
            if (!out) return NULL;
            Py_INCREF(a->rec); Py_INCREF(a->shape);
            out->rec = a->rec; out->p = a->p; out->shape = a->shape;
            out->first = z; out->ndim = a->ndim; out->n0 = a->n0;
            return (PyObject *)out;
        }
    }
    if (!arith_py[k][0]) Py_RETURN_NOTIMPLEMENTED;
    return Py_TYPE(x) == R.array_type ? PyObject_CallFunctionObjArgs(arith_py[k][0], x, y, NULL)
                                      : PyObject_CallFunctionObjArgs(arith_py[k][1], y, x, NULL);
}

static PyObject *array_add(PyObject *x, PyObject *y) { return arith(ARITH_ADD, x, y); }
static PyObject *array_sub(PyObject *x, PyObject *y) { return arith(ARITH_SUB, x, y); }
static PyObject *array_mul(PyObject *x, PyObject *y) { return arith(ARITH_MUL, x, y); }
static PyObject *array_div(PyObject *x, PyObject *y) { return arith(ARITH_DIV, x, y); }

static PyMemberDef array_members[] = {
    {"_first", T_INT, offsetof(ArrayObject, first), 0, "its first variable"},
    {NULL}
};

static PyGetSetDef array_getset[] = {
    {"_rec", (getter)array_get_rec, (setter)array_put_rec, "its recording", NULL},
    {"shape", (getter)array_get_shape, (setter)array_put_shape, "its shape (a tuple)", NULL},
    {NULL}
};

static PyType_Slot array_slots[] = {
    {Py_tp_new, array_new}, {Py_tp_dealloc, array_dealloc},
    {Py_mp_subscript, array_subscript}, {Py_mp_length, array_len},
    {Py_sq_length, array_len}, {Py_sq_item, array_item}, {Py_tp_iter, array_iter},
    {Py_nb_add, array_add}, {Py_nb_subtract, array_sub}, {Py_nb_multiply, array_mul},
    {Py_nb_true_divide, array_div},
    {Py_tp_members, array_members}, {Py_tp_getset, array_getset},
    {Py_tp_doc, "Base of tapead.Array: its fields, and element indexing, len and iteration."},
    {0, NULL}
};

static PyType_Spec array_spec = {
    "tapead._fast.ArrayBase", sizeof(ArrayObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    array_slots,
};

static PyType_Slot array_iter_slots[] = {
    {Py_tp_dealloc, array_iter_dealloc}, {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, array_iter_next}, {0, NULL}
};

static PyType_Spec array_iter_spec = {
    "tapead._fast.ArrayIterator", sizeof(ArrayIterObject), 0, Py_TPFLAGS_DEFAULT, array_iter_slots,
};

/* array_type(Array): the Python class on ArrayBase (ad.record makes its Arrays of it). Its
 * __getitem__ becomes the fallback of the C indexing, and its __getitem__, __len__ and __iter__
 * are taken off the class so that ArrayBase's slots serve it; so are + - * / (the C MAP path
 * above, the Python methods its fallback). */
static PyObject *py_array_type(PyObject *mod, PyObject *cls)
{
    (void)mod;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, R.array_base)) {
        PyErr_SetString(PyExc_TypeError, "array_type(cls): a subclass of ArrayBase");
        return NULL;
    }
    PyObject *dict = ((PyTypeObject *)cls)->tp_dict;
    PyObject *get = PyDict_GetItemString(dict, "__getitem__");
    if (get) {
        Py_INCREF(get);
        Py_XSETREF(array_getitem_py, get);
    }
    static const char *names[] = {"__getitem__", "__len__", "__iter__"};
    for (int i = 0; i < 3; i++)
        if (PyDict_GetItemString(dict, names[i]) && PyObject_DelAttrString(cls, names[i]) < 0)
            return NULL;
    for (int k = 0; k < N_ARITH; k++)           /* + - * /: the C slots, these the fallback */
        for (int refl = 0; refl < 2; refl++) {
            char name[32];
            snprintf(name, sizeof name, "__%s%s__", refl ? "r" : "", arith_name[k]);
            PyObject *m = PyDict_GetItemString(dict, name);
            if (!m) continue;
            Py_INCREF(m);
            Py_XSETREF(arith_py[k][refl], m);
            if (PyObject_DelAttrString(cls, name) < 0) return NULL;
        }
    if (!array_getitem_py) {
        PyErr_SetString(PyExc_TypeError, "array_type(cls): cls defines no __getitem__");
        return NULL;
    }
    Py_INCREF(cls);
    Py_XSETREF(R.array_type, (PyTypeObject *)cls);
    Py_RETURN_NONE;
}
