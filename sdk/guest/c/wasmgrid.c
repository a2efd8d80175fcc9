/*
 * wasmgrid.c - the C guest SDK of wasmgrid: the guest ABI v1 (docs/abi.md)
 * over the functions a guest registers in its WG_REGISTER block. See
 * wasmgrid.h for the API and README.md for how to build a guest.
 *
 * The exports at the end are the only wasm-specific part: everything else
 * is portable C11, so a guest can also be compiled and tested natively
 * through wg_call.
 */
#include "wasmgrid.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Little-endian u32, as the ABI encodes every length and count
 * ------------------------------------------------------------------------ */

static inline uint32_t load32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* one unaligned i32.load on wasm */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline void store32(uint8_t *p, uint32_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}

/* copy_bytes copies n bytes between buffers that do not overlap. Keys and
 * values are mostly short: up to 16 bytes move in at most four loads and
 * stores, with no call and no loop; longer ones in one memcpy (one
 * memory.copy). */
static inline void copy_bytes(uint8_t *dst, const uint8_t *src, size_t n) {
    if (n > 16) {
        memcpy(dst, src, n);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, src, 8);
        memcpy(&b, src + n - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + n - 4, 4);
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &b, 4);
    } else if (n > 0) {
        uint8_t a = src[0], b = src[n / 2], c = src[n - 1];
        dst[0] = a;
        dst[n / 2] = b;
        dst[n - 1] = c;
    }
}

/* Out of memory, or a size no wasm32 memory can hold: trap, which the host
 * reports as running out of memory when a memory.grow was refused. */
static _Noreturn void out_of_memory(void) { __builtin_trap(); }

/* ------------------------------------------------------------------------
 * Byte strings and buffers
 * ------------------------------------------------------------------------ */

wg_bytes wg_str(const char *s) { return (wg_bytes){(const uint8_t *)s, strlen(s)}; }

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

bool wg_bytes_equal(wg_bytes a, wg_bytes b) {
    /* Up to 16 bytes with no loop, then 16 bytes per loop iteration:
     * wasi-libc's memcmp is a byte loop. */
    if (a.len != b.len) {
        return false;
    }
    const uint8_t *p = a.ptr, *q = b.ptr;
    size_t n = a.len;
    if (n > 16) {
        for (size_t i = 0; i < n - 16; i += 16) {
            if ((load64(p + i) ^ load64(q + i)) | (load64(p + i + 8) ^ load64(q + i + 8))) {
                return false;
            }
        }
        p += n - 16;
        q += n - 16;
        return ((load64(p) ^ load64(q)) | (load64(p + 8) ^ load64(q + 8))) == 0;
    }
    if (n >= 8) {
        return ((load64(p) ^ load64(q)) | (load64(p + n - 8) ^ load64(q + n - 8))) == 0;
    }
    if (n >= 4) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, p, 4);
        memcpy(&y0, q, 4);
        memcpy(&x1, p + n - 4, 4);
        memcpy(&y1, q + n - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    return n == 0 || (p[0] == q[0] && p[n / 2] == q[n / 2] && p[n - 1] == q[n - 1]);
}

/* grow makes room for n more bytes in b, at least doubling it. */
static __attribute__((noinline)) void grow(wg_buffer *b, size_t n) {
    if (n > SIZE_MAX - b->len) {
        out_of_memory();
    }
    size_t need = b->len + n;
    size_t cap = b->cap < SIZE_MAX / 2 ? 2 * b->cap : SIZE_MAX;
    if (cap < need) {
        cap = need;
    }
    if (cap < 64) {
        cap = 64;
    }
    uint8_t *p = realloc(b->ptr, cap);
    if (p == NULL) {
        out_of_memory();
    }
    b->ptr = p;
    b->cap = cap;
}

uint8_t *wg_buffer_reserve(wg_buffer *b, size_t n) {
    if (b->cap - b->len < n || b->ptr == NULL) {
        grow(b, n);
    }
    return b->ptr + b->len;
}

void wg_buffer_append(wg_buffer *b, wg_bytes data) {
    if (data.len == 0) {
        return;
    }
    copy_bytes(wg_buffer_reserve(b, data.len), data.ptr, data.len);
    b->len += data.len;
}

void wg_buffer_append_byte(wg_buffer *b, uint8_t c) {
    *wg_buffer_reserve(b, 1) = c;
    b->len++;
}

void wg_buffer_append_u64(wg_buffer *b, uint64_t v) {
    uint8_t digits[WG_U64_DIGITS];
    wg_buffer_append(b, wg_format_u64(v, digits));
}

void wg_buffer_free(wg_buffer *b) {
    free(b->ptr);
    *b = (wg_buffer){0};
}

static void append_str(wg_buffer *b, const char *s) { wg_buffer_append(b, wg_str(s)); }

/* ------------------------------------------------------------------------
 * Decimal numbers
 * ------------------------------------------------------------------------ */

/* add_digit appends the digit c to *n and says whether c is a digit. */
static inline bool add_digit(uint64_t *n, uint8_t c) {
    uint8_t d = (uint8_t)(c - '0');
    *n = *n * 10 + d;
    return d <= 9;
}

int wg_parse_u64(wg_bytes s, uint64_t *v) {
    const uint8_t *p = s.ptr;
    size_t len = s.len;
    if (len == 0) {
        *v = 0;
        return WG_PARSE_SYNTAX;
    }
    if (len <= 19) {
        /* Nineteen digits cannot overflow: parse four digits per loop
         * iteration and check them all at the end. */
        uint64_t n = 0;
        bool ok = true;
        size_t i = 0;
        for (; i + 4 <= len; i += 4) {
            ok &= add_digit(&n, p[i]);
            ok &= add_digit(&n, p[i + 1]);
            ok &= add_digit(&n, p[i + 2]);
            ok &= add_digit(&n, p[i + 3]);
        }
        if (i < len) {
            ok &= add_digit(&n, p[i++]);
        }
        if (i < len) {
            ok &= add_digit(&n, p[i++]);
        }
        if (i < len) {
            ok &= add_digit(&n, p[i++]);
        }
        *v = ok ? n : 0;
        return ok ? WG_PARSE_OK : WG_PARSE_SYNTAX;
    }
    /* Longer: the steps of Go's strconv.ParseUint for base 10, so that a
     * malformed or overflowing number gives what the Go guest gives (a
     * syntax error, unless the digits before it overflow first). */
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t d = (uint8_t)(p[i] - '0');
        if (d > 9) {
            *v = 0;
            return WG_PARSE_SYNTAX;
        }
        if (n > UINT64_MAX / 10 || n * 10 > UINT64_MAX - d) {
            *v = UINT64_MAX;
            return WG_PARSE_RANGE;
        }
        n = n * 10 + d;
    }
    *v = n;
    return WG_PARSE_OK;
}

wg_bytes wg_format_u64(uint64_t v, uint8_t buf[WG_U64_DIGITS]) {
    /* Two digits per loop iteration. */
    static const char pairs[] = "00010203040506070809"
                                "10111213141516171819"
                                "20212223242526272829"
                                "30313233343536373839"
                                "40414243444546474849"
                                "50515253545556575859"
                                "60616263646566676869"
                                "70717273747576777879"
                                "80818283848586878889"
                                "90919293949596979899";
    uint8_t *p = buf + WG_U64_DIGITS;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        p[0] = (uint8_t)pairs[2 * r];
        p[1] = (uint8_t)pairs[2 * r + 1];
    }
    if (v >= 10) {
        p -= 2;
        p[0] = (uint8_t)pairs[2 * v];
        p[1] = (uint8_t)pairs[2 * v + 1];
    } else {
        *--p = (uint8_t)('0' + v);
    }
    return (wg_bytes){p, (size_t)(buf + WG_U64_DIGITS - p)};
}

/* ------------------------------------------------------------------------
 * The registry
 * ------------------------------------------------------------------------ */

enum kind { KIND_MAP, KIND_FLAT_MAP, KIND_FLAT_MAP_PAIRS, KIND_FILTER, KIND_REDUCE };

static const char *const kind_names[] = {
    [KIND_MAP] = "map",
    [KIND_FLAT_MAP] = "flat_map",
    [KIND_FLAT_MAP_PAIRS] = "flat_map",
    [KIND_FILTER] = "filter",
    [KIND_REDUCE] = "reduce",
};

struct wg_func {
    enum kind kind;
    char *name;
    union {
        wg_map_fn map;
        wg_flat_map_fn flat_map;
        wg_flat_map_pairs_fn flat_map_pairs;
        wg_filter_fn filter;
        wg_reduce_fn reduce;
    } fn;
};

struct wg_registry {
    struct wg_func *funcs;
    uint32_t n, cap;
    wg_buffer manifest;
};

static struct wg_registry registry;
static bool registered;

/* A registration mistake is a bug in the guest: say what it is on stderr
 * and trap, so that the host refuses the module when it loads it. */
static _Noreturn void registration_error(const char *what, const char *name, const char *why) {
    wg_buffer m = {0};
    append_str(&m, "wasmgrid guest: ");
    append_str(&m, what);
    append_str(&m, " \"");
    append_str(&m, name != NULL ? name : "(null)");
    append_str(&m, "\"");
    append_str(&m, why);
    append_str(&m, "\n");
    for (size_t off = 0; off < m.len;) {
        ssize_t w = write(2, m.ptr + off, m.len - off);
        if (w <= 0) {
            break;
        }
        off += (size_t)w;
    }
    __builtin_trap();
}

/* valid_name reports whether s matches [A-Za-z_][A-Za-z0-9_.-]{0,127}. */
static bool valid_name(const char *s) {
    size_t i = 0;
    for (; s[i] != 0; i++) {
        char c = s[i];
        bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (i > 0 && ((c >= '0' && c <= '9') || c == '.' || c == '-'));
        if (!ok || i >= 128) {
            return false;
        }
    }
    return i > 0;
}

static struct wg_func *add(wg_registry *r, enum kind kind, const char *name, bool have_fn) {
    if (name == NULL || !valid_name(name)) {
        registration_error("invalid function name", name,
                           ": names match [A-Za-z_][A-Za-z0-9_.-]{0,127}");
    }
    for (uint32_t i = 0; i < r->n; i++) {
        if (strcmp(r->funcs[i].name, name) == 0) {
            registration_error("function", name, " registered twice");
        }
    }
    if (!have_fn) {
        registration_error("function", name, " registered with a NULL function pointer");
    }
    if (r->n == r->cap) {
        uint32_t cap = r->cap == 0 ? 16 : 2 * r->cap;
        struct wg_func *funcs = realloc(r->funcs, cap * sizeof *funcs);
        if (funcs == NULL) {
            out_of_memory();
        }
        r->funcs = funcs;
        r->cap = cap;
    }
    size_t len = strlen(name);
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        out_of_memory();
    }
    memcpy(copy, name, len + 1);
    struct wg_func *f = &r->funcs[r->n++];
    *f = (struct wg_func){.kind = kind, .name = copy};
    append_str(&r->manifest, kind_names[kind]);
    wg_buffer_append_byte(&r->manifest, ' ');
    append_str(&r->manifest, name);
    wg_buffer_append_byte(&r->manifest, '\n');
    return f;
}

void wg_map(wg_registry *r, const char *name, wg_map_fn f) {
    add(r, KIND_MAP, name, f != NULL)->fn.map = f;
}

void wg_flat_map(wg_registry *r, const char *name, wg_flat_map_fn f) {
    add(r, KIND_FLAT_MAP, name, f != NULL)->fn.flat_map = f;
}

void wg_flat_map_pairs(wg_registry *r, const char *name, wg_flat_map_pairs_fn f) {
    add(r, KIND_FLAT_MAP_PAIRS, name, f != NULL)->fn.flat_map_pairs = f;
}

void wg_filter(wg_registry *r, const char *name, wg_filter_fn f) {
    add(r, KIND_FILTER, name, f != NULL)->fn.filter = f;
}

void wg_reduce(wg_registry *r, const char *name, wg_reduce_fn f) {
    add(r, KIND_REDUCE, name, f != NULL)->fn.reduce = f;
}

static void ensure_registered(void) {
    if (!registered) {
        registered = true;
        wg_register(&registry);
    }
}

wg_bytes wg_manifest(void) {
    ensure_registered();
    return wg_buffer_bytes(&registry.manifest);
}

/* ------------------------------------------------------------------------
 * State of a call
 * ------------------------------------------------------------------------ */

/* An emitter is a position in the chain: what the function before it emits
 * goes to next (the function at this position), or, at the end of the
 * chain, to the output batch. Emitters live in an array that is kept from
 * call to call, with the scratch buffer of each position. */
struct wg_emitter {
    const struct wg_func *next; /* NULL: the output batch */
    wg_emitter *down;           /* the emitter next's function is given */
    uint32_t count;             /* records emitted since the function was called */
    bool pending;               /* between wg_emit_begin and wg_emit_end */
    size_t key_len, value_len;  /* of the pending record */
    wg_buffer scratch;          /* a pending record that goes to next */
};

static struct {
    wg_buffer out;   /* the output batch: a count, then the records */
    uint32_t count;  /* records in out */
    bool failed;     /* a user function called wg_fail */
    wg_buffer msg;   /* the message of status 1 or 2 */
    wg_buffer acc;   /* reduce's accumulator */
    wg_emitter *em;  /* the chain's positions, n_funcs + 1 of them */
    uint32_t em_cap;
} call;

static inline __attribute__((always_inline)) void append_record(wg_bytes k, wg_bytes v) {
#if SIZE_MAX > UINT32_MAX
    if (k.len > UINT32_MAX || v.len > UINT32_MAX) {
        out_of_memory();
    }
#endif
    if (v.len > SIZE_MAX - 8 - k.len) {
        out_of_memory();
    }
    size_t need = 8 + k.len + v.len;
    uint8_t *p = wg_buffer_reserve(&call.out, need);
    store32(p, (uint32_t)k.len);
    store32(p + 4, (uint32_t)v.len);
    copy_bytes(p + 8, k.ptr, k.len);
    copy_bytes(p + 8 + k.len, v.ptr, v.len);
    call.out.len += need;
    call.count++;
}

/* ------------------------------------------------------------------------
 * Failing
 * ------------------------------------------------------------------------ */

void wg_fail(const char *fmt, ...) {
    if (call.failed) {
        return;
    }
    call.failed = true;
    call.msg.len = 0;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        uint8_t *p = wg_buffer_reserve(&call.msg, (size_t)n + 1);
        vsnprintf((char *)p, (size_t)n + 1, fmt, ap2);
        call.msg.len = (size_t)n;
    }
    va_end(ap2);
}

void wg_fail_bytes(const char *prefix, wg_bytes detail) {
    if (call.failed) {
        return;
    }
    call.failed = true;
    call.msg.len = 0;
    append_str(&call.msg, prefix);
    wg_buffer_append(&call.msg, detail);
}

/* ------------------------------------------------------------------------
 * Chains of map, flat_map and filter functions
 * ------------------------------------------------------------------------ */

static void map_emitted(const struct wg_func *f, uint32_t n) {
    call.failed = true;
    call.msg.len = 0;
    append_str(&call.msg, "map function \"");
    append_str(&call.msg, f->name);
    append_str(&call.msg, "\" emitted ");
    wg_buffer_append_u64(&call.msg, n);
    append_str(&call.msg, " records; a map function emits exactly one");
}

/* deliver runs f on one record; f emits into e. */
static void deliver(const struct wg_func *f, wg_emitter *e, wg_bytes k, wg_bytes v) {
    switch (f->kind) {
    case KIND_MAP:
        e->count = 0;
        f->fn.map(k, v, e);
        if (e->count != 1 && !call.failed) {
            map_emitted(f, e->count);
        }
        break;
    case KIND_FLAT_MAP:
        f->fn.flat_map(v, e);
        break;
    case KIND_FLAT_MAP_PAIRS:
        f->fn.flat_map_pairs(k, v, e);
        break;
    case KIND_FILTER:
        if (f->fn.filter(k, v)) {
            wg_emit(e, k, v);
        }
        break;
    case KIND_REDUCE: /* never chained: run checks */
        break;
    }
}

static __attribute__((noinline)) void emit_down(wg_emitter *out, wg_bytes key, wg_bytes value) {
    if (call.failed) {
        return;
    }
    out->count++;
    deliver(out->next, out->down, key, value);
}

void wg_emit(wg_emitter *out, wg_bytes key, wg_bytes value) {
    /* The common case first, small enough to inline into user functions:
     * the record goes to the output batch. */
    if (out->next == NULL && !call.failed) {
        out->count++;
        append_record(key, value);
        return;
    }
    emit_down(out, key, value);
}

uint8_t *wg_emit_begin(wg_emitter *out, size_t key_len, size_t value_len) {
#if SIZE_MAX > UINT32_MAX
    if (key_len > UINT32_MAX || value_len > UINT32_MAX) {
        out_of_memory();
    }
#endif
    if (value_len > SIZE_MAX - 8 - key_len) {
        out_of_memory();
    }
    out->pending = true;
    out->key_len = key_len;
    out->value_len = value_len;
    if (out->next == NULL) {
        uint8_t *p = wg_buffer_reserve(&call.out, 8 + key_len + value_len);
        store32(p, (uint32_t)key_len);
        store32(p + 4, (uint32_t)value_len);
        return p + 8;
    }
    out->scratch.len = 0;
    return wg_buffer_reserve(&out->scratch, key_len + value_len);
}

void wg_emit_end(wg_emitter *out) {
    if (!out->pending) {
        return;
    }
    out->pending = false;
    if (call.failed) {
        return;
    }
    out->count++;
    if (out->next == NULL) {
        call.out.len += 8 + out->key_len + out->value_len;
        call.count++;
    } else {
        const uint8_t *p = out->scratch.ptr;
        deliver(out->next, out->down, (wg_bytes){p, out->key_len},
                (wg_bytes){p + out->key_len, out->value_len});
    }
}

/* ------------------------------------------------------------------------
 * Running a call
 * ------------------------------------------------------------------------ */

/* bad sets the message of a malformed call, a + x + b + y + c with the
 * numbers x and y in decimal, and returns its status. */
static int bad(const char *a, uint64_t x, const char *b, uint64_t y, const char *c) {
    call.msg.len = 0;
    append_str(&call.msg, a);
    wg_buffer_append_u64(&call.msg, x);
    append_str(&call.msg, b);
    wg_buffer_append_u64(&call.msg, y);
    append_str(&call.msg, c);
    return WG_STATUS_BAD_CALL;
}

/* bad_text sets the message of a malformed call to text. */
static int bad_text(const char *text) {
    call.msg.len = 0;
    append_str(&call.msg, text);
    return WG_STATUS_BAD_CALL;
}

/* A reader walks the records of a batch, checking them as it goes. */
struct reader {
    const uint8_t *p, *end;
    uint32_t i, n;
};

static int reader_open(struct reader *r, const uint8_t *batch, size_t len) {
    if (len < 4) {
        return bad_text("batch shorter than its record count");
    }
    *r = (struct reader){.p = batch + 4, .end = batch + len, .n = load32(batch)};
    return WG_STATUS_OK;
}

/* reader_next reads the next record into *k and *v and returns 1, or
 * returns 0 at the end of a well-formed batch, or -1 (with the message set)
 * if the batch is malformed. */
static inline int reader_next(struct reader *r, wg_bytes *k, wg_bytes *v) {
    size_t left = (size_t)(r->end - r->p);
    if (r->i == r->n) {
        if (left != 0) {
            bad("", left, " bytes after the last of ", r->n, " records");
            return -1;
        }
        return 0;
    }
    if (left < 8) {
        bad("record ", r->i, " of ", r->n, ": truncated header");
        return -1;
    }
    uint32_t kl = load32(r->p), vl = load32(r->p + 4);
    if ((uint64_t)left - 8 < (uint64_t)kl + vl) {
        bad("record ", r->i, " of ", r->n, ": lengths ");
        wg_buffer_append_u64(&call.msg, kl);
        wg_buffer_append_byte(&call.msg, '+');
        wg_buffer_append_u64(&call.msg, vl);
        append_str(&call.msg, " pass the end of the batch");
        return -1;
    }
    *k = (wg_bytes){r->p + 8, kl};
    *v = (wg_bytes){r->p + 8 + kl, vl};
    r->p += 8 + (size_t)kl + vl;
    r->i++;
    return 1;
}

/*
 * The record loops handle eight records per loop iteration, by calling a
 * step function eight times in a row: a host that can interrupt its guests
 * pays at every loop iteration (wazero leaves the guest at each loop header
 * to check its context, tens of nanoseconds), and records are often tiny.
 * A step returns CONTINUE or the call's status.
 */
enum { CONTINUE = -1 };
#define EIGHT_TIMES(stmt) stmt stmt stmt stmt stmt stmt stmt stmt

static inline int chain_step(struct reader *r, const struct wg_func *first, wg_emitter *e) {
    wg_bytes k, v;
    int more = reader_next(r, &k, &v);
    if (more <= 0) {
        return more == 0 ? WG_STATUS_OK : WG_STATUS_BAD_CALL;
    }
    deliver(first, e, k, v);
    return call.failed ? WG_STATUS_USER_ERROR : CONTINUE;
}

static int run_chain(const uint8_t *batch, size_t len) {
    struct reader r;
    if (reader_open(&r, batch, len) != WG_STATUS_OK) {
        return WG_STATUS_BAD_CALL;
    }
    const struct wg_func *first = call.em[0].next;
    wg_emitter *e = call.em[0].down;
    for (;;) {
        int status;
        EIGHT_TIMES(if ((status = chain_step(&r, first, e)) != CONTINUE) { return status; })
    }
}

/* A reduction in progress: the run of key, whose value is first if the run
 * has one record so far, else the accumulator. */
struct run {
    wg_bytes key, first;
    bool have, folded;
};

static inline void emit_run(const struct run *run) {
    if (run->have) {
        append_record(run->key, run->folded ? wg_buffer_bytes(&call.acc) : run->first);
    }
}

static inline int reduce_step(struct reader *r, const struct wg_func *f, struct run *run) {
    wg_bytes k, v;
    int more = reader_next(r, &k, &v);
    if (more <= 0) {
        if (more < 0) {
            return WG_STATUS_BAD_CALL;
        }
        emit_run(run);
        return WG_STATUS_OK;
    }
    if (run->have && wg_bytes_equal(k, run->key)) {
        if (!run->folded) {
            call.acc.len = 0;
            wg_buffer_append(&call.acc, run->first);
            run->folded = true;
        }
        f->fn.reduce(&call.acc, v);
        return call.failed ? WG_STATUS_USER_ERROR : CONTINUE;
    }
    emit_run(run);
    *run = (struct run){.key = k, .first = v, .have = true};
    return CONTINUE;
}

/* run_reduce folds each run of equal keys with f and emits one record per
 * run. A run of one record is emitted as it came, without a copy into the
 * accumulator. */
static int run_reduce(const struct wg_func *f, const uint8_t *batch, size_t len) {
    struct reader r;
    if (reader_open(&r, batch, len) != WG_STATUS_OK) {
        return WG_STATUS_BAD_CALL;
    }
    struct run run = {0};
    for (;;) {
        int status;
        EIGHT_TIMES(if ((status = reduce_step(&r, f, &run)) != CONTINUE) { return status; })
    }
}

/* chain_positions makes room for n + 1 emitters, keeping their scratch
 * buffers. */
static void chain_positions(uint32_t n) {
    if (n + 1 <= call.em_cap) {
        return;
    }
    uint32_t cap = n + 1 < 8 ? 8 : n + 1;
#if SIZE_MAX <= UINT32_MAX
    if (cap > SIZE_MAX / sizeof(wg_emitter)) {
        out_of_memory();
    }
#endif
    wg_emitter *em = realloc(call.em, cap * sizeof *em);
    if (em == NULL) {
        out_of_memory();
    }
    memset(em + call.em_cap, 0, (cap - call.em_cap) * sizeof *em);
    call.em = em;
    call.em_cap = cap;
}

static int run(const uint8_t *c, size_t len) {
    if (len < 4) {
        return bad_text("call shorter than its function count");
    }
    uint32_t n = load32(c);
    if (n == 0 || (uint64_t)len < 4 + 4 * (uint64_t)n + 4) {
        return bad("call names ", n, " functions but has ", len, " bytes");
    }
    chain_positions(n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = load32(c + 4 + 4 * (size_t)i);
        if (idx >= registry.n) {
            return bad("function index ", idx, " out of range: the module has ", registry.n,
                       " functions");
        }
        wg_emitter *e = &call.em[i];
        e->next = &registry.funcs[idx];
        e->down = &call.em[i + 1];
        e->pending = false;
    }
    call.em[n].next = NULL;
    call.em[n].down = NULL;
    call.em[n].pending = false;

    const uint8_t *batch = c + 4 + 4 * (size_t)n;
    size_t batch_len = len - 4 - 4 * (size_t)n;
    if (call.em[0].next->kind == KIND_REDUCE) {
        if (n != 1) {
            return bad_text("a reduce function must be called alone");
        }
        return run_reduce(call.em[0].next, batch, batch_len);
    }
    for (uint32_t i = 1; i < n; i++) {
        if (call.em[i].next->kind == KIND_REDUCE) {
            bad_text("reduce function \"");
            append_str(&call.msg, call.em[i].next->name);
            append_str(&call.msg, "\" chained after other functions");
            return WG_STATUS_BAD_CALL;
        }
    }
    return run_chain(batch, batch_len);
}

int wg_call(const uint8_t *c, size_t len, wg_bytes *out) {
    ensure_registered();
    /* Leave room for the record count, written when the call ends. */
    call.out.len = 0;
    wg_buffer_reserve(&call.out, 4);
    call.out.len = 4;
    call.count = 0;
    call.failed = false;
    call.msg.len = 0;
    int status = run(c, len);
    if (status == WG_STATUS_OK) {
        store32(call.out.ptr, call.count);
        *out = wg_buffer_bytes(&call.out);
    } else {
        *out = wg_buffer_bytes(&call.msg);
    }
    return status;
}

/* ------------------------------------------------------------------------
 * The wasm exports (docs/abi.md, "Exports")
 * ------------------------------------------------------------------------ */

#ifdef __wasm__

#define EXPORT(name) __attribute__((export_name(name), visibility("default")))

static uint8_t *input;    /* the buffer wasmgrid_alloc hands out */
static size_t input_cap;
static wg_bytes output;   /* what wasmgrid_output returns */

static int64_t pack(wg_bytes b) {
    if (b.len == 0) {
        return 0;
    }
    return (int64_t)((uint64_t)(uintptr_t)b.ptr << 32 | (uint64_t)b.len);
}

EXPORT("wasmgrid_abi_version") int32_t wasmgrid_abi_version(void) { return WG_ABI_VERSION; }

EXPORT("wasmgrid_describe") int64_t wasmgrid_describe(void) { return pack(wg_manifest()); }

EXPORT("wasmgrid_alloc") int32_t wasmgrid_alloc(int32_t n) {
    if (n < 0) {
        return 0;
    }
    size_t want = (size_t)n;
    if (input == NULL || input_cap < want) {
        /* The old contents are not needed: free first, so that the
         * allocator may reuse the space. Grow by half at least, so that
         * calls of slowly growing sizes do not reallocate every time. */
        size_t cap = input_cap + input_cap / 2;
        if (cap < want) {
            cap = want;
        }
        if (cap < 64) {
            cap = 64;
        }
        free(input);
        input = malloc(cap);
        input_cap = input == NULL ? 0 : cap;
        if (input == NULL) {
            return 0;
        }
    }
    return (int32_t)(uintptr_t)input;
}

EXPORT("wasmgrid_run") int32_t wasmgrid_run(int32_t ptr, int32_t n) {
    /* The host writes calls into the buffer wasmgrid_alloc returned. */
    if (input == NULL || ptr != (int32_t)(uintptr_t)input || n < 0 || (size_t)n > input_cap) {
        call.msg.len = 0;
        append_str(&call.msg,
                   "wasmgrid_run: the call is not in the buffer returned by wasmgrid_alloc");
        output = wg_buffer_bytes(&call.msg);
        return WG_STATUS_BAD_CALL;
    }
    return wg_call(input, (size_t)n, &output);
}

EXPORT("wasmgrid_output") int64_t wasmgrid_output(void) { return pack(output); }

#endif /* __wasm__ */
