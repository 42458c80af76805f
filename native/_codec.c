/* esrt._codec: the per-field hot path of esrt.mapping.codec in C.
 *
 * Every function here has a pure-Python twin of the same name and signature in
 * esrt/mapping/_pycodec.py; esrt/mapping/speedups.py is the one place that picks between
 * them (ESRT_PUREPYTHON=1 forces the twin).  Results must be identical to the twin's, object
 * for object: ints stay ints, scaled numbers are built exactly as the twin builds them
 * (Decimal(n).scaleb(-scale, context) with a 100-digit context).
 *
 * Decoders take (spec..., buffer, at) and never raise for odd bytes, as the twin.
 * Encoders take (spec..., checked, buffer, at, value, path).  They store the common case
 * (an exact int that fits, a str that fits) directly; anything else (Decimal, float,
 * a value out of range, a wrong type) goes through `buffer[at:at+length] =
 * checked(value, path)`, the twin's checked encoder, so every error is the twin's own.
 *
 * Sizes: DISPLAY has at most 38 digits (esrt.mapping.model), so a digit accumulator never
 * exceeds 15 * (10**38 - 1) / 9 < 2**128; COMP-3 reads its up to 39 nibbles in two parts.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <limits.h>
#include <string.h>

#include "cobol_display.h"

typedef __int128 i128;
typedef unsigned __int128 u128;

#define MAX_DIGITS 38

static u128 POW10[MAX_DIGITS + 1];
static PyObject *decimal_type;   /* decimal.Decimal */
static PyObject *exact_context;  /* the twin's _EXACT context */
static PyObject *str_scaleb;
static PyObject *pow18;          /* int 10**18 */

/* ---- helpers ----------------------------------------------------------------------- */

static PyObject *
long_from_u128(u128 a)
{
    if (a <= ULLONG_MAX)
        return PyLong_FromUnsignedLongLong((unsigned long long)a);
    PyObject *high = long_from_u128(a / POW10[18]);
    if (high == NULL)
        return NULL;
    PyObject *low = PyLong_FromUnsignedLongLong((unsigned long long)(a % POW10[18]));
    if (low == NULL) {
        Py_DECREF(high);
        return NULL;
    }
    PyObject *shifted = PyNumber_Multiply(high, pow18);
    Py_DECREF(high);
    if (shifted == NULL) {
        Py_DECREF(low);
        return NULL;
    }
    PyObject *result = PyNumber_Add(shifted, low);
    Py_DECREF(shifted);
    Py_DECREF(low);
    return result;
}

static PyObject *
long_from_magnitude(u128 magnitude, int negative)
{
    if (magnitude <= (u128)LLONG_MAX)
        return PyLong_FromLongLong(negative ? -(long long)magnitude : (long long)magnitude);
    PyObject *result = long_from_u128(magnitude);
    if (result == NULL || !negative)
        return result;
    PyObject *negated = PyNumber_Negative(result);
    Py_DECREF(result);
    return negated;
}

/* The twin's _from_scaled: int * 10**-scale, or Decimal(int).scaleb(-scale, _EXACT).
 * Steals the reference to number. */
static PyObject *
from_scaled(PyObject *number, long scale)
{
    if (number == NULL || scale == 0)
        return number;
    PyObject *result = NULL;
    if (scale < 0) {
        PyObject *ten = PyLong_FromLong(10), *power = PyLong_FromLong(-scale);
        PyObject *unit = (ten && power) ? PyNumber_Power(ten, power, Py_None) : NULL;
        if (unit != NULL)
            result = PyNumber_Multiply(number, unit);
        Py_XDECREF(ten);
        Py_XDECREF(power);
        Py_XDECREF(unit);
    } else {
        PyObject *decimal = PyObject_CallOneArg(decimal_type, number);
        PyObject *exponent = PyLong_FromLong(-scale);
        if (decimal != NULL && exponent != NULL)
            result = PyObject_CallMethodObjArgs(decimal, str_scaleb, exponent, exact_context,
                                                NULL);
        Py_XDECREF(decimal);
        Py_XDECREF(exponent);
    }
    Py_DECREF(number);
    return result;
}

static int
get_long(PyObject *arg, long *out)
{
    *out = PyLong_AsLong(arg);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int
check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t wanted)
{
    if (nargs == wanted)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, wanted, nargs);
    return -1;
}

/* Borrow [at, at+length) of buffer; release with PyBuffer_Release. */
static int
field_view(PyObject *buffer, PyObject *at_arg, long length, int writable, Py_buffer *view,
           unsigned char **start)
{
    Py_ssize_t at = PyLong_AsSsize_t(at_arg);
    if (at == -1 && PyErr_Occurred())
        return -1;
    if (PyObject_GetBuffer(buffer, view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0)
        return -1;
    if (at < 0 || length < 0 || at > view->len || length > view->len - at) {
        PyErr_Format(PyExc_ValueError, "field of %ld bytes at offset %zd is outside the "
                     "%zd-byte buffer; the mapping and the buffers do not match",
                     length, at, view->len);
        PyBuffer_Release(view);
        return -1;
    }
    *start = (unsigned char *)view->buf + at;
    return 0;
}

/* ---- decoders ---------------------------------------------------------------------- */

static PyObject *
decode_string(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long length;
    Py_buffer view;
    unsigned char *data;
    if (check_nargs("decode_string", nargs, 3) < 0 || get_long(args[0], &length) < 0
        || field_view(args[1], args[2], length, 0, &view, &data) < 0)
        return NULL;
    Py_ssize_t size = length;
    unsigned char *nul = memchr(data, 0, size);
    if (nul != NULL)
        size = nul - data;
    /* 0x20 is never part of a multi-byte UTF-8 sequence, so trimming bytes first gives
     * the same text as decoding and then trimming. */
    while (size > 0 && data[size - 1] == ' ')
        size--;
    PyObject *result = PyUnicode_DecodeUTF8((const char *)data, size, "replace");
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
decode_display(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long length, mode, scale;
    int is_signed;
    Py_buffer view;
    unsigned char *data;
    if (check_nargs("decode_display", nargs, 6) < 0 || get_long(args[0], &length) < 0
        || (is_signed = PyObject_IsTrue(args[1])) < 0 || get_long(args[2], &mode) < 0
        || get_long(args[3], &scale) < 0)
        return NULL;
    int separate = is_signed && (mode == SIGN_TRAILING_SEPARATE || mode == SIGN_LEADING_SEPARATE);
    if (length < 1 + separate || length - separate > MAX_DIGITS) {
        PyErr_Format(PyExc_ValueError, "DISPLAY field of %ld bytes: esrt supports 1 to %d "
                     "digits", length, MAX_DIGITS);
        return NULL;
    }
    if (field_view(args[4], args[5], length, 0, &view, &data) < 0)
        return NULL;
    int negative;
    u128 number = display_magnitude(data, length, is_signed, mode, &negative);
    PyBuffer_Release(&view);
    return from_scaled(long_from_magnitude(number, negative), scale);
}

static PyObject *
decode_binary(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long length, scale;
    int is_signed, little;
    Py_buffer view;
    unsigned char *data;
    if (check_nargs("decode_binary", nargs, 6) < 0 || get_long(args[0], &length) < 0
        || (is_signed = PyObject_IsTrue(args[1])) < 0
        || (little = PyObject_IsTrue(args[2])) < 0 || get_long(args[3], &scale) < 0)
        return NULL;
    if (length < 1 || length > 8) {
        PyErr_Format(PyExc_ValueError, "binary field of %ld bytes: esrt supports 1 to 8",
                     length);
        return NULL;
    }
    if (field_view(args[4], args[5], length, 0, &view, &data) < 0)
        return NULL;
    unsigned long long bits = 0;
    for (long i = 0; i < length; i++)
        bits = (bits << 8) | data[little ? length - 1 - i : i];
    PyBuffer_Release(&view);
    PyObject *number;
    if (is_signed) {
        long long value;
        if (length == 8)
            memcpy(&value, &bits, sizeof value);  /* two's complement, as int.from_bytes */
        else if (bits & (1ULL << (length * 8 - 1)))
            value = (long long)bits - (long long)(1ULL << (length * 8));
        else
            value = (long long)bits;
        number = PyLong_FromLongLong(value);
    } else {
        number = PyLong_FromUnsignedLongLong(bits);
    }
    return from_scaled(number, scale);
}

static PyObject *
decode_packed(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long length, scale;
    Py_buffer view;
    unsigned char *data;
    if (check_nargs("decode_packed", nargs, 4) < 0 || get_long(args[0], &length) < 0
        || get_long(args[1], &scale) < 0)
        return NULL;
    if (length < 1 || length > MAX_DIGITS / 2 + 1) {
        PyErr_Format(PyExc_ValueError, "COMP-3 field of %ld bytes: esrt supports 1 to %d",
                     length, MAX_DIGITS / 2 + 1);
        return NULL;
    }
    if (field_view(args[2], args[3], length, 0, &view, &data) < 0)
        return NULL;
    /* The body is every nibble but the sign.  20 bytes hold 39 digits, more than a u128,
     * so a long body is read as high * 10**30 + low. */
    long count = length * 2 - 1, split = count > 37 ? count - 30 : count;
    u128 high = 0, low = 0;
    for (long i = 0; i < count; i++) {
        unsigned nibble = (i & 1) ? data[i / 2] & 0x0F : data[i / 2] >> 4;
        if (i < split)
            high = high * 10 + nibble;
        else
            low = low * 10 + nibble;
    }
    unsigned sign = data[length - 1] & 0x0F;
    PyBuffer_Release(&view);
    /* Nibbles above 9 keep their value, as the twin's does; D and B are negative. */
    int negative = sign == 0x0D || sign == 0x0B;
    if (split == count)
        return from_scaled(long_from_magnitude(high, negative), scale);
    PyObject *number = NULL, *shift = long_from_u128(POW10[30]);
    PyObject *top = long_from_u128(high), *bottom = long_from_u128(low);
    PyObject *shifted = (shift && top) ? PyNumber_Multiply(top, shift) : NULL;
    PyObject *sum = (shifted && bottom) ? PyNumber_Add(shifted, bottom) : NULL;
    if (sum != NULL)
        number = negative ? PyNumber_Negative(sum) : (Py_INCREF(sum), sum);
    Py_XDECREF(shift);
    Py_XDECREF(top);
    Py_XDECREF(bottom);
    Py_XDECREF(shifted);
    Py_XDECREF(sum);
    return from_scaled(number, scale);
}

/* ---- encoders ---------------------------------------------------------------------- */

/* buffer[at:at+length] = checked(value, path): the twin's path, and its errors. */
/* COMP-1 (4 bytes) or COMP-2 (8 bytes): native IEEE; None for NaN or infinity (no JSON). */
static PyObject *
decode_float(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long length;
    Py_buffer view;
    unsigned char *data;
    double number;
    if (check_nargs("decode_float", nargs, 3) < 0 || get_long(args[0], &length) < 0)
        return NULL;
    if (length != 4 && length != 8) {
        PyErr_Format(PyExc_ValueError, "a COMP-1 or COMP-2 field is 4 or 8 bytes, not %ld",
                     length);
        return NULL;
    }
    if (field_view(args[1], args[2], length, 0, &view, &data) < 0)
        return NULL;
    if (length == 4) {
        float single;
        memcpy(&single, data, sizeof single);
        number = single;
    } else {
        memcpy(&number, data, sizeof number);
    }
    PyBuffer_Release(&view);
    if (!isfinite(number))
        Py_RETURN_NONE;
    return PyFloat_FromDouble(number);
}

static PyObject *
store_checked(PyObject *const *args, long length)
{
    PyObject *checked = args[0], *buffer = args[1], *at_arg = args[2];
    PyObject *call_args[2] = {args[3], args[4]};
    PyObject *encoded = PyObject_Vectorcall(checked, call_args, 2, NULL);
    if (encoded == NULL)
        return NULL;
    PyObject *end = NULL, *slice = NULL;
    PyObject *length_obj = PyLong_FromLong(length);
    if (length_obj != NULL)
        end = PyNumber_Add(at_arg, length_obj);
    if (end != NULL)
        slice = PySlice_New(at_arg, end, NULL);
    int failed = slice == NULL || PyObject_SetItem(buffer, slice, encoded) < 0;
    Py_XDECREF(length_obj);
    Py_XDECREF(end);
    Py_XDECREF(slice);
    Py_DECREF(encoded);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
store_bytes(PyObject *const *args, const unsigned char *bytes, long length)
{
    Py_buffer view;
    unsigned char *data;
    if (field_view(args[1], args[2], length, 1, &view, &data) < 0)
        return NULL;
    memcpy(data, bytes, length);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* The stored integer for value when it is an exact int the field holds: 1 and *out set;
 * 0 when the checked encoder must decide (it raises, or handles a big int); -1 on error. */
static int
fast_scaled(PyObject *value, long digits, long scale, int is_signed, i128 *out)
{
    if (!PyLong_CheckExact(value) || digits < 1 || digits > MAX_DIGITS)
        return 0;
    int overflow;
    long long given = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow)
        return 0;
    if (given == -1 && PyErr_Occurred())
        return -1;
    i128 number;
    if (scale >= 0) {
        if (scale > 18)
            return 0;
        number = (i128)given * (i128)POW10[scale];
    } else {
        if (scale < -18)
            return 0;
        long long unit = (long long)POW10[-scale];
        if (given % unit)
            return 0;
        number = given / unit;
    }
    if (number < 0 && !is_signed)
        return 0;
    u128 magnitude = number < 0 ? -(u128)number : (u128)number;
    if (magnitude >= POW10[digits])
        return 0;
    *out = number;
    return 1;
}

static void
write_digits(unsigned char *text, long count, u128 magnitude)
{
    for (long i = count - 1; i >= 0; i--) {
        text[i] = '0' + (unsigned)(magnitude % 10);
        magnitude /= 10;
    }
}

static PyObject *
encode_string(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long length;
    if (check_nargs("encode_string", nargs, 6) < 0 || get_long(args[0], &length) < 0)
        return NULL;
    PyObject *value = args[4];
    if (PyUnicode_CheckExact(value)) {
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(value, &size);
        if (text == NULL)
            PyErr_Clear();  /* lone surrogates: the checked encoder raises the twin's error */
        else if (size <= length) {
            Py_buffer view;
            unsigned char *data;
            if (field_view(args[2], args[3], length, 1, &view, &data) < 0)
                return NULL;
            memcpy(data, text, size);
            memset(data + size, ' ', length - size);
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
    }
    return store_checked(args + 1, length);
}

static PyObject *
encode_display(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long length, digits, scale, mode;
    int is_signed, fast;
    i128 number;
    if (check_nargs("encode_display", nargs, 10) < 0 || get_long(args[0], &length) < 0
        || get_long(args[1], &digits) < 0 || get_long(args[2], &scale) < 0
        || (is_signed = PyObject_IsTrue(args[3])) < 0 || get_long(args[4], &mode) < 0
        || (fast = fast_scaled(args[8], digits, scale, is_signed, &number)) < 0)
        return NULL;
    int separate = is_signed && (mode == SIGN_TRAILING_SEPARATE || mode == SIGN_LEADING_SEPARATE);
    if (!fast || length != digits + separate)
        return store_checked(args + 5, length);
    unsigned char text[MAX_DIGITS + 1];
    int negative = number < 0;
    unsigned char *body = text + (mode == SIGN_LEADING_SEPARATE && separate);
    write_digits(body, digits, negative ? -(u128)number : (u128)number);
    if (separate) {
        unsigned char mark = negative ? '-' : '+';
        if (mode == SIGN_LEADING_SEPARATE)
            text[0] = mark;
        else
            text[digits] = mark;
    } else if (is_signed && negative) {
        /* GnuCOBOL's embedded sign: the sign digit of a negative value becomes 'p'..'y'. */
        text[mode == SIGN_LEADING ? 0 : digits - 1] += 0x40;
    }
    return store_bytes(args + 5, text, length);
}

static PyObject *
encode_binary(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long length, digits, scale;
    int is_signed, little, fast;
    i128 number;
    if (check_nargs("encode_binary", nargs, 10) < 0 || get_long(args[0], &length) < 0
        || get_long(args[1], &digits) < 0 || get_long(args[2], &scale) < 0
        || (is_signed = PyObject_IsTrue(args[3])) < 0
        || (little = PyObject_IsTrue(args[4])) < 0
        || (fast = fast_scaled(args[8], digits, scale, is_signed, &number)) < 0)
        return NULL;
    if (fast && length >= 1 && length <= 8) {
        /* int.to_bytes raises OverflowError when the number needs more bytes; leave that
         * (and its message) to the checked encoder. */
        i128 limit = (i128)1 << (length * 8 - (is_signed ? 1 : 0));
        fast = is_signed ? (number >= -limit && number < limit) : number < limit;
    } else {
        fast = 0;
    }
    if (!fast)
        return store_checked(args + 5, length);
    unsigned char bytes[8];
    u128 bits = (u128)number;  /* two's complement: the low bytes are what we store */
    for (long i = 0; i < length; i++) {
        bytes[little ? i : length - 1 - i] = (unsigned char)(bits & 0xFF);
        bits >>= 8;
    }
    return store_bytes(args + 5, bytes, length);
}

static PyObject *
encode_packed(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long length, digits, scale;
    int is_signed, fast;
    i128 number;
    if (check_nargs("encode_packed", nargs, 9) < 0 || get_long(args[0], &length) < 0
        || get_long(args[1], &digits) < 0 || get_long(args[2], &scale) < 0
        || (is_signed = PyObject_IsTrue(args[3])) < 0
        || (fast = fast_scaled(args[7], digits, scale, is_signed, &number)) < 0)
        return NULL;
    if (!fast || length < 1 || length > MAX_DIGITS / 2 + 1 || digits > length * 2 - 1)
        return store_checked(args + 4, length);
    unsigned char bytes[MAX_DIGITS / 2 + 1];
    u128 magnitude = number < 0 ? -(u128)number : (u128)number;
    unsigned nibble = is_signed ? (number < 0 ? 0x0D : 0x0C) : 0x0F;
    for (long i = length - 1; i >= 0; i--) {
        unsigned low = nibble;
        unsigned high = (unsigned)(magnitude % 10);
        magnitude /= 10;
        bytes[i] = (unsigned char)((high << 4) | low);
        nibble = (unsigned)(magnitude % 10);
        magnitude /= 10;
    }
    return store_bytes(args + 4, bytes, length);
}

/* Floats, and ints small enough to be exact doubles, are stored here; anything else (a
 * Decimal, a huge int, a value a COMP-1 cannot hold) goes to the checked encoder, which
 * converts or raises exactly as the twin does. */
static PyObject *
encode_float(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long length;
    double number;
    if (check_nargs("encode_float", nargs, 6) < 0 || get_long(args[0], &length) < 0)
        return NULL;
    PyObject *value = args[4];
    int fast = 0;
    if (PyFloat_CheckExact(value)) {
        number = PyFloat_AS_DOUBLE(value);
        fast = isfinite(number);
    } else if (PyLong_CheckExact(value)) {
        int overflow;
        long long integer = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (integer == -1 && PyErr_Occurred())
            return NULL;
        if (!overflow && integer >= -(1LL << 53) && integer <= (1LL << 53)) {
            number = (double)integer;
            fast = 1;
        }
    }
    if (fast && length == 4) {
        float single = (float)number;
        if (isinf(single))
            fast = 0;  /* too large for COMP-1: the checked encoder says so */
        else
            return store_bytes(args + 1, (const unsigned char *)&single, 4);
    }
    if (fast && length == 8)
        return store_bytes(args + 1, (const unsigned char *)&number, 8);
    return store_checked(args + 1, length);
}

/* ---- module ------------------------------------------------------------------------ */

static PyMethodDef codec_methods[] = {
    {"decode_string", (PyCFunction)(void (*)(void))decode_string, METH_FASTCALL,
     "decode_string(length, buffer, at) -> str"},
    {"decode_display", (PyCFunction)(void (*)(void))decode_display, METH_FASTCALL,
     "decode_display(length, signed, sign_mode, scale, buffer, at) -> int | Decimal"},
    {"decode_binary", (PyCFunction)(void (*)(void))decode_binary, METH_FASTCALL,
     "decode_binary(length, signed, little, scale, buffer, at) -> int | Decimal"},
    {"decode_packed", (PyCFunction)(void (*)(void))decode_packed, METH_FASTCALL,
     "decode_packed(length, scale, buffer, at) -> int | Decimal"},
    {"encode_string", (PyCFunction)(void (*)(void))encode_string, METH_FASTCALL,
     "encode_string(length, checked, buffer, at, value, path)"},
    {"encode_display", (PyCFunction)(void (*)(void))encode_display, METH_FASTCALL,
     "encode_display(length, digits, scale, signed, sign_mode, checked, buffer, at, value, "
     "path)"},
    {"encode_binary", (PyCFunction)(void (*)(void))encode_binary, METH_FASTCALL,
     "encode_binary(length, digits, scale, signed, little, checked, buffer, at, value, "
     "path)"},
    {"encode_packed", (PyCFunction)(void (*)(void))encode_packed, METH_FASTCALL,
     "encode_packed(length, digits, scale, signed, checked, buffer, at, value, path)"},
    {"decode_float", (PyCFunction)(void (*)(void))decode_float, METH_FASTCALL,
     "decode_float(length, buffer, at) -> float | None"},
    {"encode_float", (PyCFunction)(void (*)(void))encode_float, METH_FASTCALL,
     "encode_float(length, checked, buffer, at, value, path)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef codec_module = {
    PyModuleDef_HEAD_INIT, "esrt._codec",
    "C twin of esrt.mapping._pycodec (pick through esrt.mapping.speedups, not directly).",
    -1, codec_methods, NULL, NULL, NULL, NULL,
};

/* Read at import from the twin (cobol_display.h). */
int display_sign_by_nibble;

PyMODINIT_FUNC
PyInit__codec(void)
{
    if (read_display_sign_rule() < 0)
        return NULL;
    POW10[0] = 1;
    for (int i = 1; i <= MAX_DIGITS; i++)
        POW10[i] = POW10[i - 1] * 10;
    /* The twin owns the Decimal context, so both build Decimals with the same one. */
    PyObject *twin = PyImport_ImportModule("esrt.mapping._pycodec");
    if (twin == NULL)
        return NULL;
    decimal_type = PyObject_GetAttrString(twin, "Decimal");
    exact_context = PyObject_GetAttrString(twin, "_EXACT");
    Py_DECREF(twin);
    str_scaleb = PyUnicode_InternFromString("scaleb");
    pow18 = PyLong_FromUnsignedLongLong(1000000000000000000ULL);
    if (decimal_type == NULL || exact_context == NULL || str_scaleb == NULL || pow18 == NULL)
        return NULL;
    return PyModule_Create(&codec_module);
}
