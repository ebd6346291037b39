/* ArrayBase: the C part of ad.Array (tapead/array.py subclasses it). An Array is a block of
 * variables first .. first + size - 1 of a recording, in C order, with a shape. Scalar loops
 * over an Array argument (`x[i]`, `for xi in x`, `len(x)`, `A[i, j]`) take an element Var here
 * with no Python frame, as fast as an object ndarray of Var; every other key goes to the
 * __getitem__ that tapead/array.py defines (taken off the class by array_type() below, so that
 * the C slots serve Array). Array operations record here too (block_record, with no cffi call):
 * a @ b, + - * / of one shape, .T, the reductions, and every block op of tapead/array.py, which
 * hands its operands over (each op's shape rules written once, below).
 * Part of tapead._fast: included once by csrc/fast.c, in order, after fast_var.h. */
typedef struct {
    PyObject_HEAD
    PyObject *rec;           /* its recording (tapead.tape._Recording) */
    tp_tape *p;
    PyObject *shape;         /* tuple of ints */
    Py_ssize_t n0;           /* shape[0]; 0 for a 0-d array */
    int32_t first;           /* (while pending: the transposed block's first) */
    int ndim;
    int pending;             /* 1: a.T of a 2-d block at first, not recorded yet (array_first) */
    int viewing;             /* 1: a.T of the 2-d block at vsrc, pending or recorded (its .grad) */
    int32_t vsrc;
} ArrayObject;

static PyObject *array_getitem_py;   /* tapead.array.Array.__getitem__: every other key */
static int32_t array_first(ArrayObject *a);

/* a shape (a sequence of integers) as a new tuple of ints, or NULL */
static PyObject *shape_tuple(PyObject *shape)
{
    PyObject *seq = PySequence_Tuple(shape);
    if (!seq) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++) {
        PyObject *d = PyNumber_Long(PyTuple_GET_ITEM(seq, i));
        if (!d) Py_CLEAR(t);
        else PyTuple_SET_ITEM(t, i, d);
    }
    Py_DECREF(seq);
    return t;
}

/* shape as a tuple of non-negative ints; sets ndim and n0 */
static int array_set_shape(ArrayObject *a, PyObject *shape)
{
    PyObject *t = shape_tuple(shape);
    if (!t) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(t);
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
        if (readable(a->p) < 0 || array_first(a) < 0) return NULL;
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
        if (readable(a->p) < 0 || array_first(a) < 0) return NULL;
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
    /* another thread may not reshape an Array of a tape being recorded: the recording thread
     * may be reading this shape with the GIL released (block_record) */
    if (readable(a->p) < 0 || array_first(a) < 0) return -1;  /* (a pending a.T: its PACK) */
    /* a.shape = s reshapes in place, as NumPy's: s holds the same number of elements (else an
     * Array would name variables beyond its block, and array_offset's int32 offsets wrap) */
    PyObject *t = shape_tuple(v);
    if (!t) return -1;
    long long size = 1, old = 1;
    int bad = 0;
    for (Py_ssize_t d = 0; d < PyTuple_GET_SIZE(t); d++) {
        Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, d));
        if (n == -1 && PyErr_Occurred()) { Py_DECREF(t); return -1; }
        bad |= n < 0 || __builtin_mul_overflow(size, (long long)n, &size);
    }
    for (int d = 0; d < a->ndim; d++)
        old *= PyLong_AsSsize_t(PyTuple_GET_ITEM(a->shape, d));
    if (bad || size != old) {
        PyErr_Format(PyExc_ValueError, "cannot reshape an ad.Array of size %lld into shape %R",
                     old, t);
        Py_DECREF(t);
        return -1;
    }
    int rc = array_set_shape(a, t);
    Py_DECREF(t);
    if (rc == 0) a->viewing = 0;           /* (no longer a's transpose) */
    return rc;
}


/* ---- block operations recorded here: the shapes interned and the op recorded with no cffi
 * call. tapead/array.py records through these (_record, _shape_id, matmul, the reductions,
 * strided views), and so do the C slots below (+ - * / @ and .T) for their common cases. */
#define MAXD 64                        /* NumPy's NPY_MAXDIMS: no Array has more axes */

static PyObject *rec_lazy(RecObject *r, void *which);

/* raises the exception of status rc as tapead/array.py's check(rc, "ad.Array") */
static PyObject *block_fail(int rc)
{
    PyObject *r = PyObject_CallFunction(R.fail, "is", rc, "ad.Array");
    Py_XDECREF(r);
    return NULL;
}

/* the id of the shape (dims, strides) of nd axes, or -1 with the exception */
static int32_t block_shape(tp_tape *p, int nd, const int64_t *dims, const int64_t *st)
{
    if (nd > TP_MAXDIM) {
        PyErr_Format(PyExc_ValueError, "ad.Array operations take arrays of at most %d axes; "
                     "got %d", TP_MAXDIM, nd);
        return -1;
    }
    int32_t id = C->shape(p, nd, dims, st);
    if (id < 0) { block_fail(id); return -1; }
    return id;
}

/* the ints of a sequence (dims, strides; at most MAXD): how many, or -1 with the exception */
static int int_seq(PyObject *o, int64_t *out)
{
    PyObject *seq = PySequence_Fast(o, "expected a sequence of ints");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAXD) block_fail(TP_EARG);
    for (Py_ssize_t i = 0; i < n && !PyErr_Occurred(); i++)
        out[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
    Py_DECREF(seq);
    return PyErr_Occurred() ? -1 : (int)n;
}

/* o as an int32 (a variable, shape id, op or attribute), or -1 with OverflowError or TypeError
 * (a value out of range must not wrap onto another variable) */
static int32_t int32_of(PyObject *o)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < INT32_MIN || v > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "ad.Array: an index out of the int32 range");
        return -1;
    }
    return (int32_t)v;
}

/* C-order strides of dims; returns the size, INT64_MAX when the product overflows (no tape
 * holds that many variables: C->shape refuses the shape; 0 and a nonzero size stay apart) */
static int64_t contiguous(int nd, const int64_t *dims, int64_t *st)
{
    int64_t size = 1;
    int big = 0, empty = 0;
    for (int d = nd - 1; d >= 0; d--) {
        st[d] = size;
        big |= __builtin_mul_overflow(size, dims[d], &size);
        empty |= !dims[d];
    }
    return empty ? 0 : big ? INT64_MAX : size;
}

/* a new Array of recording r: variables first .. of shape (a tuple of ints) */
static PyObject *array_of(PyObject *r, int32_t first, PyObject *shape)
{
    ArrayObject *a = (ArrayObject *)R.array_type->tp_alloc(R.array_type, 0);
    if (!a) return NULL;
    Py_ssize_t nd = PyTuple_GET_SIZE(shape);
    Py_INCREF(r); Py_INCREF(shape);
    a->rec = r; a->p = ((RecObject *)r)->p; a->shape = shape; a->first = first;
    a->ndim = (int)nd;
    a->n0 = nd ? PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, 0)) : 0;
    return (PyObject *)a;
}

/* The elements a block op of r results and operand blocks w reads and writes (a matrix product's
 * operands' sizes are the sum's larger terms); an unknown shape id counts nothing (rec_block
 * refuses it). At RELEASE_GIL_ELEMENTS and more, recording the op (its values computed: a
 * product of 200 x 200 matrices takes ~1 ms) runs with the GIL released, as replays do. */
#define RELEASE_GIL_ELEMENTS 32768
static int64_t block_elements(const tp_tape *t, int64_t r, const int32_t *w, int nb)
{
    int64_t sum = r;
    for (int i = 0; i < nb && sum < RELEASE_GIL_ELEMENTS; i++) {
        if (w[2 * i + 1] < 0 || w[2 * i + 1] >= t->n_shapes) continue;
        const int64_t *s = tp_shape_of(t, w[2 * i + 1]);
        int64_t size = 1;
        for (int d = 0; d < s[0]; d++) size *= s[1 + d];
        sum += size;
    }
    return sum;
}

/* One block op on recording r with results of dims (nd axes) and nb operands' words w: the
 * Array of its results, of `shape` (a Var when shape is () unless array); of size 0 it records
 * nothing. */
static PyObject *block_record(PyObject *rec, int op, int32_t attr, PyObject *shape, int nd,
                              const int64_t *dims, const int32_t *w, int nb, int array)
{
    RecObject *r = (RecObject *)rec;
    int64_t st[MAXD], size = contiguous(nd, dims, st);
    if (!size) return array_of(rec, 0, shape);
    if (r->fast) {                         /* array tapes replay through the general paths */
        for (intptr_t i = 0; i < 2; i++) { /* (pieces and sizes made now: they follow from */
            PyObject *l = rec_lazy(r, (void *)i);            /* `fast` until then) */
            if (!l) return NULL;
            Py_DECREF(l);
        }
        r->fast = 0;
    }
    int32_t zs = block_shape(r->p, nd, dims, st);
    if (zs < 0) return NULL;
    int32_t z;
    /* rec and shape may be borrowed from an Array that another thread changes while the GIL is
     * released (none can touch this open tape: theirs is refused) */
    Py_INCREF(rec); Py_INCREF(shape);
    if (block_elements(r->p, size, w, nb) >= RELEASE_GIL_ELEMENTS) {
        Py_BEGIN_ALLOW_THREADS
        z = C->rec_block(r->p, op, attr, zs, w, nb);
        Py_END_ALLOW_THREADS
    } else
        z = C->rec_block(r->p, op, attr, zs, w, nb);
    PyObject *res = z < 0 ? block_fail(z) : !PyTuple_GET_SIZE(shape) && !array
                    ? make(rec, r->p, z) : array_of(rec, z, shape);
    Py_DECREF(shape); Py_DECREF(rec);
    return res;
}

/* the recording of Array o, or NULL (not an Array on a recording) */
static RecObject *array_rec(PyObject *o)
{
    return R.array_type && Py_TYPE(o) == R.array_type && IS_REC(((ArrayObject *)o)->rec)
           ? (RecObject *)((ArrayObject *)o)->rec : NULL;
}

/* 1 when a module function got n == want arguments, a recording first; else 0 with TypeError */
static int rec_args(PyObject *const *args, Py_ssize_t n, Py_ssize_t want, const char *usage)
{
    if (n == want && IS_REC(args[0])) return 1;
    PyErr_SetString(PyExc_TypeError, usage);
    return 0;
}

/* Python fallbacks of the C number slots: Array.__op__ and __rop__ of tapead/array.py */
enum { ARITH_ADD, ARITH_SUB, ARITH_MUL, ARITH_DIV, N_ARITH, SLOT_MATMUL = N_ARITH, N_SLOTS };
static const char *slot_name[N_SLOTS] = {"add", "sub", "mul", "truediv", "matmul"};
static PyObject *slot_py[N_SLOTS][2];

static PyObject *slot_fallback(int k, PyObject *x, PyObject *y)
{
    if (!slot_py[k][0]) Py_RETURN_NOTIMPLEMENTED;
    return Py_TYPE(x) == R.array_type ? PyObject_CallFunctionObjArgs(slot_py[k][0], x, y, NULL)
                                      : PyObject_CallFunctionObjArgs(slot_py[k][1], y, x, NULL);
}

/* ---- a + b, a - b, a * b, a / b: one MAP recorded here when the operands are Arrays of one
 * shape, Vars and real numbers (Python's float, int); anything else (broadcasting, ndarrays,
 * NumPy scalars, empty arrays) goes to the Python methods of tapead/array.py. */
static const int arith_op[N_ARITH] = {TP_OP_ADD, TP_OP_SUB, TP_OP_MUL, TP_OP_DIV};

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
        if (array_first(b) < 0) return -1;
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
    int64_t dims[TP_MAXDIM], cst[TP_MAXDIM];
    int32_t words[4];
    if (array_rec((PyObject *)a) && a->ndim <= TP_MAXDIM &&
        int_seq(a->shape, dims) >= 0 && contiguous(a->ndim, dims, cst) > 0) {
        int got = map_operand(a, x, dims, cst, words);
        if (got > 0) got = map_operand(a, y, dims, cst, words + 2);
        if (got < 0) return NULL;
        if (got > 0)
            return block_record(a->rec, TP_OP_MAP, arith_op[k], a->shape, a->ndim, dims, words,
                                2, 1);
    }
    if (PyErr_Occurred()) return NULL;
    return slot_fallback(k, x, y);
}

static PyObject *array_add(PyObject *x, PyObject *y) { return arith(ARITH_ADD, x, y); }
static PyObject *array_sub(PyObject *x, PyObject *y) { return arith(ARITH_SUB, x, y); }
static PyObject *array_mul(PyObject *x, PyObject *y) { return arith(ARITH_MUL, x, y); }
static PyObject *array_div(PyObject *x, PyObject *y) { return arith(ARITH_DIV, x, y); }

/* ---- MATMUL: a @ b of blocks (first, shape) with NumPy's rules (matrix·matrix, ·vector,
 * vector·, vector·vector, leading batch axes broadcast); tapead/array.py's matmul hands its
 * operands here, and so does a @ b of two Arrays of one recording. */

/* dims and strides of a matmul operand over the batch axes (nb of them): a 1-d operand
 * becomes a row (x, the left) or a column; broadcast batch axes get stride 0 */
static int matmul_side(int nd, const int64_t *s, int left, int trans, int nb,
                       const int64_t *batch, int64_t *dims, int64_t *st)
{
    int64_t xs[MAXD + 1], xt[MAXD + 1] = {0};
    contiguous(nd, s, xt);
    if (trans) { xt[0] = 1; xt[1] = s[0]; }  /* (2-d) the transpose of a C-order block */
    memcpy(xs, s, (size_t)nd * sizeof *xs);
    if (nd == 1) {                         /* (1, n) with strides (0, 1), or (n, 1), (1, 0) */
        xs[1] = left ? xs[0] : 1; xs[0] = left ? 1 : xs[0];
        xt[1] = left ? 1 : 0; xt[0] = left ? 0 : 1;
        nd = 2;
    }
    for (int d = 0; d < nb; d++) {         /* tapead/array.py's _broadcast_strides */
        int i = d - (nb - (nd - 2));
        dims[d] = batch[d];
        st[d] = i < 0 || (xs[i] == 1 && batch[d] != 1) ? 0 : xt[i];
    }
    for (int d = 0; d < 2; d++) { dims[nb + d] = xs[nd - 2 + d]; st[nb + d] = xt[nd - 2 + d]; }
    return nb + 2;
}

/* a @ b of blocks fa, fb of shapes sa, sb; ta, tb: that operand (2-d) is the transpose of the
 * C-order block at fa (fb), read through its strides (a pending a.T: no PACK) */
static PyObject *matmul_record(PyObject *rec, int32_t fa, PyObject *sa, int ta, int32_t fb,
                               PyObject *sb, int tb)
{
    int64_t a[MAXD], b[MAXD], batch[MAXD], dims[MAXD + 2], st[MAXD + 2];
    int na = int_seq(sa, a), nb = na < 0 ? -1 : int_seq(sb, b);
    if (nb < 0) return NULL;
    if (!na || !nb)
        return PyErr_Format(PyExc_ValueError, "matmul: operands must be at least 1-d; got "
                            "shapes %R and %R", sa, sb);
    int64_t p = na == 1 ? a[0] : a[na - 1], pb = nb == 1 ? b[0] : b[nb - 2];
    if (p != pb)
        return PyErr_Format(PyExc_ValueError, "matmul: shapes %R and %R do not align (%lld != "
                            "%lld)", sa, sb, (long long)p, (long long)pb);
    int xb = na > 2 ? na - 2 : 0, yb = nb > 2 ? nb - 2 : 0, n = xb > yb ? xb : yb;
    for (int d = 0; d < n; d++) {          /* np.broadcast_shapes of the batch axes */
        int64_t x = d - (n - xb) >= 0 ? a[d - (n - xb)] : 1;
        int64_t y = d - (n - yb) >= 0 ? b[d - (n - yb)] : 1;
        if (x != y && x != 1 && y != 1)
            return PyErr_Format(PyExc_ValueError, "matmul: the batch axes of shapes %R and %R "
                                "do not broadcast", sa, sb);
        batch[d] = x == 1 ? y : x;
    }
    int32_t w[4] = {fa, 0, fb, 0};
    if ((ta && na != 2) || (tb && nb != 2))
        return PyErr_Format(PyExc_ValueError, "matmul: a transposed operand is 2-d");
    int nz = matmul_side(na, a, 1, ta, n, batch, dims, st);
    RecObject *r = (RecObject *)rec;
    if ((w[1] = block_shape(r->p, nz, dims, st)) < 0) return NULL;
    matmul_side(nb, b, 0, tb, n, batch, dims, st);
    if ((w[3] = block_shape(r->p, nz, dims, st)) < 0) return NULL;
    dims[n] = na == 1 ? 1 : a[na - 2];     /* the result: batch + (m, q) */
    dims[n + 1] = nb == 1 ? 1 : b[nb - 1];
    PyObject *out = PyTuple_New(n + (na > 1) + (nb > 1));   /* without a vector's axis */
    if (!out) return NULL;
    for (int d = 0; d < PyTuple_GET_SIZE(out); d++) {
        PyObject *v = PyLong_FromLongLong(dims[d < n || na > 1 ? d : d + 1]);
        if (!v) { Py_DECREF(out); return NULL; }
        PyTuple_SET_ITEM(out, d, v);
    }
    PyObject *z = block_record(rec, TP_OP_MATMUL, 0, out, nz, dims, w, 2, 0);
    Py_DECREF(out);
    return z;
}

static PyObject *array_matmul(PyObject *x, PyObject *y)
{
    RecObject *r = array_rec(x);
    ArrayObject *a = (ArrayObject *)x, *b = (ArrayObject *)y;
    if (r && array_rec(y) == r)
        return matmul_record((PyObject *)r, a->first, a->shape, a->pending, b->first, b->shape,
                             b->pending);
    return slot_fallback(SLOT_MATMUL, x, y);
}

/* matmul(rec, fa, sa, fb, sb): tapead/array.py's matmul of its operands' blocks */
static PyObject *py_matmul(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    int32_t f[2];
    int tr[2] = {0, 0};
    const char *usage = "matmul(recording, first, shape, first, shape[, transposed, transposed])";
    if (!rec_args(args, n, n == 7 ? 7 : 5, usage)) return NULL;
    if (!PyTuple_Check(args[2]) || !PyTuple_Check(args[4]))
        return PyErr_Format(PyExc_TypeError, "matmul: shapes are tuples");
    for (int i = 0; i < 2; i++) {
        if ((f[i] = int32_of(args[1 + 2 * i])) == -1 && PyErr_Occurred())
            return NULL;
        if (n == 7 && (tr[i] = PyObject_IsTrue(args[5 + i])) < 0) return NULL;
    }
    return matmul_record(args[0], f[0], args[2], tr[0], f[1], args[4], tr[1]);
}

/* ---- REDUCE, AMAX, AMIN, PROD over axes: z[zmap(i)] of x's index space */

/* the axes of `axis` (None: all, an int, a tuple of ints, each in range) as bits; -1: not
 * such an axis (tapead/array.py's _axes raises its error or normalises it) */
static int64_t axes_bits(PyObject *axis, int nd)
{
    if (axis == Py_None) return nd == 64 ? -1 : (int64_t)((1ULL << nd) - 1);
    Py_ssize_t k = PyTuple_CheckExact(axis) ? PyTuple_GET_SIZE(axis) : 1;
    int64_t bits = 0;
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *o = PyTuple_CheckExact(axis) ? PyTuple_GET_ITEM(axis, i) : axis;
        long v = PyLong_CheckExact(o) ? PyLong_AsLong(o) : LONG_MIN;
        if (v == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
        if (v < -nd || v >= nd || nd >= 64) return -1;
        const int64_t bit = (int64_t)1 << (v < 0 ? v + nd : v);
        if (bits & bit) return -1;                        /* a duplicate: Python's error */
        bits |= bit;
    }
    return bits;
}

/* reduce(op, a, axis, keepdims): one op of Array a over axis (see axes_bits); NotImplemented
 * for any other axis, and for an AMAX or AMIN over an empty axis (Python's errors) */
static PyObject *py_reduce(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    if (n != 4 || !array_rec(args[1])) {
        PyErr_SetString(PyExc_TypeError, "reduce(op, array, axis, keepdims)");
        return NULL;
    }
    ArrayObject *a = (ArrayObject *)args[1];
    int op = int32_of(args[0]), keep = op == -1 && PyErr_Occurred() ? -1 : PyObject_IsTrue(args[3]);
    int64_t x[MAXD], zdims[MAXD], zst[MAXD], zmap[MAXD], xst[MAXD], rdims[MAXD];
    int nd = int_seq(a->shape, x);
    if ((op == -1 || keep < 0 || nd < 0) && PyErr_Occurred()) return NULL;
    int64_t bits = axes_bits(args[2], nd);
    if (bits < 0) Py_RETURN_NOTIMPLEMENTED;
    int nres = 0;
    for (int d = 0; d < nd; d++) {
        int on = (int)(bits >> d & 1);
        if (on && !x[d] && (op == TP_OP_AMAX || op == TP_OP_AMIN)) Py_RETURN_NOTIMPLEMENTED;
        zdims[d] = on ? 1 : x[d];
        nres += keep || !on;
    }
    contiguous(nd, zdims, zst);
    contiguous(nd, x, xst);
    PyObject *res = PyTuple_New(nres);    /* z's dims, without the reduced axes unless keep */
    if (!res) return NULL;
    for (int d = 0, i = 0; d < nd; d++) {
        zmap[d] = bits >> d & 1 ? 0 : zst[d];
        if (!keep && bits >> d & 1) continue;
        rdims[i] = zdims[d];
        PyObject *v = keep && bits >> d & 1 ? PyLong_FromLong(1) : PyTuple_GET_ITEM(a->shape, d);
        Py_XINCREF(v);
        if (!v) { Py_DECREF(res); return NULL; }
        PyTuple_SET_ITEM(res, i++, v);
    }
    PyObject *z = NULL;
    if (array_first(a) < 0) { Py_DECREF(res); return NULL; }
    int32_t attr = block_shape(a->p, nd, x, zmap), w[2] = {a->first, 0};
    if (attr >= 0 && (w[1] = block_shape(a->p, nd, x, xst)) >= 0)
        z = block_record(a->rec, op, attr, res, nres, rdims, w, 1, 0);
    Py_DECREF(res);
    return z;
}
/* ---- strided views: variables first + sum(i_d * st_d) over dims (shape: their tuple), a Var
 * when 0-d, the block itself when C-contiguous, else one PACK (tapead/array_index.py's
 * selections; a.T here) */
static PyObject *strided_record(PyObject *rec, int32_t first, PyObject *shape, int nd,
                                const int64_t *dims, const int64_t *st)
{
    int64_t cst[MAXD];
    int view = 1;
    if (!nd) return make(rec, ((RecObject *)rec)->p, first);
    if (!contiguous(nd, dims, cst)) return array_of(rec, 0, shape);
    for (int d = 0; d < nd; d++) view &= st[d] == cst[d] || dims[d] == 1;
    if (view) return array_of(rec, first, shape);
    int32_t w[2] = {first, block_shape(((RecObject *)rec)->p, nd, dims, st)};
    return w[1] < 0 ? NULL : block_record(rec, TP_OP_PACK, 0, shape, nd, dims, w, 1, 0);
}

/* strided(rec, first, shape, strides) */
static PyObject *py_strided(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    int64_t dims[MAXD], st[MAXD];
    if (!rec_args(args, n, 4, "strided(recording, first, shape, strides)")) return NULL;
    int32_t first = int32_of(args[1]);
    PyObject *shape = first == -1 && PyErr_Occurred() ? NULL : shape_tuple(args[2]);
    int nd = shape ? int_seq(shape, dims) : -1;
    PyObject *z = NULL;
    if (nd >= 0 && int_seq(args[3], st) == nd)
        z = strided_record(args[0], first, shape, nd, dims, st);
    else if (nd >= 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "strided: one stride per axis");
    Py_XDECREF(shape);
    return z;
}

/* a.T: the axes reversed (a view); an empty Array: tapead/array.py's transpose(). Of a 2-d
 * Array whose axes both exceed 1, the result is pending: a matmul reads a's block through
 * transposed strides, anything else records the PACK at first use (array_first); a pending's .T
 * is a's block again. */
static PyObject *array_get_T(ArrayObject *a, void *c)
{
    (void)c;
    int64_t dims[MAXD], cst[MAXD], rd[MAXD], st[MAXD];
    int nd = array_rec((PyObject *)a) ? int_seq(a->shape, dims) : 0;
    if (nd < 0) return NULL;
    if (!array_rec((PyObject *)a) || !contiguous(nd, dims, cst))
        return PyObject_CallMethod((PyObject *)a, "transpose", NULL);
    PyObject *shape = PyTuple_New(nd);
    if (!shape) return NULL;
    for (int d = 0; d < nd; d++) {
        PyObject *v = PyTuple_GET_ITEM(a->shape, nd - 1 - d);
        Py_INCREF(v);
        PyTuple_SET_ITEM(shape, d, v);
        rd[d] = dims[nd - 1 - d]; st[d] = cst[nd - 1 - d];
    }
    PyObject *z;
    if (a->pending || (nd == 2 && dims[0] > 1 && dims[1] > 1)) {
        int rc = C->may_record(a->p);      /* (as recording the PACK would: open, ours) */
        z = rc < 0 ? block_fail(rc) : array_of(a->rec, a->first, shape);
        if (z && !a->pending) {
            ArrayObject *v = (ArrayObject *)z;
            v->pending = v->viewing = 1;
            v->vsrc = a->first;
        }
    } else
        z = strided_record(a->rec, a->first, shape, nd, rd, st);
    Py_DECREF(shape);
    return z;
}

/* a's first variable; a pending a.T records its PACK now (-1: the error) */
static int32_t array_first(ArrayObject *a)
{
    if (!a->pending) return a->first;
    int64_t dims[2], st[2];
    if (int_seq(a->shape, dims) != 2) return -1;
    st[0] = 1; st[1] = dims[0];            /* (c, r) over the C-order (r, c) block */
    PyObject *z = strided_record(a->rec, a->first, a->shape, 2, dims, st);   /* its PACK */
    if (!z) return -1;
    a->first = ((ArrayObject *)z)->first;
    a->pending = 0;
    Py_DECREF(z);
    return a->first;
}

static PyObject *array_get_first(ArrayObject *a, void *c)
{
    (void)c;
    return array_first(a) < 0 ? NULL : PyLong_FromLong(a->first);
}

static int array_put_first(ArrayObject *a, PyObject *v, void *c)
{
    (void)c;
    int32_t f = v ? int32_of(v) : -1;
    if (f < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "Array._first: a variable");
        return -1;
    }
    a->first = f;
    a->pending = a->viewing = 0;
    return 0;
}

/* the block a pending a.T reads (its first), else None */
static PyObject *array_get_tsrc(ArrayObject *a, void *c)
{
    (void)c;
    if (!a->pending) Py_RETURN_NONE;
    return PyLong_FromLong(a->first);
}

/* the block an a.T, pending or recorded, is the transpose of (its first), else None */
static PyObject *array_get_tview(ArrayObject *a, void *c)
{
    (void)c;
    if (!a->viewing) Py_RETURN_NONE;
    return PyLong_FromLong(a->vsrc);
}

/* shape(rec, dims, strides): the id of the shape in the recording's table */
static PyObject *py_shape(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    int64_t dims[MAXD], st[MAXD];
    if (!rec_args(args, n, 3, "shape(recording, dims, strides)")) return NULL;
    int nd = int_seq(args[1], dims);
    if (nd < 0 || int_seq(args[2], st) < 0) return NULL;
    int32_t id = block_shape(((RecObject *)args[0])->p, nd, dims, st);
    return id < 0 ? NULL : PyLong_FromLong(id);
}

/* rec_block(rec, op, attr, shape, blocks, array): one block op of operands blocks, a sequence
 * of (first, shape id) (tapead/array.py's _record) */
static PyObject *py_rec_block(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    int64_t dims[MAXD];
    if (!rec_args(args, n, 6, "rec_block(recording, op, attr, shape, blocks, array)")) return NULL;
    int op = int32_of(args[1]);
    int32_t attr = op == -1 && PyErr_Occurred() ? -1 : int32_of(args[2]);
    int array = PyErr_Occurred() ? -1 : PyObject_IsTrue(args[5]);
    if (array < 0) return NULL;
    PyObject *blocks = PySequence_Fast(args[4], "rec_block: blocks");
    PyObject *shape = blocks ? shape_tuple(args[3]) : NULL, *z = NULL;
    int nd = shape ? int_seq(shape, dims) : -1;
    Py_ssize_t nb = blocks ? PySequence_Fast_GET_SIZE(blocks) : 0;
    int32_t *w = PyMem_Malloc((size_t)(2 * nb + 1) * sizeof *w);
    for (Py_ssize_t i = 0; w && nd >= 0 && i < 2 * nb && !PyErr_Occurred(); i++) {
        PyObject *b = PySequence_Fast_GET_ITEM(blocks, i / 2);
        PyObject *v = PyTuple_Check(b) && PyTuple_GET_SIZE(b) == 2 ? PyTuple_GET_ITEM(b, i % 2)
                                                                     : NULL;
        if (!v) PyErr_SetString(PyExc_TypeError, "rec_block: blocks of (first, shape id)");
        else w[i] = int32_of(v);
    }
    if (!w) PyErr_NoMemory();
    if (!PyErr_Occurred() && array >= 0)
        z = block_record(args[0], op, (int32_t)attr, shape, nd, dims, w, (int)nb, array);
    PyMem_Free(w);
    Py_XDECREF(shape);
    Py_XDECREF(blocks);
    return z;
}

static PyGetSetDef array_getset[] = {
    {"_rec", (getter)array_get_rec, (setter)array_put_rec, "its recording", NULL},
    {"shape", (getter)array_get_shape, (setter)array_put_shape, "its shape (a tuple)", NULL},
    {"T", (getter)array_get_T, NULL, "the axes reversed (a view: no copy while contiguous)", NULL},
    {"_first", (getter)array_get_first, (setter)array_put_first, "its first variable", NULL},
    {"_tsrc", (getter)array_get_tsrc, NULL, "a pending .T's block (its first), else None", NULL},
    {"_tview", (getter)array_get_tview, NULL, "the block a .T views (its first), else None", NULL},
    {NULL}
};

static PyType_Slot array_slots[] = {
    {Py_tp_new, array_new}, {Py_tp_dealloc, array_dealloc},
    {Py_mp_subscript, array_subscript}, {Py_mp_length, array_len},
    {Py_sq_length, array_len}, {Py_sq_item, array_item}, {Py_tp_iter, array_iter},
    {Py_nb_add, array_add}, {Py_nb_subtract, array_sub}, {Py_nb_multiply, array_mul},
    {Py_nb_true_divide, array_div}, {Py_nb_matrix_multiply, array_matmul},
    {Py_tp_getset, array_getset},
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
 * are taken off the class so that ArrayBase's slots serve it; so are + - * / @ (the C MAP and
 * MATMUL paths above, the Python methods their fallback). */
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
    for (int k = 0; k < N_SLOTS; k++)         /* + - * / @: the C slots, these the fallback */
        for (int refl = 0; refl < 2; refl++) {
            char name[32];
            snprintf(name, sizeof name, "__%s%s__", refl ? "r" : "", slot_name[k]);
            PyObject *m = PyDict_GetItemString(dict, name);
            if (!m) continue;
            Py_INCREF(m);
            Py_XSETREF(slot_py[k][refl], m);
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
