;; greenlet_rt: the wasm32 platform layer's runtime (see engine/src/arch/wasm32.rs).
;;
;; One continuation per greenlet, switched symmetrically with the stack-switching proposal's
;; `switch` instruction: a switch is one stack change, no scheduler in between. The runtime
;; knows nothing of greenlet rules (dead targets, parents, panics): engine/src/switch.rs does
;; all that on top of three functions, as it does on top of the native assembly.
;;
;;   new(entry, data, shadow_top) -> handle
;;       A continuation that, when first switched to with words w0..w3, sets the guest's
;;       __stack_pointer to shadow_top and calls entry(w0, w1, w2, w3, data) (entry is an
;;       index into the guest's function table, and never returns). Taken from the pool of
;;       released continuations when there is one, else made with cont.new.
;;   switch(save, target, w0, w1, w2, w3, out)
;;       Stores the running greenlet's handle at guest address `save`, switches to the
;;       continuation `target` handing it w0..w3, and when someone switches back, stores the
;;       four words they handed at guest address `out` (16 bytes).
;;   release(handle)
;;       The greenlet of `handle` never runs again: it is dead (suspended for good inside its
;;       last `switch`) or was never started. Its continuation goes to the pool.
;;   run(arg) -> result                                             (exported to the host)
;;       Calls the guest's greenlet_main(arg) inside the root continuation (handle 0), so that
;;       the guest's code can switch; returns what greenlet_main returned.
;;
;; Handles. A handle is an index into $conts, the table of suspended continuations: while a
;; greenlet is suspended, $conts[handle] is its continuation (a `switch` hands the target the
;; switcher's suspended continuation, which the target stores at the switcher's handle, left
;; in $prev). Handle 0 is the root: the continuation `run` resumes. Other handles also index
;; 16-byte records in this module's own memory $rt: entry, data, shadow top, flags.
;;
;; Shadow stacks. A Rust guest keeps address-taken locals in linear memory below the global
;; __stack_pointer. Each greenlet has its own shadow stack: `switch` keeps the switcher's
;; __stack_pointer in a local of its own frame (which lives on the switcher's continuation)
;; and puts it back when the switcher is resumed; a continuation starting a greenlet sets it
;; to the greenlet's shadow top.
;;
;; The pool. wasmtime frees no continuation before its Store is dropped, and each one has a
;; machine stack of its own, so continuations are reused rather than made per greenlet. A
;; released continuation is either fresh (never started: it will start at $worker) or dead
;; (suspended inside its greenlet's last `switch`). A dead one is reused by resuming it
;; there with the RESTART flag set: `switch` then throws $restart instead of returning, which
;; unwinds the dead greenlet's wasm frames (which hold nothing: the native engine simply
;; abandons them) up to the try_table in $worker, which starts the new greenlet. In a guest
;; built with panic=unwind the exception passes through Rust's cleanup pads, which find
;; nothing to drop (a dying greenlet's last switch has taken its result, its only owned
;; value), and through the guest's entry function, which is "C-unwind" on wasm32 for this
;; reason (engine/src/switch.rs).
;;
;; Errors trap: switching to a released handle ("unreachable"), to the running greenlet or a
;; consumed continuation (wasmtime's own trap), releasing handle 0 or a handle twice.
(module $greenlet_rt
  ;; Every continuation has this type: four words and the continuation of whoever switched.
  (rec
    (type $ft (func (param i32 i32 i32 i32 (ref null $ct))))
    (type $ct (cont $ft)))
  (type $entry_sig (func (param i32 i32 i32 i32 i32)))
  (type $main_sig (func (param i32) (result i32)))

  (import "guest" "memory" (memory $mem 0))
  (import "guest" "__stack_pointer" (global $sp (mut i32)))
  (import "guest" "__indirect_function_table" (table $guest_fns 0 funcref))
  (import "guest" "greenlet_main" (func $guest_main (type $main_sig)))
  ;; The proxy's forwarding table (see tests/src/host.rs): filled by the element segment below,
  ;; which is how the guest, instantiated before this module, reaches these functions.
  (import "proxy" "table" (table $proxy 3 funcref))

  ;; The handler tag of every `switch` (continuations return nothing).
  (tag $switch_tag)
  ;; The root suspends with this at the end of a run, parked for the next `run`; resuming it
  ;; hands it the next run's argument.
  (tag $run_done (result i32 i32 i32 i32 (ref null $ct)))
  ;; Thrown inside a dead continuation being reused (the first switch's words travel in
  ;; $restart_w0..3). Always the same exception object, $restart_exn, rethrown with throw_ref:
  ;; `throw` would allocate one per restart in wasmtime's GC heap, and wasmtime 48 panics when
  ;; a collection traces a suspended continuation (bytecodealliance/wasmtime#14239).
  (tag $restart)

  (memory $rt 1)
  (table $conts 1 (ref null $ct))
  (global $cur (mut i32) (i32.const 0))
  (global $prev (mut i32) (i32.const 0))
  ;; Released handles, linked through their records' data field; 0 ends the list.
  (global $free (mut i32) (i32.const 0))
  (global $parked_root (mut (ref null $ct)) (ref.null $ct))
  (global $result (mut i32) (i32.const 0))
  ;; Continuations made with cont.new so far (roots included), for the tests.
  (global $made (mut i32) (i32.const 0))
  (global $restart_exn (mut exnref) (ref.null exn))
  (global $restart_w0 (mut i32) (i32.const 0))
  (global $restart_w1 (mut i32) (i32.const 0))
  (global $restart_w2 (mut i32) (i32.const 0))
  (global $restart_w3 (mut i32) (i32.const 0))

  ;; Record fields (byte offsets) and flags.
  ;;   ENTRY 0, DATA 4 (next free handle while released), TOP 8, FLAGS 12
  ;;   USED 1: the continuation has started a greenlet (so reusing it needs a restart)
  ;;   RESTART 2: reused; the next resumption must restart, not return
  ;;   FREE 4: released, in the pool

  (elem (table $proxy) (i32.const 0) func $new $switch $release)

  (func $new (param $entry i32) (param $data i32) (param $top i32) (result i32)
    (local $h i32)
    (local $rec i32)
    (local $flags i32)
    (if (global.get $free)
      (then
        (local.set $h (global.get $free))
        (local.set $rec (i32.shl (local.get $h) (i32.const 4)))
        (global.set $free (i32.load $rt offset=4 (local.get $rec)))
        ;; A continuation that ran a greenlet is suspended in its last switch: restart it.
        (local.set $flags (i32.and (i32.load $rt offset=12 (local.get $rec)) (i32.const 1)))
        (if (i32.and (local.get $flags) (ref.is_null (global.get $restart_exn)))
          (then
            ;; The one exception object every restart rethrows, made (caught) here once.
            (global.set $restart_exn
              (block $made (result exnref)
                (try_table (catch_ref $restart $made) (throw $restart))
                (unreachable)))))
        (i32.store $rt offset=12 (local.get $rec)
          (i32.or (local.get $flags) (i32.shl (local.get $flags) (i32.const 1)))))
      (else
        (global.set $made (i32.add (global.get $made) (i32.const 1)))
        (local.set $h
          (table.grow $conts (cont.new $ct (ref.func $worker)) (i32.const 1)))
        (if (i32.eq (local.get $h) (i32.const -1)) (then (unreachable)))
        (local.set $rec (i32.shl (local.get $h) (i32.const 4)))
        ;; 4096 records per 64 KiB page.
        (if (i32.ge_u (local.get $rec) (i32.shl (memory.size $rt) (i32.const 16)))
          (then
            (if (i32.eq (memory.grow $rt (i32.const 1)) (i32.const -1)) (then (unreachable)))))
        (i32.store $rt offset=12 (local.get $rec) (i32.const 0))))
    (i32.store $rt offset=0 (local.get $rec) (local.get $entry))
    (i32.store $rt offset=4 (local.get $rec) (local.get $data))
    (i32.store $rt offset=8 (local.get $rec) (local.get $top))
    (local.get $h))
  (elem declare func $worker $root_main)

  (func $release (param $h i32)
    (local $rec i32)
    (local $flags i32)
    (if (i32.or (i32.eqz (local.get $h)) (i32.ge_u (local.get $h) (table.size $conts)))
      (then (unreachable)))
    (local.set $rec (i32.shl (local.get $h) (i32.const 4)))
    (local.set $flags (i32.load $rt offset=12 (local.get $rec)))
    (if (i32.and (local.get $flags) (i32.const 4)) (then (unreachable)))
    (i32.store $rt offset=12 (local.get $rec) (i32.or (local.get $flags) (i32.const 4)))
    (i32.store $rt offset=4 (local.get $rec) (global.get $free))
    (global.set $free (local.get $h)))

  (func $switch
    (param $save i32) (param $target i32)
    (param $w0 i32) (param $w1 i32) (param $w2 i32) (param $w3 i32) (param $out i32)
    (local $shadow i32)
    (local $k (ref null $ct))
    (local $flags i32)
    ;; Released handles never run again (their continuation may already be someone else's).
    (if (i32.and (i32.load $rt offset=12 (i32.shl (local.get $target) (i32.const 4)))
                 (i32.const 4))
      (then (unreachable)))
    (i32.store $mem (local.get $save) (global.get $cur))
    (local.set $shadow (global.get $sp))
    (global.set $prev (global.get $cur))
    (global.set $cur (local.get $target))
    (switch $ct $switch_tag
      (local.get $w0) (local.get $w1) (local.get $w2) (local.get $w3)
      (table.get $conts (local.get $target)))
    ;; Someone switched back to us: keep their continuation under their handle.
    (local.set $k)
    (local.set $w3)
    (local.set $w2)
    (local.set $w1)
    (local.set $w0)
    (table.set $conts (global.get $prev) (local.get $k))
    (local.set $flags (i32.load $rt offset=12 (i32.shl (global.get $cur) (i32.const 4))))
    (if (i32.and (local.get $flags) (i32.const 2))
      (then
        ;; This greenlet is dead and its continuation was given to a new one: start it.
        (i32.store $rt offset=12 (i32.shl (global.get $cur) (i32.const 4))
          (i32.and (local.get $flags) (i32.const -3)))
        (global.set $restart_w0 (local.get $w0))
        (global.set $restart_w1 (local.get $w1))
        (global.set $restart_w2 (local.get $w2))
        (global.set $restart_w3 (local.get $w3))
        (throw_ref (global.get $restart_exn))))
    (global.set $sp (local.get $shadow))
    (i32.store $mem offset=0 (local.get $out) (local.get $w0))
    (i32.store $mem offset=4 (local.get $out) (local.get $w1))
    (i32.store $mem offset=8 (local.get $out) (local.get $w2))
    (i32.store $mem offset=12 (local.get $out) (local.get $w3)))

  ;; The body of every greenlet continuation: start a greenlet, and start the next one when
  ;; the continuation is reused (a $restart from the dead one's last switch).
  (func $worker (type $ft)
    (local $rec i32)
    (local.set $rec (i32.shl (global.get $cur) (i32.const 4)))
    (table.set $conts (global.get $prev) (local.get 4))
    (i32.store $rt offset=12 (local.get $rec)
      (i32.or (i32.load $rt offset=12 (local.get $rec)) (i32.const 1)))
    (loop $start
      (block $restarted
        (try_table (catch $restart $restarted)
          (global.set $sp (i32.load $rt offset=8 (local.get $rec)))
          (call_indirect $guest_fns (type $entry_sig)
            (local.get 0) (local.get 1) (local.get 2) (local.get 3)
            (i32.load $rt offset=4 (local.get $rec))
            (i32.load $rt offset=0 (local.get $rec))))
        ;; A greenlet's entry leaves only by switching away.
        (unreachable))
      (local.set 0 (global.get $restart_w0))
      (local.set 1 (global.get $restart_w1))
      (local.set 2 (global.get $restart_w2))
      (local.set 3 (global.get $restart_w3))
      (br $start)))

  ;; The root continuation: one run of greenlet_main per resumption, parked in between.
  (func $root_main (type $ft)
    (loop $again
      (global.set $result (call $guest_main (local.get 0)))
      (suspend $run_done)
      (drop)
      (drop)
      (drop)
      (drop)
      (local.set 0)
      (br $again)))

  (func (export "run") (param $arg i32) (result i32)
    (local $k (ref null $ct))
    (local.set $k (global.get $parked_root))
    (global.set $parked_root (ref.null $ct))
    (if (ref.is_null (local.get $k))
      (then
        (global.set $made (i32.add (global.get $made) (i32.const 1)))
        (local.set $k (cont.new $ct (ref.func $root_main)))))
    (global.set $cur (i32.const 0))
    (global.set $parked_root
      (block $parked (result (ref $ct))
        (resume $ct (on $switch_tag switch) (on $run_done $parked)
          (local.get $arg) (i32.const 0) (i32.const 0) (i32.const 0) (ref.null $ct)
          (local.get $k))
        ;; $root_main never returns.
        (unreachable)))
    (global.get $result))

  ;; For the tests: how many continuations were made (each one lives until the store goes).
  (func (export "continuations") (result i32)
    (global.get $made))
)
