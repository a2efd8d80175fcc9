;; stderr-flood: wasmgrid_run writes 50 MiB to stderr (800 writes of 64 KiB
;; of "x"), then a last line, then traps.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data (i32.const 16) "map f\n")
  (data (i32.const 64) "\nhostile: end of the stderr flood\n")
  (global $out_ptr (mut i32) (i32.const 0))
  (global $out_len (mut i32) (i32.const 0))
  (func (export "wasmgrid_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgrid_describe") (result i64) (i64.const 0x1000000006))
  ;; the input buffer is at 128 KiB, after the 64 KiB block of "x" at 64 KiB
  (func (export "wasmgrid_alloc") (param $n i32) (result i32)
    (local $pages i32)
    (local.set $pages (i32.shr_u (i32.add (local.get $n) (i32.const 196607)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 0x20000))
  (func (export "wasmgrid_run") (param $p i32) (param $n i32) (result i32)
    (local $i i32)
    (memory.fill (i32.const 0x10000) (i32.const 120) (i32.const 0x10000))
    ;; iovec at 32: {ptr 64 KiB, len 64 KiB}; nwritten at 48
    (i32.store (i32.const 32) (i32.const 0x10000))
    (i32.store (i32.const 36) (i32.const 0x10000))
    (loop $more
      (drop (call $fd_write (i32.const 2) (i32.const 32) (i32.const 1) (i32.const 48)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 800))))
    (i32.store (i32.const 32) (i32.const 64))
    (i32.store (i32.const 36) (i32.const 34))
    (drop (call $fd_write (i32.const 2) (i32.const 32) (i32.const 1) (i32.const 48)))
    (unreachable))
  (func (export "wasmgrid_output") (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (global.get $out_ptr)) (i64.const 32))
            (i64.extend_i32_u (global.get $out_len))))
)
