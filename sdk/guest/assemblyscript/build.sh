#!/usr/bin/env bash
# Builds an AssemblyScript guest module of wasmgrid.
#
#   sdk/guest/assemblyscript/build.sh SRC_DIR OUT.wasm [asc options...]
#
# SRC_DIR/guest.ts is the entry file: it registers the guest's functions and
# re-exports the SDK's wasm exports (see README.md). The compiler is the
# repository's pinned assemblyscript devDependency; the script runs `npm ci`
# in the repository's root when node_modules is missing.
#
# The module is built with the paths of its sources taken relative to the
# repository's root, so the same sources give the same bytes wherever the
# tree is checked out. Extra options go to asc after the defaults, and
# override them (e.g. --runtime incremental).
set -euo pipefail

die() {
	echo "build.sh: $*" >&2
	exit 2
}

[ $# -ge 2 ] || die "usage: build.sh SRC_DIR OUT.wasm [asc options...]"
src_arg=$1
out_arg=$2
shift 2

sdk=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd "$sdk/../../.." && pwd -P)
[ -d "$src_arg" ] || die "$src_arg is not a directory"
src=$(cd "$src_arg" && pwd -P)
[ -f "$src/guest.ts" ] || die "$src/guest.ts not found: a guest's entry file is SRC_DIR/guest.ts"
out_dir=$(dirname "$out_arg")
[ -d "$out_dir" ] || die "output directory $out_dir does not exist"
out="$(cd "$out_dir" && pwd -P)/$(basename "$out_arg")"

command -v node >/dev/null || die "node is needed (Node.js 20 or newer)"
if [ ! -f "$root/node_modules/assemblyscript/package.json" ]; then
	command -v npm >/dev/null || die "npm is needed to install the assemblyscript compiler"
	(cd "$root" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

# The entry as a path relative to the root, with forward slashes.
entry=$(node -e 'const p = require("path"); console.log(p.relative(process.argv[1], process.argv[2]).split(p.sep).join("/"))' "$root" "$src/guest.ts")

# -O3: optimise for speed. --use abort=: no env.abort import; an abort
# (throw, a failed assertion, an index out of range) is a wasm trap.
# --runtime minimal: the SDK collects garbage after each call, when nothing
# is on the stack; without a shadow stack the guest runs about twice as
# fast as with the incremental collector.
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cd "$root"
node node_modules/assemblyscript/bin/asc.js "$entry" \
	-O3 --use abort= --runtime minimal \
	"$@" \
	-o "$tmp"
mv -f "$tmp" "$out"
