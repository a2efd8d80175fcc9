;; import-path-open: imports WASI path_open and calls it to open /etc/passwd
;; in the first directory a WASI program could have been given (fd 3). The
;; module loads, since file functions are harmless without a file system, but
;; no directory is open in the sandbox: the call fails, and the guest reports
;; it as its error. Had it succeeded, the guest would trap.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 8)
  (data (i32.const 16) "map f\n")
  (data (i32.const 64) "/etc/passwd")
  (data (i32.const 128) "hostile: the sandbox refused path_open")
  (global $out_ptr (mut i32) (i32.const 0))
  (global $out_len (mut i32) (i32.const 0))
  (func (export "wasmgrid_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgrid_describe") (result i64) (i64.const 0x1000000006))
  (func (export "wasmgrid_alloc") (param $n i32) (result i32)
    (local $pages i32)
    (local.set $pages (i32.shr_u (i32.add (local.get $n) (i32.const 66559)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 1024))
  (func (export "wasmgrid_run") (param $p i32) (param $n i32) (result i32)
    ;; path_open(dirfd 3, lookup flags 0, path, path_len, oflags 0,
    ;;           rights base, rights inheriting, fdflags 0, &fd at 256)
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 11)
                                  (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 256)))
      (then unreachable))
    (global.set $out_ptr (i32.const 128))
    (global.set $out_len (i32.const 38))
    (i32.const 1))
  (func (export "wasmgrid_output") (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (global.get $out_ptr)) (i64.const 32))
            (i64.extend_i32_u (global.get $out_len))))
)
