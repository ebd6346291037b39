/* TapeBase (Tape's fields and its C gradient path) and record(): ad.record in one call.
 * Part of tapead._fast: included once by csrc/fast.c, in order, after its types. */
/* ---- TapeBase: Tape's fields, and gradient ------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    PyObject *rec;           /* the current recording */
    PyObject *fn;            /* f of ad.record (re-recorded where a guard flips), or None */
    Py_ssize_t rerecords;
    char optimize;           /* each recording is optimised (Tape.optimize): re-record in Python */
    char general;            /* ad.record(..., arrays=...): re-record through tapead/tape.py */
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
        in.x = tp_last(t); in.heap = NULL; in.has_view = 0;
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

/* w times the gradient at x of a recording whose input is several pieces (the general path's),
 * x a tuple or list of C-contiguous float64 arrays of the pieces' shapes: read in place
 * (tp_vjp_parts), the result split by rec.shape_x; the output's value in *y if y. 1 with *res;
 * 0 not taken here (any other x, a branch guard flipped: the general path, with its errors and
 * re-recording); -1 error. */
#define PIECES_MAX 16
static int vjp_pieces(RecObject *r, PyObject *x, double w, double *y, PyObject **res)
{
    tp_tape *t = r->p;
    if (readable(t) < 0) return -1;
    if (t->n_outputs != 1 || r->lazy || !r->pieces || !PyList_CheckExact(r->pieces) ||
        !(PyList_CheckExact(x) || PyTuple_CheckExact(x))) return 0;
    const Py_ssize_t np = PyList_GET_SIZE(r->pieces);
    if (np < 2 || np > PIECES_MAX || PySequence_Fast_GET_SIZE(x) != np) return 0;   /* one piece:
                                                   x is that piece, never a sequence of it */
    PyObject **items = PySequence_Fast_ITEMS(x);
    Py_buffer v[PIECES_MAX];
    const double *part[PIECES_MAX];
    int64_t len[PIECES_MAX], sum = 0;
    Py_ssize_t got = 0;
    for (; got < np; got++) {
        PyObject *shape = PyList_GET_ITEM(r->pieces, got);
        if (!PyTuple_CheckExact(shape) || !PyObject_CheckBuffer(items[got])) break;
        if (PyObject_GetBuffer(items[got], &v[got], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            PyErr_Clear();
            break;
        }
        const char *f = v[got].format;
        int ok = v[got].itemsize == 8 && f && (!strcmp(f, "d") || !strcmp(f, "<d") ||
                 !strcmp(f, "=d")) && v[got].ndim == PyTuple_GET_SIZE(shape) &&
                 (uintptr_t)v[got].buf % sizeof(double) == 0;
        for (int d = 0; ok && d < v[got].ndim; d++)
            ok = PyLong_CheckExact(PyTuple_GET_ITEM(shape, d)) &&
                 PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, d)) == v[got].shape[d];
        if (!ok) { PyErr_Clear(); PyBuffer_Release(&v[got]); break; }
        part[got] = v[got].buf;
        len[got] = v[got].len / 8;
        sum += len[got];
    }
    int k = 0;
    if (got == np && sum == t->n_inputs) {
        PyObject *n = PyLong_FromLongLong(sum);
        PyObject *arr = n ? PyObject_CallOneArg(R.np_empty, n) : NULL;
        Py_XDECREF(n);
        Py_buffer out;
        k = -1;
        if (arr && out_buffer(arr, &out, sum) == 0) {
            int rc;
            Py_BEGIN_ALLOW_THREADS
            rc = C->vjp_parts(t, np, part, len, 1, &w, y, out.buf);
            Py_END_ALLOW_THREADS
            PyBuffer_Release(&out);
            if (rc == TP_EBRANCH) k = 0;
            else if (rc < 0) status_error(rc);
            else k = (*res = PyObject_CallMethodOneArg((PyObject *)r, R.s_shape_x, arr)) ? 1 : -1;
        }
        Py_XDECREF(arr);
    }
    for (Py_ssize_t i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    return k;
}

/* vjp1(recording, x, w): (y, w * gradient) of a one-output recording at x given in pieces as
 * vjp_pieces takes them, w a float; NotImplemented for anything else (Tape.vjp's general path) */
static PyObject *py_vjp1(PyObject *mod, PyObject *const *args, Py_ssize_t n)
{
    (void)mod;
    if (n != 3 || !IS_REC(args[0])) {
        PyErr_SetString(PyExc_TypeError, "vjp1(recording, x, w)");
        return NULL;
    }
    RecObject *r = (RecObject *)args[0];
    double w, y;
    PyObject *g = NULL;
    if (r->fast || r->n_out != 1 || !r->out_shape || !PyTuple_CheckExact(r->out_shape) ||
        PyTuple_GET_SIZE(r->out_shape) || !plain_number(args[2], &w)) Py_RETURN_NOTIMPLEMENTED;
    int k = vjp_pieces(r, args[1], w, &y, &g);
    if (k < 0) return NULL;
    if (k == 0) Py_RETURN_NOTIMPLEMENTED;
    PyObject *out = Py_BuildValue("(dN)", y, g);
    return out;
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
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw && nargs + nkw < 8; i++)      /* batch=: Tape._gradient_batch */
        if (!PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "batch")) {
            PyObject *stack[8] = {(PyObject *)self};
            for (Py_ssize_t j = 0; j < nargs + nkw; j++) stack[j + 1] = args[j];
            return PyObject_VectorcallMethod(R.s_batched, stack, (size_t)nargs + 1, kwnames);
        }
    if (parse_x("gradient", args, nargs, kwnames, &x) < 0) return NULL;
    Py_XINCREF(rec);
    for (int again = 0; rec && IS_REC(rec); again = 1) {
        RecObject *r = (RecObject *)rec;
        if (!r->fast && r->n_out == 1 && x != Py_None && !again) {   /* pieces, arrays */
            int k = vjp_pieces(r, x, 1.0, NULL, &res);
            if (k == 1 || k < 0) { Py_DECREF(rec); return res; }
            break;
        }
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
        if (self->fn && self->fn != Py_None && x != Py_None && !self->optimize &&
            !self->general) {
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
     "gradient($self, /, x=None, *, batch=False)\n--\n\n"
     "Gradient of the scalar output at x, shaped like x (one primal + one adjoint sweep); a "
     "tuple of floats for a tape recorded from several scalars. batch=True: x has a leading axis "
     "of points (tapead/batch.py)."},
    {NULL}
};

static PyMemberDef tape_members[] = {
    {"_rec", T_OBJECT, offsetof(TapeObject, rec), 0, "the current recording"},
    {"_fn", T_OBJECT, offsetof(TapeObject, fn), 0, "f of ad.record, or None"},
    {"_rerecords", T_PYSSIZET, offsetof(TapeObject, rerecords), 0, "re-recordings so far"},
    {"_optimize", T_BOOL, offsetof(TapeObject, optimize), 0, "re-recordings are optimised"},
    {"_general", T_BOOL, offsetof(TapeObject, general), 0,
     "re-recordings go through tapead/tape.py (ad.record(..., arrays=True or False))"},
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
 * numbers), f gets a Var per scalar or an ad.Array (csrc/fast_array.h), and records in this thread with
 * nothing else recording. tape NULL: a new Tape (f as its _fn); else a re-recording of tape (its
 * guards flipped), which becomes its recording. Returns the Tape (the new recording for a
 * re-record), or NotImplemented before doing anything when the call is not of that form: the
 * general path of tapead/tape.py takes it then. The steps and their errors are the general
 * path's. */
static PyObject *record_into(PyObject *f, PyObject *const *items, Py_ssize_t k, PyObject *tape)
{
    if (!R.rec_type || !R.tape_type || !R.np_empty || !R.array_type) {
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
    if ((rc = C->claim(r->p)) < 0 || (rc = (int)C->add_inputs(r->p, in.x, m)) < 0) {
        status_error(rc);
        goto done;
    }
    xin_release(&in);
    Py_XINCREF(outer);
    if (current_set((PyObject *)r) < 0) { Py_XDECREF(outer); goto close; }
    set = 1;
    if (kind == 1) {                              /* an ad.Array of the m inputs */
        if (!(arr = array_make(R.array_type, (PyObject *)r, r->p, 0, (Py_ssize_t)m))) goto close;
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
        if ((rc = C->set_outputs(r->p, &idx, 1)) < 0) { status_error(rc); goto close; }
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
    C->close(r->p);
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

