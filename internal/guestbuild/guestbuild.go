// Package guestbuild builds guest modules from source in each language the
// guest SDKs support: Go with the Go toolchain (GOOS=wasip1), and Rust, C
// and AssemblyScript through the build script of their SDK
// (sdk/guest/<lang>/build.sh). The client uses it for job specs whose
// modules are Go sources; `make guests`, CI and tests use it to build the
// examples and the conformance modules.
package guestbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Languages are the guest languages, in the order the docs list them.
var Languages = []string{"go", "rust", "c", "assemblyscript"}

// Build builds the guest in dir, written in lang, into the wasm file out.
// root is the repository's root, where the SDKs live.
func Build(ctx context.Context, root, lang, dir, out string) error {
	if lang == "go" {
		return BuildGo(ctx, dir, out)
	}
	if err := Available(root, lang); err != nil {
		return err
	}
	script := filepath.Join(root, "sdk", "guest", lang, "build.sh")
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "bash", script, absDir, absOut)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s guest %s: %v\n%s", lang, dir, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Available reports why lang's toolchain cannot build here, or nil.
func Available(root, lang string) error {
	need := map[string][]string{
		"go":             {"go"},
		"rust":           {"/usr/bin/cargo", "/usr/bin/rustc"},
		"c":              {"clang", "wasm-ld"},
		"assemblyscript": {"node", "npx"},
	}[lang]
	if need == nil {
		return fmt.Errorf("unknown guest language %q; the languages are %s", lang, strings.Join(Languages, ", "))
	}
	for _, tool := range need {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("building a %s guest needs %s: %w (see .ci/run for the packages)", lang, tool, err)
		}
	}
	if lang == "rust" {
		if _, err := os.Stat("/usr/lib/rustlib/wasm32-wasi"); err != nil {
			return errors.New("building a rust guest needs the wasm32-wasi standard library (Debian's libstd-rust-dev-wasm32)")
		}
	}
	if lang == "c" {
		_, errDebian := os.Stat("/usr/include/wasm32-wasi/stdlib.h")
		_, errSysroot := os.Stat("/usr/share/wasi-sysroot")
		if errDebian != nil && errSysroot != nil {
			return errors.New("building a c guest needs wasi-libc (Debian's wasi-libc)")
		}
	}
	if lang == "assemblyscript" {
		if _, err := os.Stat(filepath.Join(root, "node_modules", "assemblyscript")); err != nil {
			return errors.New("building an assemblyscript guest needs the assemblyscript package: run npm ci in the repository's root")
		}
	}
	return nil
}
