;; A hand-written guest for the runtime's own tests (tests/runtime.rs): the smallest module
;; that imports greenlet_rt and exports what the runtime imports, with greenlet bodies that
;; write what they see to a log in memory (log length at 0x10, entries from 0x1000).
;;
;; Memory: 0x200 + 4*n: the `save` slot of greenlet n (n = its `data`), 0x200 for the root;
;; 0x300 + 16*n: its `out` words. Shadow stacks: root at 0x8000, greenlets at 0x4000 and up.
(module $runtime_test_guest
  (type $entry_sig (func (param i32 i32 i32 i32 i32)))
  (import "greenlet_rt" "new" (func $new (param i32 i32 i32) (result i32)))
  (import "greenlet_rt" "switch" (func $switch (param i32 i32 i32 i32 i32 i32 i32)))
  (import "greenlet_rt" "release" (func $release (param i32)))
  (memory (export "memory") 1)
  (global $sp (export "__stack_pointer") (mut i32) (i32.const 0x8000))
  (table (export "__indirect_function_table") 4 funcref)
  (elem (i32.const 1) func $echo $other $relay)

  (func $log (param $v i32)
    (local $n i32)
    (local.set $n (i32.load (i32.const 0x10)))
    (i32.store (i32.add (i32.const 0x1000) (i32.shl (local.get $n) (i32.const 2))) (local.get $v))
    (i32.store (i32.const 0x10) (i32.add (local.get $n) (i32.const 1))))

  (func $save (param $n i32) (result i32)
    (i32.add (i32.const 0x200) (i32.shl (local.get $n) (i32.const 2))))
  (func $out (param $n i32) (result i32)
    (i32.add (i32.const 0x300) (i32.shl (local.get $n) (i32.const 4))))
  (func $out_word (param $n i32) (param $i i32) (result i32)
    (i32.load (i32.add (call $out (local.get $n)) (i32.shl (local.get $i) (i32.const 2)))))
  (func $log_out (param $n i32)
    (call $log (call $out_word (local.get $n) (i32.const 0)))
    (call $log (call $out_word (local.get $n) (i32.const 1)))
    (call $log (call $out_word (local.get $n) (i32.const 2)))
    (call $log (call $out_word (local.get $n) (i32.const 3))))

  ;; Root switches to `target` with four words; logs the words it gets back, its save slot and
  ;; its shadow-stack pointer (restored by the runtime).
  (func $root_switch (param $target i32) (param $a i32) (param $b i32) (param $c i32) (param $d i32)
    (call $switch (call $save (i32.const 0)) (local.get $target)
      (local.get $a) (local.get $b) (local.get $c) (local.get $d) (call $out (i32.const 0)))
    (call $log (i32.const 0x2007))
    (call $log_out (i32.const 0))
    (call $log (i32.load (call $save (i32.const 0))))
    (call $log (global.get $sp)))

  ;; Table index 1. Logs its start (data, words, shadow-stack pointer), keeps a marker on its
  ;; shadow stack, then switches to the root with each word + 10, forever; every resumption
  ;; logs the words received, the shadow-stack pointer and the marker. Words starting with
  ;; 999 make it switch to the root one last time (it is then dead: 0xDEAD is never logged).
  (func $echo (param $w0 i32) (param $w1 i32) (param $w2 i32) (param $w3 i32) (param $data i32)
    (call $log (i32.const 0xEC0))
    (call $log (local.get $data))
    (call $log (local.get $w0))
    (call $log (local.get $w1))
    (call $log (local.get $w2))
    (call $log (local.get $w3))
    (call $log (global.get $sp))
    (global.set $sp (i32.sub (global.get $sp) (i32.const 16)))
    (i32.store (global.get $sp) (i32.mul (local.get $data) (i32.const 1111)))
    (loop $again
      (if (i32.eq (local.get $w0) (i32.const 999))
        (then
          (call $log (i32.const 0xF1))
          (call $switch (call $save (local.get $data)) (i32.const 0)
            (i32.const 0xF1) (local.get $data) (i32.const 0) (i32.const 0)
            (call $out (local.get $data)))
          (call $log (i32.const 0xDEAD))
          (unreachable)))
      (call $switch (call $save (local.get $data)) (i32.const 0)
        (i32.add (local.get $w0) (i32.const 10)) (i32.add (local.get $w1) (i32.const 10))
        (i32.add (local.get $w2) (i32.const 10)) (i32.add (local.get $w3) (i32.const 10))
        (call $out (local.get $data)))
      (call $log (i32.const 0xBAC))
      (call $log (local.get $data))
      (call $log_out (local.get $data))
      (call $log (i32.load (call $save (local.get $data))))
      (call $log (global.get $sp))
      (call $log (i32.load (global.get $sp)))
      (local.set $w0 (call $out_word (local.get $data) (i32.const 0)))
      (local.set $w1 (call $out_word (local.get $data) (i32.const 1)))
      (local.set $w2 (call $out_word (local.get $data) (i32.const 2)))
      (local.set $w3 (call $out_word (local.get $data) (i32.const 3)))
      (br $again)))

  ;; Table index 2: logs its start and switches to the root with its data, forever.
  (func $other (param $w0 i32) (param $w1 i32) (param $w2 i32) (param $w3 i32) (param $data i32)
    (call $log (i32.const 0x07E))
    (call $log (local.get $data))
    (call $log (local.get $w0))
    (call $log (local.get $w1))
    (call $log (local.get $w2))
    (call $log (local.get $w3))
    (call $log (global.get $sp))
    (loop $again
      (call $switch (call $save (local.get $data)) (i32.const 0)
        (local.get $data) (i32.const 0) (i32.const 0) (i32.const 0) (call $out (local.get $data)))
      (br $again)))

  ;; Table index 3: switches to the handle in w0 with (w1, w2, data, 0); when resumed, logs
  ;; what it got and switches to the root with it.
  (func $relay (param $w0 i32) (param $w1 i32) (param $w2 i32) (param $w3 i32) (param $data i32)
    (call $log (i32.const 0x4E1))
    (call $log (local.get $data))
    (call $switch (call $save (local.get $data)) (local.get $w0)
      (local.get $w1) (local.get $w2) (local.get $data) (i32.const 0) (call $out (local.get $data)))
    (call $log (i32.const 0x4E2))
    (call $log (local.get $data))
    (call $log_out (local.get $data))
    (call $log (i32.load (call $save (local.get $data))))
    (loop $again
      (call $switch (call $save (local.get $data)) (i32.const 0)
        (call $out_word (local.get $data) (i32.const 0)) (call $out_word (local.get $data) (i32.const 1))
        (call $out_word (local.get $data) (i32.const 2)) (call $out_word (local.get $data) (i32.const 3))
        (call $out (local.get $data)))
      (br $again)))

  (func (export "greenlet_main") (param $cmd i32) (result i32)
    (local $h i32)
    (local $h2 i32)
    (i32.store (i32.const 0x10) (i32.const 0))
    (block $done
      ;; 1: start an unstarted greenlet, resume it once, from the root.
      (if (i32.eq (local.get $cmd) (i32.const 1))
        (then
          (local.set $h (call $new (i32.const 1) (i32.const 1) (i32.const 0x4000)))
          (call $log (local.get $h))
          (call $root_switch (local.get $h) (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4))
          (call $root_switch (local.get $h) (i32.const 5) (i32.const 6) (i32.const 7) (i32.const 8))
          (br $done)))
      ;; 2: two greenlets interleaved: each keeps its own shadow stack.
      (if (i32.eq (local.get $cmd) (i32.const 2))
        (then
          (local.set $h (call $new (i32.const 1) (i32.const 1) (i32.const 0x4000)))
          (local.set $h2 (call $new (i32.const 1) (i32.const 2) (i32.const 0x5000)))
          (call $root_switch (local.get $h) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0))
          (call $root_switch (local.get $h2) (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 0))
          (call $root_switch (local.get $h) (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0))
          (call $root_switch (local.get $h2) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 0))
          (br $done)))
      ;; 3: a greenlet dies; its handle is released and reused by a new greenlet, which starts
      ;; at its own entry with its own data and shadow stack.
      (if (i32.eq (local.get $cmd) (i32.const 3))
        (then
          (local.set $h (call $new (i32.const 1) (i32.const 1) (i32.const 0x4000)))
          (call $root_switch (local.get $h) (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4))
          (call $root_switch (local.get $h) (i32.const 999) (i32.const 0) (i32.const 0) (i32.const 0))
          (call $release (local.get $h))
          (local.set $h2 (call $new (i32.const 2) (i32.const 9) (i32.const 0x6000)))
          (call $log (i32.eq (local.get $h) (local.get $h2)))
          (call $root_switch (local.get $h2) (i32.const 11) (i32.const 12) (i32.const 13) (i32.const 14))
          (call $root_switch (local.get $h2) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
          (br $done)))
      ;; 4: switching to a released handle traps.
      (if (i32.eq (local.get $cmd) (i32.const 4))
        (then
          (local.set $h (call $new (i32.const 1) (i32.const 1) (i32.const 0x4000)))
          (call $release (local.get $h))
          (call $log (i32.const 4))
          (call $root_switch (local.get $h) (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4))
          (br $done)))
      ;; 5: releasing a handle twice traps.
      (if (i32.eq (local.get $cmd) (i32.const 5))
        (then
          (local.set $h (call $new (i32.const 1) (i32.const 1) (i32.const 0x4000)))
          (call $release (local.get $h))
          (call $log (i32.const 5))
          (call $release (local.get $h))
          (br $done)))
      ;; 6: releasing the root traps.
      (if (i32.eq (local.get $cmd) (i32.const 6))
        (then
          (call $log (i32.const 6))
          (call $release (i32.const 0))
          (br $done)))
      ;; 7: greenlet to greenlet: relay 1 starts relay 2, which switches to the root; the
      ;; root resumes relay 1 (suspended inside its switch to relay 2), which comes back.
      (if (i32.eq (local.get $cmd) (i32.const 7))
        (then
          (local.set $h (call $new (i32.const 3) (i32.const 1) (i32.const 0x4000)))
          (local.set $h2 (call $new (i32.const 3) (i32.const 2) (i32.const 0x5000)))
          (call $log (local.get $h))
          (call $log (local.get $h2))
          (call $root_switch (local.get $h) (local.get $h2) (i32.const 0) (i32.const 77) (i32.const 0))
          (call $root_switch (local.get $h) (i32.const 41) (i32.const 42) (i32.const 43) (i32.const 44))
          (br $done)))
      ;; 8: a never-started greenlet's handle is released and reused: no restart needed.
      (if (i32.eq (local.get $cmd) (i32.const 8))
        (then
          (local.set $h (call $new (i32.const 1) (i32.const 1) (i32.const 0x4000)))
          (call $release (local.get $h))
          (local.set $h2 (call $new (i32.const 2) (i32.const 3) (i32.const 0x5000)))
          (call $log (i32.eq (local.get $h) (local.get $h2)))
          (call $root_switch (local.get $h2) (i32.const 21) (i32.const 22) (i32.const 23) (i32.const 24))
          (br $done)))
      (unreachable))
    (i32.load (i32.const 0x10)))
)
