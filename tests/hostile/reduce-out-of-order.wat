;; reduce-out-of-order: map f is the identity; reduce r answers every call
;; with two records whose keys are out of order ("b" then "a"). Used as the
;; map-side combiner, its output reaches the shuffle writer.
(module
  (memory (export "memory") 8)
  (data (i32.const 16) "map f\nreduce r\n")
  ;; the batch: count 2, ("b", "1"), ("a", "1")
  (data (i32.const 64) "\02\00\00\00\01\00\00\00\01\00\00\00b1\01\00\00\00\01\00\00\00a1")
  (global $out_ptr (mut i32) (i32.const 0))
  (global $out_len (mut i32) (i32.const 0))
  (func (export "wasmgrid_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgrid_describe") (result i64) (i64.const 0x100000000f))
  (func (export "wasmgrid_alloc") (param $n i32) (result i32)
    (local $pages i32)
    (local.set $pages (i32.shr_u (i32.add (local.get $n) (i32.const 66559)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 1024))
  (func (export "wasmgrid_run") (param $p i32) (param $n i32) (result i32)
    (local $skip i32)
    ;; the first function index: 0 is f, 1 is r
    (if (i32.eq (i32.load offset=4 (local.get $p)) (i32.const 1))
      (then
        (global.set $out_ptr (i32.const 64))
        (global.set $out_len (i32.const 24))
        (return (i32.const 0))))
    (local.set $skip (i32.add (i32.const 4) (i32.shl (i32.load (local.get $p)) (i32.const 2))))
    (global.set $out_ptr (i32.add (local.get $p) (local.get $skip)))
    (global.set $out_len (i32.sub (local.get $n) (local.get $skip)))
    (i32.const 0))
  (func (export "wasmgrid_output") (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (global.get $out_ptr)) (i64.const 32))
            (i64.extend_i32_u (global.get $out_len))))
)
