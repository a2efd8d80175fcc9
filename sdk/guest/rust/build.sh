#!/bin/sh
# build.sh CRATE_DIR OUT.wasm
#
# Builds a wasmgrid guest crate (a cdylib that depends on the Rust guest SDK)
# into OUT.wasm, reproducibly: the same sources give the same bytes whatever
# the checkout path, the user or the machine, given the same toolchain.
#
# - Paths are remapped in everything the compiler embeds (panic locations):
#   the crate to /wasmgrid/crate, the SDK to /wasmgrid/sdk, CARGO_HOME to
#   /cargo, the target directory to /target.
# - The target directory is fixed ($WASMGRID_RUST_TARGET_DIR, by default
#   /tmp/wasmgrid-rust-target), not inside the checkout. Builds are
#   reproducible for one value of it: keep the default.
# - Cargo derives a crate's symbol hashes (-C metadata) from the absolute
#   path of a path dependency outside the crate's workspace, such as the SDK.
#   The release profile strips symbol names, but LTO orders functions by
#   those names, so two checkouts give different bytes. The crate and the SDK
#   are therefore built from copies at one fixed place, the staging directory
#   ($target/src), laid out as in the repository, so that the relative path
#   from the crate to the SDK still holds. (A crate outside the repository is
#   staged as $target/src/crate: it must then name the SDK by a path that
#   holds from there, or by an absolute path, which is not reproducible.)
#
# Environment: CARGO and RUSTC (default /usr/bin/cargo and /usr/bin/rustc,
# Debian's toolchain, which has the wasm32-wasi target). Nothing embeds a
# date. The crate must have a Cargo.lock (the build is --locked --offline).
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 CRATE_DIR OUT.wasm" >&2
	exit 2
fi

CARGO=${CARGO:-/usr/bin/cargo}
RUSTC=${RUSTC:-/usr/bin/rustc}
export RUSTC

crate=$(cd "$1" && pwd -P)
sdk=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$sdk/../../.." && pwd -P) # the repository: sdk/guest/rust is in it
out=$2
case $out in
/*) ;;
*) out=$(pwd -P)/$out ;;
esac
target=${WASMGRID_RUST_TARGET_DIR:-/tmp/wasmgrid-rust-target}
mkdir -p "$target"
target=$(cd "$target" && pwd -P)

# The wasm target: wasm32-wasip1 where the toolchain has it (Rust 1.78 on;
# wasm32-wasi, its old name, is gone from 1.84), else wasm32-wasi.
if "$RUSTC" --print target-list | grep -qx wasm32-wasip1; then
	triple=wasm32-wasip1
else
	triple=wasm32-wasi
fi

# One build at a time per target directory: they share the staging area.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$target/.lock"
	flock 9
fi

# Stage the crate and the SDK at fixed paths.
stage=$target/src
rel=${crate#"$root"/}
if [ "$rel" = "$crate" ]; then
	rel=crate
fi
rm -rf "$stage"
mkdir -p "$stage/$rel" "$stage/sdk/guest/rust"
copy() { # copy SRC DST: the sources of a crate, without build output
	(cd "$1" && find . \( -name target -o -name .git -o -name '*.wasm' \) -prune -o -type f -print) |
		while IFS= read -r f; do
			mkdir -p "$2/$(dirname "$f")"
			cp "$1/$f" "$2/$f"
		done
}
copy "$sdk" "$stage/sdk/guest/rust"
if [ "$rel" != "sdk/guest/rust" ] && [ "${rel#sdk/guest/rust/}" = "$rel" ]; then
	copy "$crate" "$stage/$rel"
fi

home=${CARGO_HOME:-$HOME/.cargo}
# Bulk memory (wasm 2.0, which wazero speaks) turns every memcpy and memset
# into one memory.copy or memory.fill instruction instead of a loop in libc:
# large values copy several times faster, and far faster still when the host
# checks for deadlines at every loop iteration. Recent Rust versions turn it
# on by default.
RUSTFLAGS="-C target-feature=+bulk-memory --remap-path-prefix=$stage/$rel=/wasmgrid/crate --remap-path-prefix=$stage/sdk/guest/rust=/wasmgrid/sdk --remap-path-prefix=$stage=/wasmgrid --remap-path-prefix=$home=/cargo --remap-path-prefix=$target=/target"
export RUSTFLAGS
unset CARGO_BUILD_RUSTFLAGS CARGO_ENCODED_RUSTFLAGS RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER 2>/dev/null || true

msgs=$target/cargo-messages.json
CARGO_TARGET_DIR=$target/build "$CARGO" build --offline --locked --release --target "$triple" \
	--manifest-path "$stage/$rel/Cargo.toml" --message-format=json-render-diagnostics >"$msgs"
wasm=$(grep '"reason":"compiler-artifact"' "$msgs" | grep -o '"[^"]*\.wasm"' | tail -n 1 | tr -d '"')
if [ -z "$wasm" ] || [ ! -f "$wasm" ]; then
	echo "$0: cargo built no .wasm file: is $1 a cdylib crate?" >&2
	exit 1
fi
mkdir -p "$(dirname "$out")"
cp "$wasm" "$out.tmp"
chmod 644 "$out.tmp"
mv "$out.tmp" "$out"
echo "$out: $(wc -c <"$out") bytes"
