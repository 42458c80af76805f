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
 * call_frame(request_id, service, key, idempotent, ttl, body) -> bytes
 *     A region -> SEP CALL frame (see esrt/sep/protocol.py; twin: call_frame_python there),
 *     the bytes encode_frame makes of the same fields.
 * reply_fields(payload) -> (request_id, status, flags, rc, attempts, body) or None
 *     A SEP's REPLY without error text (twin: reply_fields_python); None for anything else.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

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

#define SEP_CALL 1
#define SEP_IDEMPOTENT 1
#define SEP_REQUEST_SIZE 14   /* kind, flags, u16 service size, u16 key size, u32 id, u32 ttl */

static void
put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void
put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* UTF-8 of `text`, a lone surrogate written as a backslash escape (as protocol._bytes does). */
static PyObject *
utf8(PyObject *text)
{
    return PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace");
}

/* A request id or ttl: the twin's ValueError for anything outside 32 bits. */
static int
as_u32(PyObject *number, uint32_t *out)
{
    long long value = PyLong_AsLongLong(number);
    if (value == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        value = -1;
    }
    if (value < 0 || value > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_ValueError, "a call frame's request id and ttl are 32-bit");
        return -1;
    }
    *out = (uint32_t)value;
    return 0;
}

static PyObject *
call_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "call_frame(request_id, service, key, idempotent, ttl, body) takes 6 "
                        "arguments");
        return NULL;
    }
    uint32_t request_id, ttl;
    if (as_u32(args[0], &request_id) < 0 || as_u32(args[4], &ttl) < 0)
        return NULL;
    int idempotent = PyObject_IsTrue(args[3]);
    if (idempotent < 0)
        return NULL;
    PyObject *service = utf8(args[1]), *key = service == NULL ? NULL : utf8(args[2]);
    PyObject *frame = NULL;
    Py_buffer body = {0};
    if (key == NULL || PyObject_GetBuffer(args[5], &body, PyBUF_SIMPLE) < 0)
        goto done;
    Py_ssize_t service_size = PyBytes_GET_SIZE(service), key_size = PyBytes_GET_SIZE(key);
    if (service_size > 0xFFFF || key_size > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "a call frame's service and key are at most 65535 "
                                          "bytes long");
        goto done;
    }
    Py_ssize_t payload = SEP_REQUEST_SIZE + service_size + key_size + body.len;
    if (payload > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_ValueError, "a call frame is at most 4 GiB long");
        goto done;
    }
    frame = PyBytes_FromStringAndSize(NULL, 4 + payload);
    if (frame == NULL)
        goto done;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(frame);
    put32(p, (uint32_t)payload);
    p[4] = SEP_CALL;
    p[5] = idempotent ? SEP_IDEMPOTENT : 0;
    put16(p + 6, (unsigned)service_size);
    put16(p + 8, (unsigned)key_size);
    put32(p + 10, request_id);
    put32(p + 14, ttl);
    p += 4 + SEP_REQUEST_SIZE;
    memcpy(p, PyBytes_AS_STRING(service), (size_t)service_size);
    memcpy(p + service_size, PyBytes_AS_STRING(key), (size_t)key_size);
    if (body.len)
        memcpy(p + service_size + key_size, body.buf, (size_t)body.len);
done:
    if (body.obj != NULL)
        PyBuffer_Release(&body);
    Py_XDECREF(service);
    Py_XDECREF(key);
    return frame;
}

#define SEP_REPLY 5
#define SEP_REPLY_SIZE 24   /* kind, flags, u16 status, u32 id, i32 rc, u32 us, u16 attempts,
                               u16 code size, u32 message size */

static PyObject *
reply_fields(PyObject *module, PyObject *payload_object)
{
    Py_buffer view;
    if (PyObject_GetBuffer(payload_object, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *p = view.buf;
    PyObject *result;
    if (view.len < SEP_REPLY_SIZE || p[0] != SEP_REPLY || p[18] || p[19] || be32(p + 20)) {
        result = Py_NewRef(Py_None);
    } else {
        int32_t rc = (int32_t)be32(p + 8);
        result = Py_BuildValue("(kiiiiy#)", (unsigned long)be32(p + 4), (p[2] << 8) | p[3],
                               (int)p[1], (int)rc, (p[16] << 8) | p[17],
                               (const char *)p + SEP_REPLY_SIZE, view.len - SEP_REPLY_SIZE);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef frames_methods[] = {
    {"split_frames", (PyCFunction)(void (*)(void))split_frames, METH_FASTCALL,
     "split_frames(buffer, max_frame) -> (payloads, consumed)"},
    {"parse_request_fields", parse_request_fields, METH_O,
     "parse_request_fields(payload) -> (request_id, service, key, params) or None"},
    {"reply_fields", reply_fields, METH_O,
     "reply_fields(payload) -> (request_id, status, flags, rc, attempts, body) or None"},
    {"call_frame", (PyCFunction)(void (*)(void))call_frame, METH_FASTCALL,
     "call_frame(request_id, service, key, idempotent, ttl, body) -> bytes"},
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
