;; fill: a memory bomb that runs until its deadline. wasmgrid_run grows its
;; memory 1 MiB at a time, writing every 4 KiB page, until memory.grow
;; fails at task.memory; then it writes every page again, for ever.
(module
  (memory (export "memory") 8)
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
  ;; write one byte in every 4 KiB page of [from, to)
  (func $touch (param $from i32) (param $to i32)
    (loop $page
      (if (i32.lt_u (local.get $from) (local.get $to))
        (then
          (i32.store8 (local.get $from) (i32.const 1))
          (local.set $from (i32.add (local.get $from) (i32.const 4096)))
          (br $page)))))
  (func (export "wasmgrid_run") (param $p i32) (param $n i32) (result i32)
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow (i32.const 16)))
      (if (i32.ne (local.get $old) (i32.const -1))
        (then
          (call $touch (i32.shl (local.get $old) (i32.const 16)) (i32.shl (memory.size) (i32.const 16)))
          (br $grow))))
    (loop $again
      (call $touch (i32.const 0) (i32.shl (memory.size) (i32.const 16)))
      (br $again))
    (unreachable))
  (func (export "wasmgrid_output") (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (global.get $out_ptr)) (i64.const 32))
            (i64.extend_i32_u (global.get $out_len))))
)
