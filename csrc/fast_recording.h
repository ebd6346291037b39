/* The recording object and the thread's current recording.
 * Part of tapead._fast: included once by csrc/fast.c, in order, after its types. */
/* ---- Recording ------------------------------------------------------------------------------ */
static RecObject *rec_alloc(PyTypeObject *type)
{
    tp_tape *p = C ? C->tape_new() : NULL;
    if (!p) {
        PyErr_SetString(PyExc_MemoryError, "could not allocate a tape");
        return NULL;
    }
    RecObject *r = (RecObject *)type->tp_alloc(type, 0);
    if (!r) { C->tape_free(p); return NULL; }
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
    Py_CLEAR(r->sparse);
    if (r->p_obj) Py_CLEAR(r->p_obj);             /* frees the tape unless someone holds it */
    else if (r->p) C->tape_free(r->p);
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

/* The field of a lazy attribute: 0 pieces, 1 sizes, 2 guards, 3 sites, 4 colouring, 5 sparse */
static PyObject **rec_slot(RecObject *r, void *which)
{
    switch ((int)(intptr_t)which) {
    case 0: return &r->pieces;
    case 1: return &r->sizes;
    case 2: return &r->guards;
    case 3: return &r->sites;
    case 5: return &r->sparse;
    default: return &r->colouring;
    }
}

static PyObject *rec_lazy(RecObject *r, void *which)
{
    PyObject **slot = rec_slot(r, which);
    if (slot == &r->colouring && !r->colouring) Py_RETURN_FALSE;   /* False until found */
    if (!*slot) {
        int w = (int)(intptr_t)which;
        *slot = w < 2 ? lazy_inputs(r, w) : w == 2 ? PyList_New(0) : PyDict_New();  /* 3, 5 */
        if (!*slot) return NULL;
    }
    Py_INCREF(*slot);
    return *slot;
}

static int rec_set(RecObject *r, PyObject *v, void *which)
{
    PyObject **slot = rec_slot(r, which);
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
    {"sparse", (getter)rec_lazy, (setter)rec_set,
     "tapead/sparse.py's cache: the Jacobian's pattern and plans, the last colours", (void *)5},
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

