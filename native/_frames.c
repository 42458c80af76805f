/* esrt._frames: splitting length-prefixed frames and reading binary request frames in C.
 *
 * Twins: esrt.wire.split_frames_python and esrt.wire.parse_request_fields_python, with the
 * same signatures and results; esrt/native.py loads this module (ESRT_PUREPYTHON=1 forces the
 * twins).  Both functions only take the fast path: anything malformed or oversized is left to
 * the Python code, which owns every error message, so the two can never disagree on one.
 *
 * split_frames(buffer, max_frame) -> (payloads, consumed)
 *     Whole frames at the start of `buffer` (4-byte big-endian length, then that many bytes),
 *     each at most max_frame bytes long, as a list of bytes; `consumed` is where the first
 *     frame not returned begins (an incomplete one, or one longer than max_frame).
 * parse_request_fields(payload) -> (request_id, service, key, params) or None
 *     The fields of a well-formed request frame (see esrt/wire.py); None when it is not one.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define MAGIC 0xE5
#define VERSION 1
#define KIND_REQUEST 1
#define MAX_KEY 200
#define FIXED_SIZE 11   /* magic, version, kind, u64 request id */

static uint32_t
be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static PyObject *
split_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "split_frames(buffer, max_frame) takes 2 arguments");
        return NULL;
    }
    Py_ssize_t max_frame = PyLong_AsSsize_t(args[1]);
    if (max_frame == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *payloads = PyList_New(0);
    if (payloads == NULL)
        goto fail;
    const unsigned char *data = view.buf;
    Py_ssize_t start = 0;
    while (view.len - start >= 4) {
        Py_ssize_t size = be32(data + start);
        if (size > max_frame || view.len - start - 4 < size)
            break;
        PyObject *payload = PyBytes_FromStringAndSize((const char *)data + start + 4, size);
        if (payload == NULL)
            goto fail;
        int appended = PyList_Append(payloads, payload);
        Py_DECREF(payload);
        if (appended < 0)
            goto fail;
        start += 4 + size;
    }
    PyBuffer_Release(&view);
    PyObject *result = Py_BuildValue("(Nn)", payloads, start);
    return result;
fail:
    Py_XDECREF(payloads);
    PyBuffer_Release(&view);
    return NULL;
}

static PyObject *
parse_request_fields(PyObject *module, PyObject *payload_object)
{
    Py_buffer view;
    if (PyObject_GetBuffer(payload_object, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *p = view.buf;
    Py_ssize_t end = view.len, at = FIXED_SIZE;
    PyObject *result = NULL;
    if (end < FIXED_SIZE || p[0] != MAGIC || p[1] != VERSION || p[2] != KIND_REQUEST)
        goto malformed;
    unsigned long long request_id = 0;
    for (int i = 3; i < FIXED_SIZE; i++)
        request_id = (request_id << 8) | p[i];
    if (at >= end)
        goto malformed;
    Py_ssize_t service_size = p[at++];
    if (service_size == 0 || at + service_size > end)
        goto malformed;
    Py_ssize_t service_at = at;
    at += service_size;
    if (at >= end)
        goto malformed;
    Py_ssize_t key_size = p[at++];
    if (key_size > MAX_KEY || at + key_size > end)
        goto malformed;
    Py_ssize_t key_at = at;
    at += key_size;
    result = Py_BuildValue("(Ky#y#y#)", request_id,
                           (const char *)p + service_at, service_size,
                           (const char *)p + key_at, key_size,
                           (const char *)p + at, end - at);
    PyBuffer_Release(&view);
    return result;
malformed:
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyMethodDef frames_methods[] = {
    {"split_frames", (PyCFunction)(void (*)(void))split_frames, METH_FASTCALL,
     "split_frames(buffer, max_frame) -> (payloads, consumed)"},
    {"parse_request_fields", parse_request_fields, METH_O,
     "parse_request_fields(payload) -> (request_id, service, key, params) or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef frames_module = {
    PyModuleDef_HEAD_INIT, "esrt._frames",
    "C twin of esrt.wire's frame splitting and request parsing (load through esrt.native).",
    -1, frames_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__frames(void)
{
    return PyModule_Create(&frames_module);
}
