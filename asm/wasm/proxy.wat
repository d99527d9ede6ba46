;; greenlet_rt proxy: breaks the import cycle between a guest and the runtime.
;;
;; The guest imports `greenlet_rt`'s functions; the runtime imports the guest's memory,
;; __stack_pointer, function table and greenlet_main. Core wasm cannot instantiate a cycle, so
;; the guest imports these forwarders instead: this module is instantiated first, the guest
;; second, and the runtime last, whose element segment fills `table` with its functions. Each
;; forwarder is a tail call, so no proxy frame stays on the stack (a switch suspends inside
;; the runtime's function, called straight from the guest's frame).
(module $greenlet_rt_proxy
  (type $new_sig (func (param i32 i32 i32) (result i32)))
  (type $switch_sig (func (param i32 i32 i32 i32 i32 i32 i32)))
  (type $release_sig (func (param i32)))
  (table $fns (export "table") 3 funcref)
  (func (export "new") (type $new_sig)
    (return_call_indirect $fns (type $new_sig)
      (local.get 0) (local.get 1) (local.get 2)
      (i32.const 0)))
  (func (export "switch") (type $switch_sig)
    (return_call_indirect $fns (type $switch_sig)
      (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)
      (local.get 6)
      (i32.const 1)))
  (func (export "release") (type $release_sig)
    (return_call_indirect $fns (type $release_sig)
      (local.get 0)
      (i32.const 2)))
)
