/*
 * greenlet entry trampoline, AArch64 AAPCS64 on Linux (body of a naked
 * function in engine/src/arch/aarch64.rs). The first switch into a new stack
 * `br`s here.
 *
 * Initial stack written by `init_stack` (top T is 16-byte aligned):
 *
 *     T -  8   0                 x29 slot: the frame-pointer chain ends here
 *     T - 16   data              x19 slot: second argument of entry
 *     T - 24   entry             padding slot: the Rust function to run
 *     T - 32   this trampoline   resume address, reached with `br x16`
 *
 * The switch loads all four words before it moves sp (see switch.s), so on
 * arrival: x2-x5 = the words passed by the switch, x17 = entry, x19 = data,
 * x29 = 0, and sp = T, 16-byte aligned as AAPCS64 requires at every call.
 * The words move down to x0-x3 (each read before it is overwritten) and data
 * becomes the fifth argument, x4. entry(w0, w1, w2, w3, data) never returns
 * (it switches away for good when the greenlet dies), so `brk` only guards
 * against a broken entry.
 *
 * x29 is cleared here as well (not only through the frame) so frame-pointer
 * walks end at this frame whatever the slot held: entry's frame record will
 * hold x29 = 0. The CFI marks the return address (x30) undefined so DWARF
 * unwinders stop here as well instead of reading past the top of the stack.
 * No register needs saving: nothing called this code.
 */
    .cfi_startproc
    .cfi_undefined x30
    mov x29, xzr
    mov x0, x2
    mov x1, x3
    mov x2, x4
    mov x3, x5
    mov x4, x19
    blr x17
    brk #0x1
    .cfi_endproc
