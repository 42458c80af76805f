/* Shared by the parts of esrt._callpath (see _callpath.c for what the module does):
 * the compiled plan, the outcome codes and the helpers both JSON directions use. */

#ifndef ESRT_CALLPATH_H
#define ESRT_CALLPATH_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "cobol_display.h"

typedef __int128 i128;
typedef unsigned __int128 u128;

#define MAX_DIGITS 38
#define MAX_CALL_ARGS 16

enum { K_GROUP, K_STRING, K_DISPLAY, K_BINARY, K_PACKED, K_OTHER };

/* Outcomes of the internal steps. */
#define DONE 1
#define DECLINE 0
#define FAILED (-1)

extern u128 callpath_pow10[MAX_DIGITS + 1];   /* 10**n, set when the module loads */

typedef struct {
    int kind;
    Py_ssize_t offset, length, occurs, child_base;
    Py_ssize_t first_child, nchildren;
    long digits, scale;
    int is_signed, mode;            /* mode: sign mode (DISPLAY) or little-endian (binary) */
    const char *name, *key;         /* name as sent; '"NAME":' as written (JSON-escaped) */
    Py_ssize_t name_len, key_len;
    uint64_t stamp;                 /* duplicate-key check: the object it was last seen in */
} Node;

typedef struct {
    PyObject_HEAD
    PyObject *spec;                 /* keeps the bytes the nodes point into alive */
    Node *nodes;
    Py_ssize_t nnodes, nparams;
    char *is_input;
    Py_ssize_t *outputs, noutputs;
    const unsigned char **images;
    Py_ssize_t *image_len;
    unsigned char *scratch;
    Py_ssize_t scratch_size, scratch_used;
    /* The buffers of the call in progress, one per parameter. Kept here, not on the stack:
     * the number of parameters comes from the mapping, and a stack array sized by it is a
     * stack overflow that a big enough mapping chooses. A Plan runs one call at a time (the
     * GIL is held and no Python code runs in between), as for scratch. */
    unsigned char **buffer_data;
    Py_ssize_t *buffer_len;
    uint64_t stamp;
    int ready;                      /* set once __init__ has succeeded */
} Plan;

int callpath_reserve(Plan *plan, Py_ssize_t more);

/* _callpath_in.c: the request body into the buffers (already reset to their images). */
int callpath_load_request(Plan *plan, unsigned char **buffers, Py_ssize_t *lengths,
                 const unsigned char *body, Py_ssize_t size);

/* _callpath_out.c: the reply into plan->scratch[0:scratch_used]. */
int callpath_dump_reply(Plan *plan, unsigned char **buffers, Py_ssize_t *lengths);

/* Length of the strict UTF-8 sequence at p (as Python's decoder accepts it), 0 if invalid. */
static inline int
utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    int size;
    unsigned char low = 0x80, high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        size = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        size = 3;
        if (c == 0xE0)
            low = 0xA0;
        else if (c == 0xED)
            high = 0x9F;        /* encoded surrogates are not UTF-8 */
    } else if (c >= 0xF0 && c <= 0xF4) {
        size = 4;
        if (c == 0xF0)
            low = 0x90;
        else if (c == 0xF4)
            high = 0x8F;
    } else
        return 0;
    if (end - p < size || p[1] < low || p[1] > high)
        return 0;
    for (int i = 2; i < size; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return size;
}

#endif
