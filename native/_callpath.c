/* esrt._callpath: the SEP's per-call path in C (request JSON -> LINKAGE buffers -> COBOL
 * entry -> reply JSON), without one Python object per field.
 *
 * Twin: esrt/mapping/_pycallpath.py (Plan with the same methods); esrt.mapping.codec is the
 * one place that picks between them (ESRT_PUREPYTHON=1 forces the twin).
 *
 * Plan(nodes, inputs, outputs, images)
 *     A program's mapping compiled once (esrt.mapping._pycallpath.plan_spec builds the
 *     arguments from ProgramCodec's nodes).  Keeps a growable scratch buffer for replies
 *     and unescaped strings.
 * Plan.load(buffers, body) -> bool
 *     Reset every buffer to its initial image, then store the request's values straight
 *     from the JSON text.  False means "not handled": the caller runs the Python path
 *     (jsonio.loads + ProgramCodec.load_inputs) from the start, which resets the buffers
 *     again and owns every error message.
 * Plan.dump(buffers) -> bytes | None
 *     The out/io parameters as compact JSON, byte for byte what
 *     jsonio.dumps(codec.dump_outputs(buffers)) gives; None when not handled.
 * call(address, buffers) -> int | None
 *     Call the COBOL entry at `address` (int(ffi.cast("uintptr_t", fn))) with one pointer
 *     per buffer and return its RETURN-CODE; None for more than MAX_CALL_ARGS buffers.
 *
 * The JSON steps live in _callpath_in.c (request) and _callpath_out.c (reply); this file
 * compiles plans, holds the Python methods and calls COBOL.
 *
 * "Not handled" is the rule that keeps C and Python from ever disagreeing: whatever this
 * file is not sure of (unknown or duplicate keys, case-folded names, values that do not fit,
 * wrong types, surrogate escapes, invalid UTF-8, COMP-1/COMP-2, odd packed nibbles...) is
 * left to Python.  Every offset is checked against its buffer's length before use.
 */

#include "_callpath.h"

u128 callpath_pow10[MAX_DIGITS + 1];

/* ---- compiling a plan ------------------------------------------------------------------ */

/* COBOL has 49 levels; a plan nested deeper is not from a copybook, and the recursion over it
   (here, and when loading and dumping) must stay bounded. */
#define MAX_DEPTH 64

static int
count_nodes(PyObject *desc, Py_ssize_t *count, int depth)
{
    if (depth > MAX_DEPTH) {
        PyErr_Format(PyExc_ValueError, "Plan: nodes nested more than %d levels deep (COBOL "
                     "has 49 levels); build it with _pycallpath.plan_spec", MAX_DEPTH);
        return -1;
    }
    if (!PyTuple_Check(desc) || PyTuple_GET_SIZE(desc) != 11 || !PyTuple_Check(
            PyTuple_GET_ITEM(desc, 10))) {
        PyErr_SetString(PyExc_TypeError, "Plan: each node must be an 11-tuple whose last item "
                        "is a tuple of children; build it with _pycallpath.plan_spec");
        return -1;
    }
    PyObject *children = PyTuple_GET_ITEM(desc, 10);
    *count += PyTuple_GET_SIZE(children);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(children); i++)
        if (count_nodes(PyTuple_GET_ITEM(children, i), count, depth + 1) < 0)
            return -1;
    return 0;
}

static int
fill_node(Plan *plan, PyObject *desc, Py_ssize_t slot, Py_ssize_t *next_free)
{
    Node *node = &plan->nodes[slot];
    long values[10];
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 5)
            continue;
        values[i] = PyLong_AsLong(PyTuple_GET_ITEM(desc, i));
        if (values[i] == -1 && PyErr_Occurred())
            return -1;
    }
    PyObject *name = PyTuple_GET_ITEM(desc, 4), *key = PyTuple_GET_ITEM(desc, 5);
    if (!PyBytes_Check(name) || !PyBytes_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "Plan: node name and key must be bytes");
        return -1;
    }
    node->kind = (int)values[0];
    node->offset = values[1];
    node->length = values[2];
    node->occurs = values[3];
    node->name = PyBytes_AS_STRING(name);
    node->name_len = PyBytes_GET_SIZE(name);
    node->key = PyBytes_AS_STRING(key);
    node->key_len = PyBytes_GET_SIZE(key);
    node->digits = values[6];
    node->scale = values[7];
    node->is_signed = values[8] != 0;
    node->mode = (int)values[9];
    node->stamp = 0;
    node->child_base = node->occurs ? 0 : -node->offset;
    if (node->kind < K_GROUP || node->kind > K_OTHER || node->length < 0 || node->occurs < 0)
        node->kind = K_OTHER;
    /* Shapes the field encoders below do not cover go to Python (see _codec.c). */
    int separate = node->is_signed && node->mode >= SIGN_TRAILING_SEPARATE;
    if ((node->kind == K_DISPLAY && (node->digits < 1 || node->digits > MAX_DIGITS
                                     || node->length != node->digits + separate))
        || (node->kind == K_BINARY && (node->length < 1 || node->length > 8
                                       || node->digits < 1 || node->digits > MAX_DIGITS))
        || (node->kind == K_PACKED && (node->length < 1 || node->length > MAX_DIGITS / 2 + 1
                                       || node->digits < 1 || node->digits > node->length * 2 - 1))
        || (node->kind != K_GROUP && node->kind != K_STRING
            && (node->scale < -MAX_DIGITS || node->scale > 2 * MAX_DIGITS)))
        node->kind = K_OTHER;
    PyObject *children = PyTuple_GET_ITEM(desc, 10);
    node->nchildren = PyTuple_GET_SIZE(children);
    node->first_child = *next_free;
    *next_free += node->nchildren;
    Py_ssize_t first = node->first_child;   /* plan->nodes does not move, node stays valid */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(children); i++)
        if (fill_node(plan, PyTuple_GET_ITEM(children, i), first + i, next_free) < 0)
            return -1;
    return 0;
}

static int
plan_init(Plan *self, PyObject *args, PyObject *kwds)
{
    PyObject *nodes, *inputs, *outputs, *images;
    (void)kwds;
    if (self->nodes != NULL) {
        PyErr_SetString(PyExc_TypeError, "Plan is already initialised");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "O!O!O!O!:Plan", &PyTuple_Type, &nodes, &PyTuple_Type, &inputs,
                          &PyTuple_Type, &outputs, &PyTuple_Type, &images))
        return -1;
    Py_ssize_t nparams = PyTuple_GET_SIZE(nodes);
    if (PyTuple_GET_SIZE(inputs) != nparams || PyTuple_GET_SIZE(images) != nparams) {
        PyErr_SetString(PyExc_ValueError, "Plan: nodes, inputs and images must have one entry "
                        "per parameter");
        return -1;
    }
    Py_ssize_t count = nparams;
    for (Py_ssize_t i = 0; i < nparams; i++)
        if (count_nodes(PyTuple_GET_ITEM(nodes, i), &count, 1) < 0)
            return -1;
    self->spec = Py_BuildValue("(OOOO)", nodes, inputs, outputs, images);
    self->nodes = PyMem_Calloc(count + 1, sizeof(Node));
    self->is_input = PyMem_Calloc(nparams + 1, 1);
    self->outputs = PyMem_Calloc(PyTuple_GET_SIZE(outputs) + 1, sizeof(Py_ssize_t));
    self->images = PyMem_Calloc(nparams + 1, sizeof(unsigned char *));
    self->image_len = PyMem_Calloc(nparams + 1, sizeof(Py_ssize_t));
    self->scratch_size = 256;
    self->scratch = PyMem_Malloc(self->scratch_size);
    self->buffer_data = PyMem_Calloc(nparams + 1, sizeof(unsigned char *));
    self->buffer_len = PyMem_Calloc(nparams + 1, sizeof(Py_ssize_t));
    if (self->spec == NULL || !self->nodes || !self->is_input || !self->outputs || !self->images
        || !self->image_len || !self->scratch || !self->buffer_data || !self->buffer_len) {
        PyErr_NoMemory();
        return -1;
    }
    self->nnodes = count;
    self->nparams = nparams;
    Py_ssize_t next_free = nparams;
    for (Py_ssize_t i = 0; i < nparams; i++) {
        if (fill_node(self, PyTuple_GET_ITEM(nodes, i), i, &next_free) < 0)
            return -1;
        int flag = PyObject_IsTrue(PyTuple_GET_ITEM(inputs, i));
        PyObject *image = PyTuple_GET_ITEM(images, i);
        if (flag < 0)
            return -1;
        if (!PyBytes_Check(image)) {
            PyErr_SetString(PyExc_TypeError, "Plan: images must be bytes");
            return -1;
        }
        self->is_input[i] = (char)flag;
        self->images[i] = (const unsigned char *)PyBytes_AS_STRING(image);
        self->image_len[i] = PyBytes_GET_SIZE(image);
    }
    self->noutputs = PyTuple_GET_SIZE(outputs);
    for (Py_ssize_t i = 0; i < self->noutputs; i++) {
        Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(outputs, i));
        if (index == -1 && PyErr_Occurred())
            return -1;
        if (index < 0 || index >= nparams) {
            PyErr_Format(PyExc_ValueError, "Plan: output %zd names parameter %zd, but there "
                         "are %zd; build the arguments with _pycallpath.plan_spec", i, index,
                         nparams);
            return -1;
        }
        self->outputs[i] = index;
    }
    self->ready = 1;
    return 0;
}

static void
plan_dealloc(Plan *self)
{
    Py_XDECREF(self->spec);
    PyMem_Free(self->nodes);
    PyMem_Free(self->is_input);
    PyMem_Free(self->outputs);
    PyMem_Free(self->images);
    PyMem_Free(self->image_len);
    PyMem_Free(self->scratch);
    PyMem_Free(self->buffer_data);
    PyMem_Free(self->buffer_len);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

int
callpath_reserve(Plan *plan, Py_ssize_t more)
{
    if (plan->scratch_size - plan->scratch_used >= more)
        return 0;
    Py_ssize_t size = plan->scratch_size;
    while (size - plan->scratch_used < more) {
        if (size > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        size *= 2;
    }
    unsigned char *grown = PyMem_Realloc(plan->scratch, size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    plan->scratch = grown;
    plan->scratch_size = size;
    return 0;
}

/* The buffers as (pointer, length) pairs: only exact bytearrays, so that getting them runs
 * no Python code (nothing can resize them while we hold the pointers). */
static int
get_buffers(Plan *plan, PyObject *buffers, unsigned char **data, Py_ssize_t *lengths)
{
    if (!PyList_CheckExact(buffers) || PyList_GET_SIZE(buffers) != plan->nparams)
        return DECLINE;
    for (Py_ssize_t i = 0; i < plan->nparams; i++) {
        PyObject *buffer = PyList_GET_ITEM(buffers, i);
        if (!PyByteArray_CheckExact(buffer))
            return DECLINE;
        data[i] = (unsigned char *)PyByteArray_AS_STRING(buffer);
        lengths[i] = PyByteArray_GET_SIZE(buffer);
    }
    return DONE;
}

/* ---- Python methods ------------------------------------------------------------------ */

static int
check_ready(Plan *self)
{
    if (self->ready)
        return 0;
    PyErr_SetString(PyExc_TypeError, "this Plan was never initialised (or its __init__ "
                    "failed); build one with Plan(*esrt.mapping._pycallpath.plan_spec(codec))");
    return -1;
}

static PyObject *
plan_load(Plan *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_ready(self) < 0)
        return NULL;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "Plan.load(buffers, body) takes 2 arguments");
        return NULL;
    }
    /* The body first: getting its buffer could run Python code, which could resize or free
     * the bytearrays whose pointers get_buffers takes. */
    Py_buffer body;
    if (PyObject_GetBuffer(args[1], &body, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();      /* a str body, say: the Python path takes it */
        Py_RETURN_FALSE;
    }
    unsigned char **data = self->buffer_data;
    Py_ssize_t *lengths = self->buffer_len;
    int usable = get_buffers(self, args[0], data, lengths) == DONE;
    for (Py_ssize_t i = 0; usable && i < self->nparams; i++)
        usable = lengths[i] == self->image_len[i];
    if (!usable) {
        PyBuffer_Release(&body);
        Py_RETURN_FALSE;
    }
    for (Py_ssize_t i = 0; i < self->nparams; i++)
        memcpy(data[i], self->images[i], lengths[i]);
    int status = callpath_load_request(self, data, lengths, body.buf, body.len);
    PyBuffer_Release(&body);
    if (status == FAILED)
        return NULL;
    return PyBool_FromLong(status == DONE);
}

static PyObject *
plan_dump(Plan *self, PyObject *buffers)
{
    if (check_ready(self) < 0)
        return NULL;
    unsigned char **data = self->buffer_data;
    Py_ssize_t *lengths = self->buffer_len;
    if (get_buffers(self, buffers, data, lengths) != DONE)
        Py_RETURN_NONE;
    int status = callpath_dump_reply(self, data, lengths);
    if (status == FAILED)
        return NULL;
    if (status == DECLINE)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)self->scratch, self->scratch_used);
}

/* ---- calling COBOL -------------------------------------------------------------------- */

typedef unsigned char *P;

/* cobc's entry point is int NAME(cob_u8_t *, ...) with one fixed pointer per USING item,
 * so it is called through the exact prototype for its count. */
static int
call_entry(void *address, P *a, Py_ssize_t n)
{
    switch (n) {
    case 0: return ((int (*)(void))address)();
    case 1: return ((int (*)(P))address)(a[0]);
    case 2: return ((int (*)(P, P))address)(a[0], a[1]);
    case 3: return ((int (*)(P, P, P))address)(a[0], a[1], a[2]);
    case 4: return ((int (*)(P, P, P, P))address)(a[0], a[1], a[2], a[3]);
    case 5: return ((int (*)(P, P, P, P, P))address)(a[0], a[1], a[2], a[3], a[4]);
    case 6: return ((int (*)(P, P, P, P, P, P))address)(a[0], a[1], a[2], a[3], a[4], a[5]);
    case 7: return ((int (*)(P, P, P, P, P, P, P))address)(a[0], a[1], a[2], a[3], a[4],
                                                             a[5], a[6]);
    case 8: return ((int (*)(P, P, P, P, P, P, P, P))address)(a[0], a[1], a[2], a[3], a[4],
                                                                a[5], a[6], a[7]);
    case 9: return ((int (*)(P, P, P, P, P, P, P, P, P))address)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
    case 10: return ((int (*)(P, P, P, P, P, P, P, P, P, P))address)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
    case 11: return ((int (*)(P, P, P, P, P, P, P, P, P, P, P))address)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10]);
    case 12: return ((int (*)(P, P, P, P, P, P, P, P, P, P, P, P))address)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
    case 13: return ((int (*)(P, P, P, P, P, P, P, P, P, P, P, P, P))address)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12]);
    case 14: return ((int (*)(P, P, P, P, P, P, P, P, P, P, P, P, P, P))address)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
            a[13]);
    case 15: return ((int (*)(P, P, P, P, P, P, P, P, P, P, P, P, P, P, P))address)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
            a[13], a[14]);
    default: return ((int (*)(P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P))address)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
            a[13], a[14], a[15]);
    }
}

static PyObject *
call(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "call(address, buffers) takes 2 arguments");
        return NULL;
    }
    void *address = PyLong_AsVoidPtr(args[0]);
    if (address == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "call: the entry point address is 0; pass "
                            "int(ffi.cast('uintptr_t', function)) of a loaded program");
        return NULL;
    }
    PyObject *sequence = PySequence_Fast(args[1], "call: buffers must be a list of bytearrays");
    if (sequence == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    if (count > MAX_CALL_ARGS) {
        Py_DECREF(sequence);
        Py_RETURN_NONE;
    }
    Py_buffer views[MAX_CALL_ARGS];
    P pointers[MAX_CALL_ARGS];
    Py_ssize_t held = 0;
    for (; held < count; held++) {
        /* The exports pin the buffers: nothing can resize them while COBOL writes. */
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(sequence, held), &views[held],
                               PyBUF_WRITABLE) < 0)
            break;
        pointers[held] = views[held].buf;
    }
    int code = 0;
    if (held == count) {
        /* As cffi does, other threads run while the program runs. */
        Py_BEGIN_ALLOW_THREADS
        code = call_entry(address, pointers, count);
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t i = 0; i < held; i++)
        PyBuffer_Release(&views[i]);
    Py_DECREF(sequence);
    return held == count ? PyLong_FromLong(code) : NULL;
}

/* ---- module --------------------------------------------------------------------------- */

static PyMethodDef plan_methods[] = {
    {"load", (PyCFunction)(void (*)(void))plan_load, METH_FASTCALL,
     "load(buffers, body) -> bool: reset the buffers and store the request; False: not "
     "handled, run the Python path"},
    {"dump", (PyCFunction)plan_dump, METH_O,
     "dump(buffers) -> bytes | None: the out/io parameters as compact JSON; None: not handled"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "esrt._callpath.Plan",
    .tp_basicsize = sizeof(Plan),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Plan(nodes, inputs, outputs, images): one program's compiled call path",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)plan_init,
    .tp_dealloc = (destructor)plan_dealloc,
    .tp_methods = plan_methods,
};

static PyMethodDef callpath_methods[] = {
    {"call", (PyCFunction)(void (*)(void))call, METH_FASTCALL,
     "call(address, buffers) -> int | None: run a COBOL entry point with one pointer per "
     "buffer; None when there are more than MAX_CALL_ARGS buffers (use cffi)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef callpath_module = {
    PyModuleDef_HEAD_INIT, "esrt._callpath",
    "C twin of esrt.mapping._pycallpath (pick through esrt.mapping.codec, not directly).",
    -1, callpath_methods, NULL, NULL, NULL, NULL,
};

/* Read at import from the twin (cobol_display.h). */
int display_sign_by_nibble;

PyMODINIT_FUNC
PyInit__callpath(void)
{
    if (read_display_sign_rule() < 0)
        return NULL;
    callpath_pow10[0] = 1;
    for (int i = 1; i <= MAX_DIGITS; i++)
        callpath_pow10[i] = callpath_pow10[i - 1] * 10;
    if (PyType_Ready(&PlanType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&callpath_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&PlanType);
    if (PyModule_AddObject(module, "Plan", (PyObject *)&PlanType) < 0
        || PyModule_AddIntConstant(module, "MAX_CALL_ARGS", MAX_CALL_ARGS) < 0) {
        Py_DECREF(&PlanType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
