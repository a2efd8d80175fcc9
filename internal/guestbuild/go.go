package guestbuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildGo compiles the Go guest package in dir to the wasm file out.
func BuildGo(ctx context.Context, dir, out string) error {
	gobin, err := goTool()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-buildmode=c-shared", "-trimpath", "-o", abs, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build Go guest %s: %v\n%s", dir, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// goTool finds the go command: the one of the running toolchain's GOROOT if
// it is there (so tests build with the Go that runs them), else on PATH.
func goTool() (string, error) {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building a Go guest needs the go command on PATH: %w", err)
	}
	return p, nil
}
