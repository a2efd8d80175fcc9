/*
 * The word-count guest module written in C: flat_map split and reduce sum,
 * with the semantics of the Go guest (examples/wordcount/wordcount.go).
 * Build it from the repository's root with
 *
 *     sdk/guest/c/build.sh examples/wordcount/guest/c examples/wordcount/guest/c/guest.wasm
 */
#include "wasmgrid.h"

#include <string.h>

static const wg_bytes one = {(const uint8_t *)"1", 1};

#ifdef __wasm_simd128__
/*
 * With wasm SIMD (build.sh enables it), split classifies 64 bytes at a time
 * into a bit mask of word bytes and a lowercased copy, then walks the words
 * from mask bit to mask bit: one loop iteration per word or per 64 bytes
 * rather than one per byte. That matters twice under wasmgrid, whose
 * interruptible guests pay for every loop iteration.
 */
#include <wasm_simd128.h>

static inline v128_t in_range(v128_t v, char lo, int n) {
    return wasm_u8x16_lt(wasm_i8x16_sub(v, wasm_i8x16_splat(lo)), wasm_i8x16_splat((int8_t)n));
}

/* classify returns the mask of the ASCII letters and digits of the 64
 * bytes at p, bit i for byte i, and writes the bytes lowercased to low. */
static inline uint64_t classify(const uint8_t *p, uint8_t low[64]) {
    uint64_t mask = 0;
    for (int i = 0; i < 4; i++) {
        v128_t v = wasm_v128_load(p + 16 * i);
        v128_t upper = in_range(v, 'A', 26);
        v128_t word = wasm_v128_or(upper, wasm_v128_or(in_range(v, 'a', 26), in_range(v, '0', 10)));
        v128_t lowered = wasm_v128_or(v, wasm_v128_and(upper, wasm_i8x16_splat(0x20)));
        wasm_v128_store(low + 16 * i, lowered);
        mask |= (uint64_t)wasm_i8x16_bitmask(word) << (16 * i);
    }
    return mask;
}

/* A word that runs across blocks, lowercased. */
static wg_buffer long_word;

/* emit_next emits the word that ends at the lowest bit of *ends: the word
 * that runs on from the last block, or the one that starts at the lowest
 * bit of *starts. */
static inline void emit_next(uint64_t *ends, uint64_t *starts, bool *running,
                             const uint8_t low[64], wg_emitter *out) {
    unsigned e = (unsigned)__builtin_ctzll(*ends);
    *ends &= *ends - 1;
    if (*running) {
        wg_buffer_append(&long_word, (wg_bytes){low, e});
        wg_emit(out, wg_buffer_bytes(&long_word), one);
        *running = false;
        return;
    }
    unsigned s = (unsigned)__builtin_ctzll(*starts);
    *starts &= *starts - 1;
    wg_emit(out, (wg_bytes){low + s, e - s}, one);
}

/* split emits (word, "1") for every word of line: a word is a maximal run
 * of ASCII letters and digits, lowercased; every other byte separates
 * words. */
static void split(wg_bytes line, wg_emitter *out) {
    bool running = false; /* whether a word runs on from the last block */
    for (size_t base = 0; base < line.len; base += 64) {
        const uint8_t *block = line.ptr + base;
        uint8_t pad[64], low[64];
        if (line.len - base < 64) {
            /* Zeros separate words, so the padding ends the last one. */
            memset(pad, 0, sizeof pad);
            memcpy(pad, block, line.len - base);
            block = pad;
        }
        uint64_t w = classify(block, low);
        /* A word starts at a word byte after a separator and ends at a
         * separator after a word byte. */
        uint64_t before = w << 1 | running;
        uint64_t starts = w & ~before, ends = ~w & before;
        while (ends != 0) {
            /* Up to four words per iteration: every loop iteration costs an
             * interruptible guest a trip out to the host. */
            emit_next(&ends, &starts, &running, low, out);
            if (ends == 0) {
                break;
            }
            emit_next(&ends, &starts, &running, low, out);
            if (ends == 0) {
                break;
            }
            emit_next(&ends, &starts, &running, low, out);
            if (ends == 0) {
                break;
            }
            emit_next(&ends, &starts, &running, low, out);
        }
        if (starts != 0) {
            /* A word starts in this block and runs to its end. */
            unsigned s = (unsigned)__builtin_ctzll(starts);
            wg_buffer_reset(&long_word);
            wg_buffer_append(&long_word, (wg_bytes){low + s, 64 - s});
            running = true;
        } else if (running) {
            wg_buffer_append(&long_word, (wg_bytes){low, 64});
        }
    }
    if (running) {
        wg_emit(out, wg_buffer_bytes(&long_word), one);
    }
}

#else /* !__wasm_simd128__: byte by byte */

/* word_byte[c] is c lowercased if c is an ASCII letter or digit, else 0. */
static const uint8_t word_byte[256] = {
#define DIGITS(c) ['0' + c] = '0' + c
#define LETTER(c) ['a' + c] = 'a' + c, ['A' + c] = 'a' + c
    DIGITS(0), DIGITS(1), DIGITS(2), DIGITS(3), DIGITS(4),
    DIGITS(5), DIGITS(6), DIGITS(7), DIGITS(8), DIGITS(9),
    LETTER(0), LETTER(1), LETTER(2), LETTER(3), LETTER(4), LETTER(5), LETTER(6),
    LETTER(7), LETTER(8), LETTER(9), LETTER(10), LETTER(11), LETTER(12), LETTER(13),
    LETTER(14), LETTER(15), LETTER(16), LETTER(17), LETTER(18), LETTER(19), LETTER(20),
    LETTER(21), LETTER(22), LETTER(23), LETTER(24), LETTER(25),
#undef DIGITS
#undef LETTER
};

/* split emits (word, "1") for every word of line: a word is a maximal run
 * of ASCII letters and digits, lowercased; every other byte separates
 * words. */
static void split(wg_bytes line, wg_emitter *out) {
    const uint8_t *p = line.ptr, *end = line.ptr + line.len;
    for (;;) {
        while (p < end && word_byte[*p] == 0) {
            p++;
        }
        if (p == end) {
            return;
        }
        const uint8_t *start = p;
        bool upper = false;
        while (p < end && word_byte[*p] != 0) {
            upper |= word_byte[*p] != *p;
            p++;
        }
        size_t n = (size_t)(p - start);
        if (!upper) {
            wg_emit(out, (wg_bytes){start, n}, one);
            continue;
        }
        /* Lowercase straight into the output batch. */
        uint8_t *dst = wg_emit_begin(out, n, 1);
        for (size_t i = 0; i < n; i++) {
            dst[i] = word_byte[start[i]];
        }
        dst[n] = '1';
        wg_emit_end(out);
    }
}

#endif /* __wasm_simd128__ */

/* utf8_len returns the length of the well-formed UTF-8 sequence of two to
 * four bytes at p, or 0. */
static size_t utf8_len(const uint8_t *p, size_t left) {
    uint8_t c = p[0];
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (n == 0 || n > left) {
        return 0;
    }
    uint32_t r = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        r = r << 6 | (p[i] & 0x3f);
    }
    bool overlong = (n == 3 && r < 0x800) || (n == 4 && r < 0x10000);
    if (overlong || (r >= 0xd800 && r <= 0xdfff) || r > 0x10ffff) {
        return 0;
    }
    return n;
}

/* quote appends s to b as Go's strconv.Quote writes it for ASCII text:
 * in double quotes, with \" \\ \a \b \f \n \r \t \v and \xNN escapes. Bytes
 * of well-formed UTF-8 sequences are kept, as Go keeps printable runes;
 * other bytes above 0x7f become \xNN. */
static void quote(wg_buffer *b, wg_bytes s) {
    static const char hex[] = "0123456789abcdef";
    wg_buffer_append_byte(b, '"');
    for (size_t i = 0; i < s.len;) {
        uint8_t c = s.ptr[i];
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\a': esc = "\\a"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\v': esc = "\\v"; break;
        }
        if (esc != NULL) {
            wg_buffer_append(b, wg_str(esc));
            i++;
        } else if (c >= 0x20 && c < 0x7f) {
            wg_buffer_append_byte(b, c);
            i++;
        } else if (c >= 0x80 && utf8_len(s.ptr + i, s.len - i) > 0) {
            size_t n = utf8_len(s.ptr + i, s.len - i);
            wg_buffer_append(b, (wg_bytes){s.ptr + i, n});
            i += n;
        } else {
            uint8_t x[4] = {'\\', 'x', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
            wg_buffer_append(b, (wg_bytes){x, 4});
            i++;
        }
    }
    wg_buffer_append_byte(b, '"');
}

static bool count(wg_bytes s, uint64_t *v) {
    if (wg_parse_u64(s, v) == WG_PARSE_OK) {
        return true;
    }
    static wg_buffer msg;
    wg_buffer_reset(&msg);
    quote(&msg, s);
    wg_fail_bytes("sum: value is not a decimal count: ", wg_buffer_bytes(&msg));
    return false;
}

/* sum adds two decimal counts. */
static void sum(wg_buffer *acc, wg_bytes b) {
    uint64_t x, y;
    if (!count(wg_buffer_bytes(acc), &x) || !count(b, &y)) {
        return;
    }
    wg_buffer_reset(acc);
    wg_buffer_append_u64(acc, x + y);
}

WG_REGISTER(r) {
    wg_flat_map(r, "split", split);
    wg_reduce(r, "sum", sum);
}
