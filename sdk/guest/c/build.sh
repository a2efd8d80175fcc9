#!/bin/sh
# build.sh SRC_DIR OUT.wasm
#
# Builds a wasmgrid guest module from every .c file of SRC_DIR and the C
# guest SDK (wasmgrid.c, next to this script), as a WASI reactor. The output
# depends only on the sources and the toolchain, not on where the checkout
# lives: no debug information, source paths mapped to fixed names, files in
# a fixed order.
#
# Environment:
#   CC               the compiler (default: clang, version 14 or later)
#   WASI_SYSROOT     the wasi-libc sysroot; by default /usr/share/wasi-sysroot
#                    if it exists, otherwise the compiler's own default (as on
#                    Debian, whose wasi-libc lives in /usr/lib/wasm32-wasi)
#   WASMGRID_CFLAGS  extra compiler flags, appended
#   WASMGRID_LDFLAGS extra link flags, appended (an -O flag here makes clang
#                    run wasm-opt if it is on PATH: see below)
set -eu
LC_ALL=C # sorted file names and stable messages
export LC_ALL

if [ $# -ne 2 ]; then
	echo "usage: $0 SRC_DIR OUT.wasm" >&2
	exit 2
fi
src=$1
out=$2
sdk=$(cd "$(dirname "$0")" && pwd -P)
src=$(cd "$src" && pwd -P)
case $out in
/*) ;;
*) out=$(pwd -P)/$out ;;
esac

cc=${CC:-clang}
sysroot=
if [ -n "${WASI_SYSROOT:-}" ]; then
	sysroot=--sysroot=$WASI_SYSROOT
elif [ -d /usr/share/wasi-sysroot ]; then
	sysroot=--sysroot=/usr/share/wasi-sysroot
fi

# The sources, relative to SRC_DIR, in byte order.
cd "$src"
set -- *.c
if [ ! -e "$1" ]; then
	echo "$0: no .c files in $src" >&2
	exit 1
fi

# Compile, then link in a second step without an -O flag: given one, clang
# runs binaryen's wasm-opt after linking if it happens to be on PATH, and the
# output would depend on that.
#
# -flto: user functions inline wg_emit and the SDK inlines them back; the
#   link step optimises the whole module (wasm-ld's LTO level is 2).
# -mbulk-memory: memcpy of a variable size becomes one memory.copy.
# -msimd128: wasm SIMD, for hand-written vector code (wasm_simd128.h) and
#   the auto-vectoriser. Interruptible wasmgrid guests pay for every loop
#   iteration, so code that handles 16 bytes per iteration gains twice.
# -mexec-model=reactor: no _start; _initialize runs constructors once (the
#   command model wraps every export in stdio setup and teardown).
# --stack-first: a stack overflow traps instead of overwriting data.
# stack-size: 256 KiB of stack (the default is 64 KiB; more costs every
#   instance time to allocate; WASMGRID_LDFLAGS=-Wl,-z,stack-size=N overrides).
# --strip-all: no names or debug sections in the module.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
target="--target=wasm32-wasi $sysroot"
cflags="-std=c11 -O2 -flto -mbulk-memory -msimd128 -Wall -Wextra -g0"
objs=
i=0
# shellcheck disable=SC2086 # $target, $cflags and WASMGRID_*FLAGS split on purpose
for f in "$sdk/wasmgrid.c" "$@"; do
	i=$((i + 1))
	"$cc" $target $cflags \
		-ffile-prefix-map="$sdk"=wasmgrid-sdk -ffile-prefix-map="$src"=src \
		-I "$sdk" ${WASMGRID_CFLAGS:-} -c -o "$tmp/$i.o" "$f"
	objs="$objs $tmp/$i.o"
done
# shellcheck disable=SC2086
"$cc" $target -flto -mbulk-memory -msimd128 -mexec-model=reactor \
	-Wl,--stack-first -Wl,-z,stack-size=262144 -Wl,--strip-all \
	${WASMGRID_LDFLAGS:-} -o "$out" $objs
# A module is data, not a program: the linker marks its output executable.
chmod 0644 "$out"
