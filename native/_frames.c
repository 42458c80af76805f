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
 * decode_call(payload) -> (header dict, body) or None
 *     What protocol.decode_header makes of a CALL frame (twin: decode_call_python); None for
 *     any other payload, and for one decode_header would refuse.
 * reply_frame(header, body) -> bytes or None
 *     What protocol.encode_frame makes of a reply header without an error; None for any other
 *     header (one with an error, a field the frame has no place for, a value out of range).
 * wire_reply(request_id, status, rc, body) -> bytes or None
 *     A reply frame of the binary conversation, the bytes esrt.wire.encode_reply makes (twin:
 *     wire_reply_python there); None where encode_reply would refuse: an id, status or
 *     RETURN-CODE out of range or not an integer (rc may be None: 0), a body not bytes.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
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
static PyObject *call_op;   /* "call", the op of every CALL frame's header */
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

static uint32_t
be16(const unsigned char *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}

/* Set header[name] = value and drop the reference to value; -1 on failure. */
static int
set_item(PyObject *header, const char *name, PyObject *value)
{
    if (value == NULL)
        return -1;
    int result = PyDict_SetItemString(header, name, value);
    Py_DECREF(value);
    return result;
}

static PyObject *
decode_call(PyObject *module, PyObject *payload_object)
{
    Py_buffer view;
    if (PyObject_GetBuffer(payload_object, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *p = view.buf;
    PyObject *header = NULL, *result = NULL;
    if (view.len < SEP_REQUEST_SIZE || p[0] != SEP_CALL)
        goto decline;
    Py_ssize_t service_size = be16(p + 2), key_size = be16(p + 4);
    Py_ssize_t end = SEP_REQUEST_SIZE + service_size + key_size;
    if (end > view.len)
        goto decline;
    header = PyDict_New();
    if (header == NULL
            || set_item(header, "id", PyLong_FromUnsignedLong(be32(p + 6))) < 0
            || PyDict_SetItemString(header, "op", call_op) < 0)
        goto done;
    const char *text = (const char *)p + SEP_REQUEST_SIZE;
    if (service_size) {
        PyObject *service = PyUnicode_DecodeUTF8(text, service_size, NULL);
        if (service == NULL)
            goto not_utf8;
        if (set_item(header, "service", service) < 0)
            goto done;
    }
    if (key_size) {
        PyObject *key = PyUnicode_DecodeUTF8(text + service_size, key_size, NULL);
        if (key == NULL)
            goto not_utf8;
        if (set_item(header, "key", key) < 0)
            goto done;
    }
    if ((p[1] & SEP_IDEMPOTENT) && PyDict_SetItemString(header, "idempotent", Py_True) < 0)
        goto done;
    uint32_t ttl = be32(p + 10);
    if (ttl && set_item(header, "ttl", PyLong_FromUnsignedLong(ttl)) < 0)
        goto done;
    result = Py_BuildValue("(Ny#)", header, (const char *)p + end, view.len - end);
    header = NULL;  /* Py_BuildValue's N took it, or dropped it on failure */
    goto done;
not_utf8:
    if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
        goto done;
    PyErr_Clear();
decline:
    result = Py_NewRef(Py_None);
done:   /* result is NULL with an exception set when something failed */
    Py_XDECREF(header);
    PyBuffer_Release(&view);
    return result;
}

#define HAS_RC 1
#define HAS_TRANSACTION 2
#define COMMITTED 4
#define REPLAYED 8

/* An integer field of a reply header within [low, high]; 0 when absent or None (*present
 * says which), 1 when usable, -1 when the frame cannot hold it (or an error is set). */
static int
int_field(PyObject *header, PyObject *name, long long low, long long high, long long *value,
          int *present)
{
    PyObject *item = PyDict_GetItemWithError(header, name);
    *value = 0;
    if (present != NULL)
        *present = item != NULL;
    if (item == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (item == Py_None)
        return 0;
    if (!PyLong_Check(item))
        return -1;
    int overflow;
    *value = PyLong_AsLongLongAndOverflow(item, &overflow);
    if (overflow == 1 && high == LLONG_MAX) {   /* no upper bound: the caller caps it */
        *value = LLONG_MAX;
        return 1;
    }
    if (overflow || (*value == -1 && PyErr_Occurred()) || *value < low || *value > high)
        return -1;
    return 1;
}

static PyObject *names[7];
enum { N_ID, N_STATUS, N_RC, N_ATTEMPTS, N_COMMITTED, N_REPLAYED, N_MS };
static const char *const name_texts[7] = {"id", "status", "rc", "attempts", "committed",
                                          "replayed", "ms"};

static PyObject *
reply_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "reply_frame(header dict, body) takes 2 arguments");
        return NULL;
    }
    PyObject *header = args[0];
    /* Only the fields a successful reply has; anything else is for encode_frame to judge. */
    PyObject *key, *item;
    Py_ssize_t at = 0;
    while (PyDict_Next(header, &at, &key, &item)) {
        int known = 0;
        for (int i = 0; i < 7 && !known; i++)
            known = PyUnicode_Check(key) && PyUnicode_Compare(key, names[i]) == 0;
        if (!known)
            Py_RETURN_NONE;
    }
    long long request_id, status, rc, attempts;
    int rc_given, has_attempts, has_committed;
    if (int_field(header, names[N_ID], 0, 0xFFFFFFFFLL, &request_id, NULL) != 1
            || int_field(header, names[N_STATUS], 0, 0xFFFF, &status, NULL) != 1
            || (rc_given = int_field(header, names[N_RC], INT32_MIN, INT32_MAX, &rc, NULL)) < 0
            || int_field(header, names[N_ATTEMPTS], 0, LLONG_MAX, &attempts, &has_attempts) < 0)
        goto decline;
    int has_rc = rc_given == 1;
    if (has_attempts && PyDict_GetItem(header, names[N_ATTEMPTS]) == Py_None)
        goto decline;  /* min(None, ...) fails in the twin */
    PyObject *committed = PyDict_GetItemWithError(header, names[N_COMMITTED]);
    if (committed == NULL && PyErr_Occurred())
        return NULL;
    has_committed = committed != NULL;
    PyObject *replayed = PyDict_GetItemWithError(header, names[N_REPLAYED]);
    if (replayed == NULL && PyErr_Occurred())
        return NULL;
    int flags = has_rc ? HAS_RC : 0;
    if (has_attempts || has_committed) {
        flags |= HAS_TRANSACTION;
        int truth = committed != NULL ? PyObject_IsTrue(committed) : 0;
        if (truth < 0)
            return NULL;
        if (truth)
            flags |= COMMITTED;
    }
    if (replayed != NULL) {
        int truth = PyObject_IsTrue(replayed);
        if (truth < 0)
            return NULL;
        if (truth)
            flags |= REPLAYED;
    }
    double micros = 0;
    PyObject *ms = PyDict_GetItemWithError(header, names[N_MS]);
    if (ms == NULL && PyErr_Occurred())
        return NULL;
    if (ms != NULL && PyLong_Check(ms)) {
        /* Whole milliseconds, however many: the twin multiplies exactly, then caps. */
        int overflow;
        long long value = PyLong_AsLongLongAndOverflow(ms, &overflow);
        /* On overflow the value is -1 with no error set: too big is capped, not declined. */
        if (overflow < 0 || (overflow == 0 && (value < 0 || (value == -1 && PyErr_Occurred()))))
            goto decline;
        micros = overflow > 0 || value > 4294967 ? 4294967295.0 : (double)value * 1000;
    } else if (ms != NULL) {
        if (!PyFloat_Check(ms))
            goto decline;
        micros = nearbyint(PyFloat_AS_DOUBLE(ms) * 1000);   /* half to even, as round() */
        if (!isfinite(micros) || !(micros >= 0))
            goto decline;
        if (micros > 4294967295.0)
            micros = 4294967295.0;
    }
    Py_buffer body;
    if (PyObject_GetBuffer(args[1], &body, PyBUF_SIMPLE) < 0)
        return NULL;
    Py_ssize_t payload = SEP_REPLY_SIZE + body.len;
    if (payload > 0xFFFFFFFFLL) {
        PyBuffer_Release(&body);
        goto decline;
    }
    PyObject *frame = PyBytes_FromStringAndSize(NULL, 4 + payload);
    if (frame != NULL) {
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(frame);
        put32(p, (uint32_t)payload);
        p[4] = SEP_REPLY;
        p[5] = (unsigned char)flags;
        put16(p + 6, (unsigned)status);
        put32(p + 8, (uint32_t)request_id);
        put32(p + 12, (uint32_t)(int32_t)rc);
        put32(p + 16, (uint32_t)micros);
        put16(p + 20, (unsigned)(attempts > 0xFFFF ? 0xFFFF : attempts));
        memset(p + 22, 0, 6);   /* no error code, no message */
        if (body.len)
            memcpy(p + 4 + SEP_REPLY_SIZE, body.buf, (size_t)body.len);
    }
    PyBuffer_Release(&body);
    return frame;
decline:
    PyErr_Clear();
    Py_RETURN_NONE;
}

#define KIND_REPLY 2
#define WIRE_REPLY_SIZE 17   /* magic, version, kind, u64 request id, u16 status, i32 rc */

static PyObject *
wire_reply(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "wire_reply(request_id, status, rc, body) takes 4 "
                        "arguments");
        return NULL;
    }
    PyObject *body = args[3];
    if (!PyLong_Check(args[0]) || !PyLong_Check(args[1]) || !PyBytes_Check(body)
        || (args[2] != Py_None && !PyLong_Check(args[2])))
        Py_RETURN_NONE;
    unsigned long long request_id = PyLong_AsUnsignedLongLong(args[0]);
    if (request_id == (unsigned long long)-1 && PyErr_Occurred())
        goto decline;
    long status = PyLong_AsLong(args[1]);
    if ((status == -1 && PyErr_Occurred()) || status < 0 || status > 0xFFFF)
        goto decline;
    long long rc = 0;
    if (args[2] != Py_None) {
        rc = PyLong_AsLongLong(args[2]);
        if ((rc == -1 && PyErr_Occurred()) || rc < INT32_MIN || rc > INT32_MAX)
            goto decline;
    }
    Py_ssize_t body_size = PyBytes_GET_SIZE(body);
    if (body_size > 0xFFFFFFFFLL - WIRE_REPLY_SIZE)
        goto decline;
    PyObject *frame = PyBytes_FromStringAndSize(NULL, 4 + WIRE_REPLY_SIZE + body_size);
    if (frame == NULL)
        return NULL;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(frame);
    put32(p, (uint32_t)(WIRE_REPLY_SIZE + body_size));
    p[4] = MAGIC;
    p[5] = VERSION;
    p[6] = KIND_REPLY;
    put32(p + 7, (uint32_t)(request_id >> 32));
    put32(p + 11, (uint32_t)request_id);
    put16(p + 15, (unsigned)status);
    put32(p + 17, (uint32_t)(int32_t)rc);
    memcpy(p + 4 + WIRE_REPLY_SIZE, PyBytes_AS_STRING(body), (size_t)body_size);
    return frame;
decline:
    PyErr_Clear();
    Py_RETURN_NONE;
}

static PyMethodDef frames_methods[] = {
    {"split_frames", (PyCFunction)(void (*)(void))split_frames, METH_FASTCALL,
     "split_frames(buffer, max_frame) -> (payloads, consumed)"},
    {"parse_request_fields", parse_request_fields, METH_O,
     "parse_request_fields(payload) -> (request_id, service, key, params) or None"},
    {"decode_call", decode_call, METH_O, "decode_call(payload) -> (header, body) or None"},
    {"reply_frame", (PyCFunction)(void (*)(void))reply_frame, METH_FASTCALL,
     "reply_frame(header, body) -> bytes or None"},
    {"reply_fields", reply_fields, METH_O,
     "reply_fields(payload) -> (request_id, status, flags, rc, attempts, body) or None"},
    {"call_frame", (PyCFunction)(void (*)(void))call_frame, METH_FASTCALL,
     "call_frame(request_id, service, key, idempotent, ttl, body) -> bytes"},
    {"wire_reply", (PyCFunction)(void (*)(void))wire_reply, METH_FASTCALL,
     "wire_reply(request_id, status, rc, body) -> bytes or None"},
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
    call_op = PyUnicode_InternFromString("call");
    if (call_op == NULL)
        return NULL;
    for (int i = 0; i < 7; i++) {
        names[i] = PyUnicode_InternFromString(name_texts[i]);
        if (names[i] == NULL)
            return NULL;
    }
    return PyModule_Create(&frames_module);
}
