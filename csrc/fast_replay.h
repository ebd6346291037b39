/* Replays of small tapes (gradient, forward) without cffi's conversions.
 * Part of tapead._fast: included once by csrc/fast.c, in order, after its types. */
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
            (*m < 0 ? in->view.len >= 8 : in->view.len == *m * 8) &&
            (uintptr_t)in->view.buf % sizeof(double) == 0) {  /* misaligned: the general path */
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
    if (C->n_ops(t) > RELEASE_GIL_ABOVE) {
        Py_BEGIN_ALLOW_THREADS
        rc = C->vjp(t, x, 1, &one, NULL, g);
        Py_END_ALLOW_THREADS
    } else rc = C->vjp(t, x, 1, &one, NULL, g);
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
        in.x = tp_last(t); in.heap = NULL; in.has_view = 0;
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
    if (C->n_ops(t) > RELEASE_GIL_ABOVE) {
        Py_BEGIN_ALLOW_THREADS
        rc = C->forward(t, in.x, out.buf);
        Py_END_ALLOW_THREADS
    } else rc = C->forward(t, in.x, out.buf);
    PyBuffer_Release(&out);
    xin_release(&in);
    if (rc < 0) return status_error(rc);
    Py_RETURN_NONE;
}

