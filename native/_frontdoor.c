/* esrt._frontdoor: an HTTP service call's common case, read from a connection's buffer and
 * answered, in C.
 *
 * Twin: esrt/region/_pyfrontdoor.py, whose docstring is the specification of both functions;
 * esrt/region/frontdoor.py is the one import site (ESRT_PUREPYTHON=1 forces the twin).  Both
 * take only the plain case and decline the rest, which the full parser in
 * esrt/region/httpserver.py reads and, when it must, refuses with its own messages.
 *
 * read_request(buffer, max_header, max_body)
 *     -> (consumed, method, path, version, headers, body, keep_alive), None (wait for the
 *        rest of the head), False (not plain, or the body is not all here)
 * response(status, body, rc, date, keep_alive, http10, head_only) -> bytes or None
 * admit(services, service, params, key, max_body) -> (name, key) or None
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_LENGTH_DIGITS 18

/* RFC 9110 token characters. */
static int
is_token(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
is_value(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static const unsigned char *
find_crlf(const unsigned char *from, const unsigned char *end)
{
    for (const unsigned char *p = from; p + 1 < end; p++) {
        p = memchr(p, '\r', (size_t)(end - p - 1));
        if (p == NULL)
            return NULL;
        if (p[1] == '\n')
            return p;
    }
    return NULL;
}

/* Whether the ASCII-lower-cased [start, end) contains `needle` (lower case). */
static int
contains_lower(const unsigned char *start, const unsigned char *end, const char *needle)
{
    size_t size = strlen(needle);
    for (const unsigned char *p = start; p + size <= end; p++) {
        size_t i = 0;
        while (i < size && (unsigned char)Py_TOLOWER(p[i]) == (unsigned char)needle[i])
            i++;
        if (i == size)
            return 1;
    }
    return 0;
}

/* What parse_head found, besides the headers dict it filled. */
typedef struct {
    const unsigned char *method, *target, *version;
    Py_ssize_t method_size, path_size, version_size;
    const unsigned char *connection, *connection_end;  /* the last Connection value */
    long long length;
    int has_length;
} Head;

enum { PLAIN = 1, NOT_PLAIN = 0, FAILED = -1 };

static int
parse_request_line(const unsigned char *p, const unsigned char *end, Head *head)
{
    const unsigned char *space = memchr(p, ' ', (size_t)(end - p));
    if (space == NULL || space == p)
        return NOT_PLAIN;
    for (const unsigned char *c = p; c < space; c++)
        if (!is_token(*c))
            return NOT_PLAIN;
    head->method = p;
    head->method_size = space - p;
    const unsigned char *target = space + 1;
    const unsigned char *space2 = memchr(target, ' ', (size_t)(end - target));
    if (space2 == NULL || space2 == target || *target != '/')
        return NOT_PLAIN;
    head->target = target;
    head->path_size = space2 - target;
    for (const unsigned char *c = target; c < space2; c++) {
        if (*c < 0x21 || *c > 0x7e)
            return NOT_PLAIN;
        if (*c == '?' && head->path_size == space2 - target)
            head->path_size = c - target;
    }
    head->version = space2 + 1;
    head->version_size = end - head->version;
    if (head->version_size != 8 || (memcmp(head->version, "HTTP/1.1", 8) != 0
                                     && memcmp(head->version, "HTTP/1.0", 8) != 0))
        return NOT_PLAIN;
    return PLAIN;
}

static int
parse_header(const unsigned char *p, const unsigned char *end, PyObject *headers, Head *head)
{
    const unsigned char *colon = memchr(p, ':', (size_t)(end - p));
    if (colon == NULL || colon == p)
        return NOT_PLAIN;
    for (const unsigned char *c = p; c < colon; c++)
        if (!is_token(*c))
            return NOT_PLAIN;
    for (const unsigned char *c = colon + 1; c < end; c++)
        if (!is_value(*c))
            return NOT_PLAIN;
    const unsigned char *value = colon + 1, *value_end = end;
    while (value < value_end && (*value == ' ' || *value == '\t'))
        value++;
    while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
        value_end--;
    Py_ssize_t name_size = colon - p;
    char lower[64];
    char *name = name_size <= (Py_ssize_t)sizeof lower ? lower : PyMem_Malloc((size_t)name_size);
    if (name == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    for (Py_ssize_t i = 0; i < name_size; i++)
        name[i] = (char)Py_TOLOWER(p[i]);
    int result = PLAIN;
    if ((name_size == 17 && memcmp(name, "transfer-encoding", 17) == 0)
            || (name_size == 6 && memcmp(name, "expect", 6) == 0)) {
        result = NOT_PLAIN;
    } else if (name_size == 14 && memcmp(name, "content-length", 14) == 0) {
        Py_ssize_t digits = value_end - value;
        if (head->has_length || digits == 0 || digits > MAX_LENGTH_DIGITS) {
            result = NOT_PLAIN;
        } else {
            long long length = 0;
            for (const unsigned char *c = value; c < value_end && result == PLAIN; c++) {
                if (*c < '0' || *c > '9')
                    result = NOT_PLAIN;
                length = length * 10 + (*c - '0');
            }
            head->has_length = 1;
            head->length = length;
        }
    } else if (name_size == 10 && memcmp(name, "connection", 10) == 0) {
        head->connection = value;
        head->connection_end = value_end;
    }
    if (result == PLAIN) {
        PyObject *key = PyBytes_FromStringAndSize(name, name_size);
        PyObject *item = key == NULL ? NULL
            : PyBytes_FromStringAndSize((const char *)value, value_end - value);
        if (item == NULL || PyDict_SetItem(headers, key, item) < 0)
            result = FAILED;
        Py_XDECREF(key);
        Py_XDECREF(item);
    }
    if (name != lower)
        PyMem_Free(name);
    return result;
}

static PyObject *
read_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "read_request(buffer, max_header, max_body) takes 3 arguments");
        return NULL;
    }
    Py_ssize_t max_header = PyLong_AsSsize_t(args[1]);
    if (max_header == -1 && PyErr_Occurred())
        return NULL;
    long long max_body = PyLong_AsLongLong(args[2]);
    if (max_body == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *data = view.buf, *data_end = data + view.len;
    PyObject *headers = NULL, *result = NULL;
    const unsigned char *head_end = NULL;
    for (const unsigned char *p = data; (p = find_crlf(p, data_end)) != NULL; p += 2) {
        if (p + 3 < data_end && p[2] == '\r' && p[3] == '\n') {
            head_end = p;
            break;
        }
    }
    if (head_end == NULL) {
        result = view.len <= max_header ? Py_None : Py_False;
        goto done;
    }
    if (head_end - data > max_header || (view.len >= 2 && data[0] == '\r' && data[1] == '\n')) {
        result = Py_False;
        goto done;
    }
    Head head = {0};
    const unsigned char *line_end = find_crlf(data, head_end + 2);
    if (parse_request_line(data, line_end, &head) != PLAIN) {
        result = Py_False;
        goto done;
    }
    headers = PyDict_New();
    if (headers == NULL)
        goto done;
    while (line_end < head_end) {
        const unsigned char *line = line_end + 2;
        line_end = find_crlf(line, head_end + 2);
        int outcome = parse_header(line, line_end, headers, &head);
        if (outcome == FAILED)
            goto done;
        if (outcome == NOT_PLAIN) {
            result = Py_False;
            goto done;
        }
    }
    long long length = head.has_length ? head.length : 0;
    if (length > max_body) {
        result = Py_False;
        goto done;
    }
    Py_ssize_t start = head_end + 4 - data;
    if (view.len - start < length) {
        result = Py_False;   /* the full parser reads the body piece by piece */
        goto done;
    }
    int keep_alive;
    const unsigned char *connection = head.connection, *connection_end = head.connection_end;
    if (head.version[7] == '0')
        keep_alive = connection != NULL && contains_lower(connection, connection_end, "keep-alive");
    else
        keep_alive = connection == NULL || !contains_lower(connection, connection_end, "close");
    PyObject *built = Py_BuildValue(
        "(ny#y#y#Oy#O)", start + (Py_ssize_t)length,
        (const char *)head.method, head.method_size,
        (const char *)head.target, head.path_size,
        (const char *)head.version, head.version_size,
        headers,
        (const char *)data + start, (Py_ssize_t)length,
        keep_alive ? Py_True : Py_False);
    Py_DECREF(headers);
    PyBuffer_Release(&view);
    return built;
done:
    Py_XDECREF(headers);
    PyBuffer_Release(&view);
    if (result == NULL)
        return NULL;
    return Py_NewRef(result);
}

static const char *
reason(long status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return NULL;
    }
}

static PyObject *
response(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "response(status, body, rc, date, keep_alive, http10, "
                                         "head_only) takes 7 arguments");
        return NULL;
    }
    long status = PyLong_AsLong(args[0]);
    if (status == -1 && PyErr_Occurred())
        return NULL;
    const char *phrase = reason(status);
    if (phrase == NULL)
        Py_RETURN_NONE;
    int keep_alive = PyObject_IsTrue(args[4]), http10 = PyObject_IsTrue(args[5]),
        head_only = PyObject_IsTrue(args[6]);
    if (keep_alive < 0 || http10 < 0 || head_only < 0)
        return NULL;
    char rc_text[48] = "";
    if (args[2] != Py_None) {
        if (!PyLong_Check(args[2]))
            Py_RETURN_NONE;
        int overflow;
        long long rc = PyLong_AsLongLongAndOverflow(args[2], &overflow);
        if (overflow || rc < INT32_MIN || rc > INT32_MAX)
            Py_RETURN_NONE;   /* no RETURN-CODE: the full path writes whatever it is */
        snprintf(rc_text, sizeof rc_text, "esrt-return-code: %lld\r\n", rc);
    }
    Py_buffer body, date;
    if (PyObject_GetBuffer(args[1], &body, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[3], &date, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&body);
        return NULL;
    }
    char status_line[128];
    int status_size = snprintf(status_line, sizeof status_line,
                               "HTTP/1.1 %ld %s\r\ncontent-type: application/json\r\n"
                               "content-length: %zd\r\n", status, phrase, body.len);
    const char *connection = !keep_alive ? "connection: close\r\n"
                             : http10 ? "connection: keep-alive\r\n" : "";
    size_t rc_size = strlen(rc_text), connection_size = strlen(connection);
    Py_ssize_t body_size = head_only ? 0 : body.len;
    Py_ssize_t total = status_size + (Py_ssize_t)rc_size + 6 + date.len + 2
                       + (Py_ssize_t)connection_size + 2 + body_size;
    PyObject *result = PyBytes_FromStringAndSize(NULL, total);
    if (result != NULL) {
        char *out = PyBytes_AS_STRING(result);
        memcpy(out, status_line, (size_t)status_size);
        out += status_size;
        memcpy(out, rc_text, rc_size);
        out += rc_size;
        memcpy(out, "date: ", 6);
        out += 6;
        memcpy(out, date.buf, (size_t)date.len);
        out += date.len;
        memcpy(out, "\r\n", 2);
        out += 2;
        memcpy(out, connection, connection_size);
        out += connection_size;
        memcpy(out, "\r\n", 2);
        out += 2;
        if (body_size)
            memcpy(out, body.buf, (size_t)body_size);
    }
    PyBuffer_Release(&body);
    PyBuffer_Release(&date);
    return result;
}

#define MAX_KEY 200

static PyObject *
admit(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "admit(services, service, params, key, max_body) takes 5 arguments");
        return NULL;
    }
    PyObject *services = args[0], *service = args[1], *params = args[2], *key = args[3];
    if (!PyDict_Check(services) || !PyBytes_Check(service) || !PyBytes_Check(params)
        || (key != Py_None && !PyBytes_Check(key)) || !PyLong_Check(args[4]))
        Py_RETURN_NONE;
    Py_ssize_t max_body = PyLong_AsSsize_t(args[4]);
    if (max_body == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (PyBytes_GET_SIZE(params) > max_body)
        Py_RETURN_NONE;
    const unsigned char *text = (const unsigned char *)PyBytes_AS_STRING(service);
    Py_ssize_t size = PyBytes_GET_SIZE(service);
    for (Py_ssize_t i = 0; i < size; i++)
        if (text[i] >= 0x80)
            Py_RETURN_NONE;
    if (key != Py_None) {
        const unsigned char *k = (const unsigned char *)PyBytes_AS_STRING(key);
        Py_ssize_t length = PyBytes_GET_SIZE(key);
        if (length < 1 || length > MAX_KEY)
            Py_RETURN_NONE;
        for (Py_ssize_t i = 0; i < length; i++)
            if (k[i] < 0x21 || k[i] > 0x7e)
                Py_RETURN_NONE;
    }
    PyObject *name = PyUnicode_DecodeASCII((const char *)text, size, "strict");
    if (name == NULL)
        return NULL;
    PyObject *found = PyDict_GetItemWithError(services, name);   /* borrowed */
    if (found == NULL) {
        Py_DECREF(name);
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *key_text;
    if (key == Py_None) {
        key_text = Py_NewRef(Py_None);
    } else {
        key_text = PyUnicode_DecodeASCII(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key),
                                         "strict");
        if (key_text == NULL) {
            Py_DECREF(name);
            return NULL;
        }
    }
    PyObject *result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(name);
        Py_DECREF(key_text);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, name);
    PyTuple_SET_ITEM(result, 1, key_text);
    return result;
}

static PyMethodDef frontdoor_methods[] = {
    {"read_request", (PyCFunction)(void (*)(void))read_request, METH_FASTCALL,
     "read_request(buffer, max_header, max_body) -> request tuple, None (wait) or False"},
    {"response", (PyCFunction)(void (*)(void))response, METH_FASTCALL,
     "response(status, body, rc, date, keep_alive, http10, head_only) -> bytes or None"},
    {"admit", (PyCFunction)(void (*)(void))admit, METH_FASTCALL,
     "admit(services, service, params, key, max_body) -> (name, key) or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef frontdoor_module = {
    PyModuleDef_HEAD_INIT, "esrt._frontdoor",
    "C twin of esrt.region._pyfrontdoor (load through esrt.region.frontdoor).",
    -1, frontdoor_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__frontdoor(void)
{
    return PyModule_Create(&frontdoor_module);
}
