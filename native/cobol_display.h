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

/* An embedded sign: 'p'..'y' is a negative 0..9; a byte that is not a digit counts as 0. */
static inline unsigned
sign_digit(unsigned char byte, int *negative)
{
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
