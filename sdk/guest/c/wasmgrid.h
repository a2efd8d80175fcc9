/*
 * wasmgrid.h - the C guest SDK of wasmgrid.
 *
 * It turns plain C functions into a WebAssembly module that speaks the
 * wasmgrid guest ABI, version 1 (docs/abi.md). A guest registers its
 * functions in a WG_REGISTER block and is built as a WASI reactor together
 * with wasmgrid.c (sdk/guest/c/build.sh does it):
 *
 *     #include "wasmgrid.h"
 *
 *     static void split(wg_bytes line, wg_emitter *out) {
 *         ... wg_emit(out, word, WG_LIT("1")); ...
 *     }
 *
 *     static void sum(wg_buffer *acc, wg_bytes b) {
 *         uint64_t x, y;
 *         if (wg_parse_u64(wg_buffer_bytes(acc), &x) || wg_parse_u64(b, &y)) {
 *             wg_fail("sum: not a count");
 *             return;
 *         }
 *         wg_buffer_reset(acc);
 *         wg_buffer_append_u64(acc, x + y);
 *     }
 *
 *     WG_REGISTER(r) {
 *         wg_flat_map(r, "split", split);
 *         wg_reduce(r, "sum", sum);
 *     }
 *
 * Bytes. Keys and values are byte strings, seen as wg_bytes views (a pointer
 * and a length; they may be empty and may contain zero bytes, so they are
 * not C strings). A view that a function receives is valid only until the
 * function returns; copy what you want to keep.
 *
 * Emitting. map and flat_map functions hand their records to a wg_emitter.
 * wg_emit copies nothing when another function of the chain comes next and
 * copies the bytes once, into the output batch, when it is the last, so the
 * views passed to it need only be valid during the call. wg_emit_begin and
 * wg_emit_end build a record in place instead, with no copy at all.
 *
 * Failing. A function fails by calling wg_fail (or wg_fail_bytes) and
 * returning; the call then ends with status 1 and that message, and
 * everything emitted after the failure is discarded. abort(), a failed
 * allocation or any other trap ends the instance instead: the host reports
 * a trap.
 *
 * Memory. The SDK reuses its buffers from call to call: one input buffer,
 * one output batch, one accumulator for reduce and one scratch buffer per
 * position in a chain. Once they have grown to the working size, a call
 * allocates nothing.
 *
 * State. The SDK is single-threaded, like a wasm instance, and keeps its
 * state in globals. A user function may keep its own scratch buffers in
 * static variables, but a function that appears twice in one chain (split
 * then split) runs inside itself and shares them.
 *
 * Speed. An interruptible host (wasmgrid's default) leaves the guest at
 * every loop iteration to check its deadline, which costs tens of
 * nanoseconds: prefer loops that handle many bytes per iteration (SIMD, which
 * build.sh enables, or unrolled loops) to byte-at-a-time loops on hot paths.
 * README.md has the numbers.
 */
#ifndef WASMGRID_H
#define WASMGRID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The guest ABI version this SDK implements. */
#define WG_ABI_VERSION 1

/* ------------------------------------------------------------------------
 * Byte strings
 * ------------------------------------------------------------------------ */

/* A read-only view of len bytes at ptr. ptr may be anything when len is 0. */
typedef struct wg_bytes {
    const uint8_t *ptr;
    size_t len;
} wg_bytes;

/* WG_LIT("text"): the bytes of a string literal, without its final zero. */
#define WG_LIT(s) ((wg_bytes){(const uint8_t *)("" s), sizeof(s) - 1})

/* wg_str(s): the bytes of the zero-terminated string s, without the zero. */
wg_bytes wg_str(const char *s);

/* wg_bytes_equal: whether a and b hold the same bytes. */
bool wg_bytes_equal(wg_bytes a, wg_bytes b);

/* A growable byte buffer: len bytes in use at ptr, room for cap. The zero
 * value, (wg_buffer){0}, is an empty buffer. The functions below that grow
 * it trap if memory runs out, which the host reports as "out of memory". */
typedef struct wg_buffer {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} wg_buffer;

/* wg_buffer_bytes: a view of the buffer's contents, valid until it next
 * changes. */
static inline wg_bytes wg_buffer_bytes(const wg_buffer *b) {
    return (wg_bytes){b->ptr, b->len};
}

/* wg_buffer_reset empties the buffer and keeps its memory. */
static inline void wg_buffer_reset(wg_buffer *b) { b->len = 0; }

/* wg_buffer_reserve makes room for n more bytes and returns where they go,
 * b->ptr + b->len. Write them, then add n to b->len. */
uint8_t *wg_buffer_reserve(wg_buffer *b, size_t n);

/* wg_buffer_append appends the bytes of data. data must not point into b. */
void wg_buffer_append(wg_buffer *b, wg_bytes data);

/* wg_buffer_append_byte appends one byte. */
void wg_buffer_append_byte(wg_buffer *b, uint8_t c);

/* wg_buffer_append_u64 appends v in decimal ASCII. */
void wg_buffer_append_u64(wg_buffer *b, uint64_t v);

/* wg_buffer_free releases the buffer's memory and empties it. */
void wg_buffer_free(wg_buffer *b);

/* ------------------------------------------------------------------------
 * Decimal numbers, the usual currency of counts and sums
 * ------------------------------------------------------------------------ */

/* Results of wg_parse_u64. */
enum {
    WG_PARSE_OK = 0,
    WG_PARSE_SYNTAX = 1, /* empty, or a byte other than 0-9; *v is 0 */
    WG_PARSE_RANGE = 2,  /* more than UINT64_MAX; *v is UINT64_MAX */
};

/* wg_parse_u64 parses s as an unsigned decimal number: ASCII digits only,
 * no sign, no spaces. It behaves exactly like Go's strconv.ParseUint(s, 10,
 * 64), including what it stores in *v on failure, so that guests in every
 * language agree. */
int wg_parse_u64(wg_bytes s, uint64_t *v);

/* WG_U64_DIGITS is the most digits a uint64_t has in decimal. */
#define WG_U64_DIGITS 20

/* wg_format_u64 writes v in decimal ASCII at the end of the
 * WG_U64_DIGITS-byte array buf and returns a view of the digits. */
wg_bytes wg_format_u64(uint64_t v, uint8_t buf[WG_U64_DIGITS]);

/* ------------------------------------------------------------------------
 * Emitting records
 * ------------------------------------------------------------------------ */

/* Where a map or flat_map function sends its records: the next function of
 * the chain, or the call's output batch. */
typedef struct wg_emitter wg_emitter;

/* wg_emit emits the record (key, value). The views need only be valid
 * during the call. */
void wg_emit(wg_emitter *out, wg_bytes key, wg_bytes value);

/* wg_emit_begin starts a record of key_len + value_len bytes that the
 * function writes itself and returns where they go: the key's bytes first,
 * then the value's, back to back. wg_emit_end emits it. In between, the
 * function must not emit anything else. When the record goes to the output
 * batch (the function is last in the chain) the bytes are written there
 * directly and never copied. */
uint8_t *wg_emit_begin(wg_emitter *out, size_t key_len, size_t value_len);
void wg_emit_end(wg_emitter *out);

/* ------------------------------------------------------------------------
 * Failing
 * ------------------------------------------------------------------------ */

/* wg_fail fails the running call with a printf-style message: the host
 * reports a guest error (status 1) with that text. The function should
 * return right after; what it emits afterwards is discarded. Only the first
 * failure of a call counts. */
void wg_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* wg_fail_bytes fails like wg_fail with the message prefix followed by the
 * bytes of detail exactly as they are, zero bytes included (printf's %.*s
 * stops at a zero byte). */
void wg_fail_bytes(const char *prefix, wg_bytes detail);

/* ------------------------------------------------------------------------
 * Functions and registration
 * ------------------------------------------------------------------------ */

/* map: turns each record into exactly one record, emitted through out
 * (emitting none or two fails the call). */
typedef void (*wg_map_fn)(wg_bytes key, wg_bytes value, wg_emitter *out);

/* flat_map of the value: emits zero or more records; the key is ignored. */
typedef void (*wg_flat_map_fn)(wg_bytes value, wg_emitter *out);

/* flat_map of key and value: emits zero or more records. */
typedef void (*wg_flat_map_pairs_fn)(wg_bytes key, wg_bytes value, wg_emitter *out);

/* filter: keeps the record iff the function returns true. */
typedef bool (*wg_filter_fn)(wg_bytes key, wg_bytes value);

/* reduce: acc holds a; the function turns it into a ⊕ b in place (it may
 * append to it, or reset it and write it anew). ⊕ must be associative and
 * commutative. acc belongs to the SDK: do not keep it or free it. */
typedef void (*wg_reduce_fn)(wg_buffer *acc, wg_bytes b);

/* The module's functions, in registration order: the manifest's order,
 * which gives each function its index. */
typedef struct wg_registry wg_registry;

/* Registration. Names match [A-Za-z_][A-Za-z0-9_.-]{0,127} and are unique
 * in the module; a bad or repeated name makes the module trap when it is
 * loaded, with the reason on stderr. */
void wg_map(wg_registry *r, const char *name, wg_map_fn f);
void wg_flat_map(wg_registry *r, const char *name, wg_flat_map_fn f);
void wg_flat_map_pairs(wg_registry *r, const char *name, wg_flat_map_pairs_fn f);
void wg_filter(wg_registry *r, const char *name, wg_filter_fn f);
void wg_reduce(wg_registry *r, const char *name, wg_reduce_fn f);

/* WG_REGISTER(r) { ... } defines the module's registration hook, which the
 * SDK calls once, before it first needs the functions. Every guest defines
 * exactly one. */
#define WG_REGISTER(r) void wg_register(wg_registry *r)
void wg_register(wg_registry *r);

/* ------------------------------------------------------------------------
 * Running calls natively
 * ------------------------------------------------------------------------ */

/* Statuses of a call (docs/abi.md, "A call"). */
enum {
    WG_STATUS_OK = 0,         /* *out is the output batch */
    WG_STATUS_USER_ERROR = 1, /* *out is a user function's failure message */
    WG_STATUS_BAD_CALL = 2,   /* *out says why the call is malformed */
};

/* wg_call runs one call of the ABI, "u32le n_funcs | u32le func_index *
 * n_funcs | batch", over the registered functions and returns its status.
 * *out is valid until the next call. The wasm export wasmgrid_run is this
 * function; it is public so that a guest can be tested and benchmarked as
 * a native program too. */
int wg_call(const uint8_t *call, size_t len, wg_bytes *out);

/* wg_manifest returns the module's manifest ("KIND NAME\n" per function). */
wg_bytes wg_manifest(void);

#ifdef __cplusplus
}
#endif

#endif /* WASMGRID_H */
