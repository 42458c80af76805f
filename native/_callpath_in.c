/* esrt._callpath, JSON in: a request body parsed straight into LINKAGE buffers, guided by
 * the plan (no generic JSON values are built).  Accepts exactly what jsonio.loads followed
 * by ProgramCodec.load_inputs accepts, or declines; see _callpath.c. */

#include "_callpath.h"

/* ---- JSON in -------------------------------------------------------------------------- */

typedef struct {
    Plan *plan;
    const unsigned char *p, *end;
    unsigned char *buffer;
    Py_ssize_t buffer_len;
} Reader;

static void
skip_space(Reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int
expect(Reader *r, unsigned char c)
{
    skip_space(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return 1;
    }
    return 0;
}


static int
hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A JSON string at r->p (after skipping space): its UTF-8 bytes, pointing into the body
 * when it has no escapes, else into the plan's scratch buffer. */
static int
read_string(Reader *r, const unsigned char **text, Py_ssize_t *size)
{
    if (!expect(r, '"'))
        return DECLINE;
    const unsigned char *start = r->p;
    const unsigned char *p = start;
    while (p < r->end && *p != '"' && *p != '\\') {
        int step = (*p < 0x20) ? 0 : utf8_sequence(p, r->end);
        if (step == 0)
            return DECLINE;
        p += step;
    }
    if (p < r->end && *p == '"') {
        *text = start;
        *size = p - start;
        r->p = p + 1;
        return DONE;
    }
    /* Escapes: copy into scratch; every escape gives at most as many bytes as it takes. */
    Plan *plan = r->plan;
    plan->scratch_used = 0;
    if (callpath_reserve(plan, r->end - start) < 0)
        return FAILED;
    unsigned char *out = plan->scratch;
    memcpy(out, start, p - start);
    out += p - start;
    while (p < r->end && *p != '"') {
        if (*p != '\\') {
            int step = (*p < 0x20) ? 0 : utf8_sequence(p, r->end);
            if (step == 0)
                return DECLINE;
            memcpy(out, p, step);
            out += step;
            p += step;
            continue;
        }
        if (r->end - p < 2)
            return DECLINE;
        unsigned char c = p[1];
        p += 2;
        switch (c) {
        case '"': case '\\': case '/': *out++ = c; break;
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 't': *out++ = '\t'; break;
        case 'u': {
            if (r->end - p < 4)
                return DECLINE;
            unsigned code = 0;
            for (int i = 0; i < 4; i++) {
                int digit = hex_value(p[i]);
                if (digit < 0)
                    return DECLINE;
                code = code * 16 + (unsigned)digit;
            }
            p += 4;
            if (code >= 0xD800 && code <= 0xDFFF)
                return DECLINE;     /* surrogates (pairs or lone): Python decides */
            if (code < 0x80)
                *out++ = (unsigned char)code;
            else if (code < 0x800) {
                *out++ = (unsigned char)(0xC0 | (code >> 6));
                *out++ = (unsigned char)(0x80 | (code & 0x3F));
            } else {
                *out++ = (unsigned char)(0xE0 | (code >> 12));
                *out++ = (unsigned char)(0x80 | ((code >> 6) & 0x3F));
                *out++ = (unsigned char)(0x80 | (code & 0x3F));
            }
            break;
        }
        default:
            return DECLINE;
        }
    }
    if (p >= r->end)
        return DECLINE;
    r->p = p + 1;
    *text = plan->scratch;
    *size = out - plan->scratch;
    return DONE;
}

/* A JSON number whose value v fits the field: the stored integer N = v * 10**scale.
 * Same acceptance as jsonio.loads followed by _pycodec._scaled_integer. */
static int
read_number(Reader *r, const Node *node, i128 *out)
{
    skip_space(r);
    const unsigned char *p = r->p, *end = r->end;
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return DECLINE;
    char significant[2 * MAX_DIGITS + 2];
    int count = 0;
    long exponent = 0;
    /* Digits go in `significant` without leading zeros; more than fit cannot be a value
     * the field holds unless they end in zeros, which is rare enough to leave to Python. */
    if (*p == '0')
        p++;
    else
        while (p < end && *p >= '0' && *p <= '9') {
            if (count == (int)sizeof significant)
                return DECLINE;
            significant[count++] = (char)(*p++ - '0');
        }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return DECLINE;
        while (p < end && *p >= '0' && *p <= '9') {
            if (count == 0 && *p == '0') {
                exponent--;
                p++;
                continue;
            }
            if (count == (int)sizeof significant)
                return DECLINE;
            significant[count++] = (char)(*p++ - '0');
            exponent--;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int exp_negative = 0;
        if (p < end && (*p == '+' || *p == '-'))
            exp_negative = *p++ == '-';
        if (p >= end || *p < '0' || *p > '9')
            return DECLINE;
        long given = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (given > 100000)
                return DECLINE;
            given = given * 10 + (*p++ - '0');
        }
        exponent += exp_negative ? -given : given;
    }
    r->p = p;
    while (count > 0 && significant[count - 1] == 0) {
        count--;
        exponent++;
    }
    if (count == 0) {
        *out = 0;
        return DONE;
    }
    exponent += node->scale;
    if (exponent < 0 || count + exponent > node->digits || (negative && !node->is_signed))
        return DECLINE;
    u128 magnitude = 0;
    for (int i = 0; i < count; i++)
        magnitude = magnitude * 10 + (unsigned)significant[i];
    magnitude *= callpath_pow10[exponent];
    *out = negative ? -(i128)magnitude : (i128)magnitude;
    return DONE;
}

static int
in_bounds(const Reader *r, Py_ssize_t at, Py_ssize_t length)
{
    return at >= 0 && length >= 0 && at <= r->buffer_len && length <= r->buffer_len - at;
}

static void
write_digits(unsigned char *text, long count, u128 magnitude)
{
    for (long i = count - 1; i >= 0; i--) {
        text[i] = (unsigned char)('0' + (unsigned)(magnitude % 10));
        magnitude /= 10;
    }
}

/* Store the stored integer `number` in a numeric field; the byte layouts are _codec.c's. */
static int
store_number(const Node *node, unsigned char *data, i128 number)
{
    u128 magnitude = number < 0 ? -(u128)number : (u128)number;
    int negative = number < 0;
    if (node->kind == K_DISPLAY) {
        int separate = node->is_signed && node->mode >= SIGN_TRAILING_SEPARATE;
        unsigned char *body = data + (separate && node->mode == SIGN_LEADING_SEPARATE);
        write_digits(body, node->digits, magnitude);
        if (separate)
            data[node->mode == SIGN_LEADING_SEPARATE ? 0 : node->digits] = negative ? '-' : '+';
        else if (node->is_signed && negative)
            data[node->mode == SIGN_LEADING ? 0 : node->digits - 1] += 0x40;
        return DONE;
    }
    if (node->kind == K_BINARY) {
        i128 limit = (i128)1 << (node->length * 8 - (node->is_signed ? 1 : 0));
        if (node->is_signed ? (number < -limit || number >= limit) : number >= limit)
            return DECLINE;
        u128 bits = (u128)number;
        for (Py_ssize_t i = 0; i < node->length; i++) {
            data[node->mode ? i : node->length - 1 - i] = (unsigned char)(bits & 0xFF);
            bits >>= 8;
        }
        return DONE;
    }
    unsigned nibble = node->is_signed ? (negative ? 0x0D : 0x0C) : 0x0F;
    for (Py_ssize_t i = node->length - 1; i >= 0; i--) {
        unsigned high = (unsigned)(magnitude % 10);
        magnitude /= 10;
        data[i] = (unsigned char)((high << 4) | nibble);
        nibble = (unsigned)(magnitude % 10);
        magnitude /= 10;
    }
    return DONE;
}

static int write_value(Reader *r, Node *node, Py_ssize_t frame);

/* One JSON object's members into the children of `parent` (or the parameters when
 * parent is NULL, each in its own buffer). */
static int
write_members(Reader *r, Node *parent, Py_ssize_t at, unsigned char **buffers,
              Py_ssize_t *lengths)
{
    Plan *plan = r->plan;
    uint64_t stamp = ++plan->stamp;
    if (!expect(r, '{'))
        return DECLINE;
    if (expect(r, '}'))
        return DONE;
    Node *first = parent ? &plan->nodes[parent->first_child] : plan->nodes;
    Py_ssize_t count = parent ? parent->nchildren : plan->nparams;
    do {
        const unsigned char *key;
        Py_ssize_t size;
        int status = read_string(r, &key, &size);
        if (status != DONE)
            return status;
        Py_ssize_t index = 0;
        while (index < count && (first[index].name_len != size
                                 || memcmp(first[index].name, key, size) != 0))
            index++;
        if (index == count || first[index].stamp == stamp || !expect(r, ':'))
            return DECLINE;
        Node *child = &first[index];
        child->stamp = stamp;
        if (parent == NULL) {
            if (!plan->is_input[index])
                return DECLINE;
            r->buffer = buffers[index];
            r->buffer_len = lengths[index];
            status = write_value(r, child, -child->offset);
        } else {
            status = write_value(r, child, at + parent->child_base);
        }
        if (status != DONE)
            return status;
    } while (expect(r, ','));
    return expect(r, '}') ? DONE : DECLINE;
}

static int
write_one(Reader *r, Node *node, Py_ssize_t at)
{
    if (!in_bounds(r, at, node->length))
        return DECLINE;
    unsigned char *data = r->buffer + at;
    if (node->kind == K_GROUP)
        return write_members(r, node, at, NULL, NULL);
    if (node->kind == K_STRING) {
        const unsigned char *text;
        Py_ssize_t size;
        int status = read_string(r, &text, &size);
        if (status != DONE)
            return status;
        if (size > node->length)
            return DECLINE;
        memcpy(data, text, size);
        memset(data + size, ' ', node->length - size);
        return DONE;
    }
    if (node->kind == K_OTHER)
        return DECLINE;
    i128 number;
    int status = read_number(r, node, &number);
    return status == DONE ? store_number(node, data, number) : status;
}

static int
write_value(Reader *r, Node *node, Py_ssize_t frame)
{
    Py_ssize_t start = frame + node->offset;
    if (!node->occurs)
        return write_one(r, node, start);
    if (!expect(r, '['))
        return DECLINE;
    if (expect(r, ']'))
        return DONE;
    Py_ssize_t index = 0;
    do {
        if (index == node->occurs)
            return DECLINE;
        int status = write_one(r, node, start + index * node->length);
        if (status != DONE)
            return status;
        index++;
    } while (expect(r, ','));
    return expect(r, ']') ? DONE : DECLINE;
}


int
callpath_load_request(Plan *plan, unsigned char **buffers, Py_ssize_t *lengths,
             const unsigned char *body, Py_ssize_t size)
{
    Reader r = {plan, body, body + size, NULL, 0};
    skip_space(&r);
    if (r.p == r.end)
        return DONE;    /* an empty body means no parameters, as in the SEP */
    int status = write_members(&r, NULL, 0, buffers, lengths);
    skip_space(&r);
    return (status == DONE && r.p != r.end) ? DECLINE : status;
}
