/* esrt._callpath, JSON out: the out/io parameters written as jsonio.dumps writes
 * ProgramCodec.dump_outputs' values, byte for byte, or declined; see _callpath.c. */

#include "_callpath.h"

/* ---- JSON out ------------------------------------------------------------------------- */

static int
put(Plan *plan, const void *text, Py_ssize_t size)
{
    if (callpath_reserve(plan, size) < 0)
        return FAILED;
    memcpy(plan->scratch + plan->scratch_used, text, size);
    plan->scratch_used += size;
    return DONE;
}

/* Text of a field's value: an int, or the Decimal str() / format 'f' that jsonio writes for
 * Decimal(number).scaleb(-scale). */
static int
put_number(Plan *plan, int negative, u128 magnitude, long scale)
{
    char coefficient[48], text[160];
    int count = 0;
    do {
        coefficient[sizeof coefficient - 1 - count++] = (char)('0' + (unsigned)(magnitude % 10));
        magnitude /= 10;
    } while (magnitude);
    const char *digits = coefficient + sizeof coefficient - count;
    int zero = count == 1 && digits[0] == '0';
    int size = 0;
    if (negative && !zero)
        text[size++] = '-';
    if (scale <= 0) {
        memcpy(text + size, digits, count);
        size += count;
        for (long i = 0; i < -scale && !zero; i++)
            text[size++] = '0';
        return put(plan, text, size);
    }
    long left = count - scale;       /* digits before the point */
    if (left > 0) {
        memcpy(text + size, digits, left);
        size += left;
        text[size++] = '.';
        memcpy(text + size, digits + left, scale);
        size += scale;
    } else if (left > -6 || size + 2 + scale <= 40) {
        /* str() is plain down to 1E-6; below, jsonio prefers format 'f' up to 40 chars */
        text[size++] = '0';
        text[size++] = '.';
        for (long i = 0; i < -left; i++)
            text[size++] = '0';
        memcpy(text + size, digits, count);
        size += count;
    } else {
        text[size++] = digits[0];
        if (count > 1) {
            text[size++] = '.';
            memcpy(text + size, digits + 1, count - 1);
            size += count - 1;
        }
        size += snprintf(text + size, sizeof text - size, "E%ld", left - 1);
    }
    return put(plan, text, size);
}

static int
put_string(Plan *plan, const unsigned char *data, Py_ssize_t length)
{
    const unsigned char *nul = memchr(data, 0, length);
    Py_ssize_t size = nul ? nul - data : length;
    while (size > 0 && data[size - 1] == ' ')
        size--;
    /* Worst case every byte becomes \u00XX. */
    if (callpath_reserve(plan, size * 6 + 2) < 0)
        return FAILED;
    unsigned char *out = plan->scratch + plan->scratch_used;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < size;) {
        unsigned char c = data[i];
        if (c >= 0x80) {
            int step = utf8_sequence(data + i, data + size);
            if (step == 0)
                return DECLINE;     /* Python replaces it with U+FFFD */
            memcpy(out, data + i, step);
            out += step;
            i += step;
            continue;
        }
        i++;
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = c;
        } else if (c >= 0x20) {
            *out++ = c;
        } else {
            static const char short_forms[] = "btnvfr";
            *out++ = '\\';
            if (c >= '\b' && c <= '\r' && c != '\v') {
                *out++ = (unsigned char)short_forms[c - '\b'];
            } else {
                static const char hex[] = "0123456789abcdef";
                *out++ = 'u';
                *out++ = '0';
                *out++ = '0';
                *out++ = (unsigned char)hex[c >> 4];
                *out++ = (unsigned char)hex[c & 0x0F];
            }
        }
    }
    *out++ = '"';
    plan->scratch_used = out - plan->scratch;
    return DONE;
}

/* A numeric field's value, read as _codec.c's decoders read it. */
static int
put_field(Plan *plan, const Node *node, const unsigned char *data)
{
    Py_ssize_t length = node->length;
    int negative = 0;
    u128 number = 0;
    if (node->kind == K_DISPLAY) {
        number = display_magnitude(data, length, node->is_signed, node->mode, &negative);
    } else if (node->kind == K_BINARY) {
        uint64_t bits = 0;
        for (Py_ssize_t i = 0; i < length; i++)
            bits = (bits << 8) | data[node->mode ? length - 1 - i : i];
        if (node->is_signed && (bits >> (length * 8 - 1)) & 1) {
            negative = 1;
            /* two's complement magnitude of a length-byte number */
            number = length == 8 ? (u128)(~bits) + 1
                                 : ((u128)1 << (length * 8)) - (u128)bits;
        } else {
            number = bits;
        }
    } else {
        Py_ssize_t count = length * 2 - 1;
        for (Py_ssize_t i = 0; i < count; i++) {
            unsigned nibble = (i & 1) ? data[i / 2] & 0x0F : data[i / 2] >> 4;
            /* Nibbles above 9 and 39 digits (beyond 128 bits) are left to Python. */
            if (nibble > 9 || (i == 0 && count > MAX_DIGITS && nibble))
                return DECLINE;
            number = number * 10 + nibble;
        }
        unsigned sign = data[length - 1] & 0x0F;
        negative = sign == 0x0D || sign == 0x0B;
    }
    return put_number(plan, negative, number, node->scale);
}

static int read_value(Plan *plan, const Node *node, const unsigned char *buffer,
                      Py_ssize_t buffer_len, Py_ssize_t frame);

static int
read_one(Plan *plan, const Node *node, const unsigned char *buffer, Py_ssize_t buffer_len,
         Py_ssize_t at)
{
    if (at < 0 || at > buffer_len || node->length > buffer_len - at)
        return DECLINE;
    if (node->kind == K_STRING)
        return put_string(plan, buffer + at, node->length);
    if (node->kind == K_DISPLAY || node->kind == K_BINARY || node->kind == K_PACKED)
        return put_field(plan, node, buffer + at);
    if (node->kind != K_GROUP)
        return DECLINE;
    if (put(plan, "{", 1) < 0)
        return FAILED;
    for (Py_ssize_t i = 0; i < node->nchildren; i++) {
        const Node *child = &plan->nodes[node->first_child + i];
        int status = put(plan, i ? "," : "", i ? 1 : 0);
        if (status == DONE)
            status = put(plan, child->key, child->key_len);
        if (status == DONE)
            status = read_value(plan, child, buffer, buffer_len, at + node->child_base);
        if (status != DONE)
            return status;
    }
    return put(plan, "}", 1);
}

static int
read_value(Plan *plan, const Node *node, const unsigned char *buffer, Py_ssize_t buffer_len,
           Py_ssize_t frame)
{
    Py_ssize_t start = frame + node->offset;
    if (!node->occurs)
        return read_one(plan, node, buffer, buffer_len, start);
    if (put(plan, "[", 1) < 0)
        return FAILED;
    for (Py_ssize_t i = 0; i < node->occurs; i++) {
        int status = i ? put(plan, ",", 1) : DONE;
        if (status == DONE)
            status = read_one(plan, node, buffer, buffer_len, start + i * node->length);
        if (status != DONE)
            return status;
    }
    return put(plan, "]", 1);
}


int
callpath_dump_reply(Plan *plan, unsigned char **buffers, Py_ssize_t *lengths)
{
    plan->scratch_used = 0;
    int status = put(plan, "{", 1);
    for (Py_ssize_t i = 0; i < plan->noutputs && status == DONE; i++) {
        Py_ssize_t index = plan->outputs[i];
        const Node *node = &plan->nodes[index];
        if (i)
            status = put(plan, ",", 1);
        if (status == DONE)
            status = put(plan, node->key, node->key_len);
        if (status == DONE)
            status = read_value(plan, node, buffers[index], lengths[index], -node->offset);
    }
    return status == DONE ? put(plan, "}", 1) : status;
}
