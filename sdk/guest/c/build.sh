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
#   WASMGRID_CFLAGS  extra flags, appended (they may make the build differ)
set -eu

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

# The sources, in a fixed order, relative to SRC_DIR.
cd "$src"
files=$(LC_ALL=C ls -- *.c 2>/dev/null || true)
if [ -z "$files" ]; then
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
# -mexec-model=reactor: no _start; _initialize runs constructors once (the
#   command model wraps every export in stdio setup and teardown).
# --stack-first: a stack overflow traps instead of overwriting data.
# stack-size: 1 MiB of stack (the default is 64 KiB).
# --strip-all: no names or debug sections in the module.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
target="--target=wasm32-wasi $sysroot"
cflags="-std=c11 -O2 -flto -mbulk-memory -Wall -Wextra -g0"
objs=
i=0
# shellcheck disable=SC2086 # $target, $cflags, $files and WASMGRID_CFLAGS split on purpose
for f in "$sdk/wasmgrid.c" $files; do
	i=$((i + 1))
	"$cc" $target $cflags \
		-ffile-prefix-map="$sdk"=wasmgrid-sdk -ffile-prefix-map="$src"=src \
		-I "$sdk" ${WASMGRID_CFLAGS:-} -c -o "$tmp/$i.o" "$f"
	objs="$objs $tmp/$i.o"
done
# shellcheck disable=SC2086
"$cc" $target -flto -mbulk-memory -mexec-model=reactor \
	-Wl,--stack-first -Wl,-z,stack-size=1048576 -Wl,--strip-all \
	${WASMGRID_CFLAGS:-} -o "$out" $objs
