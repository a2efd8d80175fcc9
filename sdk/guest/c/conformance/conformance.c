/*
 * The C guest SDK's conformance module: the functions of
 * docs/conformance.md, which every guest SDK implements alike, with the
 * same names, kinds and behaviours, in the same order. Build it with
 *
 *     sdk/guest/c/build.sh sdk/guest/c/conformance sdk/guest/c/conformance/guest.wasm
 */
#include "wasmgrid.h"

static void identity(wg_bytes k, wg_bytes v, wg_emitter *out) { wg_emit(out, k, v); }

static void swap(wg_bytes k, wg_bytes v, wg_emitter *out) { wg_emit(out, v, k); }

static void upper_into(uint8_t *dst, wg_bytes b) {
    for (size_t i = 0; i < b.len; i++) {
        uint8_t c = b.ptr[i];
        dst[i] = c >= 'a' && c <= 'z' ? (uint8_t)(c - ('a' - 'A')) : c;
    }
}

static void upper(wg_bytes k, wg_bytes v, wg_emitter *out) {
    uint8_t *p = wg_emit_begin(out, k.len, v.len);
    upper_into(p, k);
    upper_into(p + k.len, v);
    wg_emit_end(out);
}

static void explode(wg_bytes k, wg_bytes v, wg_emitter *out) {
    uint64_t n;
    if (wg_parse_u64(v, &n) != WG_PARSE_OK) {
        return;
    }
    uint8_t digits[WG_U64_DIGITS];
    for (uint64_t i = 0; i < n; i++) {
        wg_emit(out, k, wg_format_u64(i, digits));
    }
}

static bool nonempty(wg_bytes k, wg_bytes v) {
    (void)k;
    return v.len > 0;
}

static void concat(wg_buffer *acc, wg_bytes b) {
    wg_buffer_append_byte(acc, '+');
    wg_buffer_append(acc, b);
}

static void sum(wg_buffer *acc, wg_bytes b) {
    /* Like the Go module, which ignores parse errors: a malformed number
     * counts as 0 and an overflowing one as UINT64_MAX; the sum wraps. */
    uint64_t x, y;
    wg_parse_u64(wg_buffer_bytes(acc), &x);
    wg_parse_u64(b, &y);
    wg_buffer_reset(acc);
    wg_buffer_append_u64(acc, x + y);
}

static void fail(wg_bytes k, wg_bytes v, wg_emitter *out) {
    (void)v;
    (void)out;
    wg_fail_bytes("fail: refusing record ", k);
}

static void trap(wg_bytes k, wg_bytes v, wg_emitter *out) {
    (void)k;
    (void)v;
    (void)out;
    __builtin_trap();
}

static void fail_after(wg_bytes k, wg_bytes v, wg_emitter *out) {
    if (wg_bytes_equal(k, WG_LIT("boom"))) {
        wg_fail("fail_after: boom");
        return;
    }
    wg_emit(out, k, v);
}

WG_REGISTER(r) {
    wg_map(r, "identity", identity);
    wg_map(r, "swap", swap);
    wg_map(r, "upper", upper);
    wg_flat_map_pairs(r, "explode", explode);
    wg_filter(r, "nonempty", nonempty);
    wg_reduce(r, "concat", concat);
    wg_reduce(r, "sum", sum);
    wg_map(r, "fail", fail);
    wg_map(r, "trap", trap);
    wg_flat_map_pairs(r, "fail_after", fail_after);
}
