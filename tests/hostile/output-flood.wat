;; output-flood: every call returns a well-formed 8 MiB batch (one record
;; with an 8 MiB value), whatever its input: past task.max_output.
(module
  (memory (export "memory") 176)
  (data (i32.const 16) "map f\n")
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
  ;; the output batch lives at 2 MiB: count 1, key_len 0, value_len 8 MiB - 12
  (func (export "wasmgrid_run") (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 0x200000) (i32.const 1))
    (i32.store (i32.const 0x200004) (i32.const 0))
    (i32.store (i32.const 0x200008) (i32.const 0x7ffff4))
    (global.set $out_ptr (i32.const 0x200000))
    (global.set $out_len (i32.const 0x800000))
    (i32.const 0))
  (func (export "wasmgrid_output") (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (global.get $out_ptr)) (i64.const 32))
            (i64.extend_i32_u (global.get $out_len))))
)
