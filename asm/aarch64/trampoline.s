/*
 * greenlet entry trampoline, AArch64 AAPCS64 on Linux (body of a naked
 * function in engine/src/arch/aarch64.rs). The first switch into a new stack
 * `br`s here.
 *
 * Initial stack written by `init_stack` (top T is 16-byte aligned):
 *
 *     T -  8   trampoline + 4       \ the fake frame record R at T - 16:
 *     T - 16   link slot            / (next frame = the switcher's record,
 *                                     return address = this trampoline)
 *     T - 24   this trampoline      resume address  \
 *     T - 32   0                    x29              | loaded by the first
 *     T - 40   entry                padding slot     | switch, which leaves
 *     T - 48   data                 x19             /  sp = T - 16
 *
 * The link slot holds the address of the frame record (x29, resume address)
 * of whichever context last switched into this stack (switch.s writes it on
 * every switch in). Frame-pointer walks follow it because x29 = R when
 * entry is called, so entry's frame record chains to R and R to the
 * switcher's record. DWARF unwinders follow it through the CFI below: the
 * caller's x30 (its resume address), x29 and x19 are in and around that
 * record, and its CFA is 16 bytes above it (the switcher's sp once its
 * switch returns). The frame is marked a signal frame so that gdb accepts a
 * caller on another stack at a lower address.
 *
 * The switch loads all four words of the frame before it moves sp (see
 * switch.s), so on arrival: x2-x5 = the words passed by the switch, x17 =
 * entry, x19 = data, and sp = T - 16, 16-byte aligned as AAPCS64 requires
 * at every call. The words move down to x0-x3 (each read before it is
 * overwritten) and data becomes the fifth argument, x4. entry(w0, w1, w2,
 * w3, data) never returns (it switches away for good when the greenlet
 * dies), so `brk` only guards against a broken entry. No register needs
 * saving: nothing called this code.
 *
 * CFI, evaluated at the return address of the call, where sp = T - 16:
 *   CFA = [sp] + 16       DW_CFA_def_cfa_expression: breg31(sp) 0, deref, plus_uconst 16
 *   x30 at [sp] + 8       DW_CFA_expression 30: breg31 0, deref, plus_uconst 8
 *   x29 at [sp]           DW_CFA_expression 29: breg31 0, deref
 *   x19 at [sp] - 16      DW_CFA_expression 19: breg31 0, deref, lit16, minus
 */
    .cfi_startproc
    .cfi_signal_frame
    .cfi_escape 0x0f, 0x05, 0x8f, 0x00, 0x06, 0x23, 0x10
    .cfi_escape 0x10, 0x1e, 0x05, 0x8f, 0x00, 0x06, 0x23, 0x08
    .cfi_escape 0x10, 0x1d, 0x03, 0x8f, 0x00, 0x06
    .cfi_escape 0x10, 0x13, 0x05, 0x8f, 0x00, 0x06, 0x40, 0x1c
    mov x29, sp
    mov x0, x2
    mov x1, x3
    mov x2, x4
    mov x3, x5
    mov x4, x19
    blr x17
    brk #0x1
    .cfi_endproc
