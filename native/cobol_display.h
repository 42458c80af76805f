/*
 * Reading a DISPLAY numeric field, shared by the field codec (_codec.c) and the call path
 * (_callpath_out.c) so that both read the same bytes as the same number.
 */
#ifndef ESRT_COBOL_DISPLAY_H
#define ESRT_COBOL_DISPLAY_H

#include <Python.h>

/* How a signed DISPLAY field carries its sign (the mapping's sign_mode). */
enum { SIGN_TRAILING, SIGN_LEADING, SIGN_TRAILING_SEPARATE, SIGN_LEADING_SEPARATE };

static inline unsigned __int128
digits_value(const unsigned char *data, Py_ssize_t count, unsigned __int128 number)
{
    /* GnuCOBOL's arithmetic takes the low nibble of each byte, so spaces read as 0. */
    for (Py_ssize_t i = 0; i < count; i++)
        number = number * 10 + (data[i] & 0x0F);
    return number;
}

/* How the runtime reads an embedded sign byte that is not a digit, as in
 * esrt.cobol.dialect.display_sign_by_nibble (each extension defines it and reads it from the
 * twin, esrt.mapping._pycodec, when it is imported). */
extern int display_sign_by_nibble;

/* Set display_sign_by_nibble from the twin, which holds the runtime's rule; -1 with an
 * exception set when it cannot be read. For each extension's init function. */
static inline int
read_display_sign_rule(void)
{
    PyObject *twin = PyImport_ImportModule("esrt.mapping._pycodec");
    PyObject *rule = twin ? PyObject_GetAttrString(twin, "DISPLAY_SIGN_BY_NIBBLE") : NULL;
    Py_XDECREF(twin);
    if (rule == NULL)
        return -1;
    display_sign_by_nibble = PyObject_IsTrue(rule);
    Py_DECREF(rule);
    return display_sign_by_nibble < 0 ? -1 : 0;
}

/* An embedded sign. GnuCOBOL 3.1: 'p'..'y' is a negative 0..9 and a byte that is not a digit
 * counts as 0. 3.2: any byte 0x70..0x7F is negative, and every byte counts by its low nibble. */
static inline unsigned
sign_digit(unsigned char byte, int *negative)
{
    if (display_sign_by_nibble) {
        *negative = (byte & 0xF0) == 0x70;
        return byte & 0x0F;
    }
    *negative = byte >= 0x70 && byte <= 0x79;
    if (*negative)
        return byte - 0x70;
    return (byte >= 0x30 && byte <= 0x39) ? byte - 0x30 : 0;
}

/* The magnitude of a DISPLAY field of `length` bytes; *negative tells its sign. */
static inline unsigned __int128
display_magnitude(const unsigned char *data, Py_ssize_t length, int is_signed, long mode,
                  int *negative)
{
    unsigned digit;
    *negative = 0;
    if (!is_signed)
        return digits_value(data, length, 0);
    if (mode == SIGN_TRAILING_SEPARATE) {
        *negative = data[length - 1] == '-';
        return digits_value(data, length - 1, 0);
    }
    if (mode == SIGN_LEADING_SEPARATE) {
        *negative = data[0] == '-';
        return digits_value(data + 1, length - 1, 0);
    }
    if (mode == SIGN_LEADING) {
        digit = sign_digit(data[0], negative);
        return digits_value(data + 1, length - 1, digit);
    }
    digit = sign_digit(data[length - 1], negative);
    return digits_value(data, length - 1, 0) * 10 + digit;
}

#endif
