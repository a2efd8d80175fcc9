;; start-call-bomb: the start function makes 2^61 calls (a binary tree of
;; calls 60 deep: it never ends) without a loop and without a deep stack.
;; wazero checks for a closed context at loop headers only, so nothing inside
;; the process stops it: the coordinator's inspector process is killed when
;; the load passes its timeout, and Submit fails with a timeout.
(module
  (memory (export "memory") 8)
  (data (i32.const 16) "map f\n")
  (global $out_ptr (mut i32) (i32.const 0))
  (global $out_len (mut i32) (i32.const 0))
  (func $fan (param $depth i32) (result i32)
    (if (result i32) (i32.eqz (local.get $depth))
      (then (i32.const 1))
      (else
        (i32.add (call $fan (i32.sub (local.get $depth) (i32.const 1)))
                 (call $fan (i32.sub (local.get $depth) (i32.const 1)))))))
  (func $init (drop (call $fan (i32.const 60))))
  (start $init)
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
    (local $skip i32)
    (local.set $skip (i32.add (i32.const 4) (i32.shl (i32.load (local.get $p)) (i32.const 2))))
    (global.set $out_ptr (i32.add (local.get $p) (local.get $skip)))
    (global.set $out_len (i32.sub (local.get $n) (local.get $skip)))
    (i32.const 0))
  (func (export "wasmgrid_output") (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (global.get $out_ptr)) (i64.const 32))
            (i64.extend_i32_u (global.get $out_len))))
)
