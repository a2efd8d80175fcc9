;; baseline: a well-behaved hand-written guest (an identity map), the control
;; of the corpus. It must run. The truncated and oversized cases are built
;; from its bytes, and every hostile .wat below is this module with one part
;; made hostile.
(module
  (memory (export "memory") 8)
  (data (i32.const 16) "map f\n")
  (global $out_ptr (mut i32) (i32.const 0))
  (global $out_len (mut i32) (i32.const 0))
  (func (export "wasmgrid_abi_version") (result i32) (i32.const 1))
  ;; the manifest: 6 bytes at 16
  (func (export "wasmgrid_describe") (result i64) (i64.const 0x1000000006))
  ;; the input buffer is at 1024; grow the memory until 1024+n bytes fit
  (func (export "wasmgrid_alloc") (param $n i32) (result i32)
    (local $pages i32)
    (local.set $pages (i32.shr_u (i32.add (local.get $n) (i32.const 66559)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 1024))
  ;; identity: the output batch is the input batch, after the call header
  (func (export "wasmgrid_run") (param $p i32) (param $n i32) (result i32)
    (local $skip i32)
    (local.set $skip (i32.add (i32.const 4) (i32.shl (i32.load (local.get $p)) (i32.const 2))))
    (global.set $out_ptr (i32.add (local.get $p) (local.get $skip)))
    (global.set $out_len (i32.sub (local.get $n) (local.get $skip)))
    (i32.const 0))
  (func (export "wasmgrid_output") (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (global.get $out_ptr)) (i64.const 32))
            (i64.extend_i32_u (global.get $out_len))))
)
