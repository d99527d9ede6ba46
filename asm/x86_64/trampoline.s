/*
 * greenlet entry trampoline, x86_64 System V (body of a naked function in
 * engine/src/arch/x86_64.rs). The first switch into a new stack `jmp`s here.
 *
 * Initial stack written by `init_stack` (top T is 16-byte aligned):
 *
 *     T -  8   trampoline + 4       \ the fake frame record R at T - 16:
 *     T - 16   link slot            / (next frame = the switcher's record,
 *                                     return address = this trampoline)
 *     T - 24   entry                the Rust function to run on this stack
 *     T - 32   data                 rbx                 \ popped by the
 *     T - 40   this trampoline      resume address       | first switch,
 *     T - 48   0                    rbp                 / rsp = T - 24 here
 *
 * The link slot holds the address of the frame record (rbp, resume address)
 * of whichever context last switched into this stack (switch.s writes it on
 * every switch in). Three things follow it across stacks:
 *   - frame-pointer walks (perf, profilers): rbp = R before the call, so
 *     entry's frame record chains to R, and R to the switcher's record;
 *   - DWARF unwinders (std::backtrace, panics, gdb): the CFI below says the
 *     caller's rip, rbp and rbx are in and just above that record and its
 *     CFA is 24 bytes above it (the switcher's rsp once its switch returns);
 *   - gdb's "previous frame inner to this frame" check: the caller's frame
 *     is on another stack, possibly at a lower address, so this frame is
 *     marked a signal frame, which gdb accepts (corosensei does the same).
 *
 * On arrival rdx, rcx, r8, r9 hold the four words passed by the switch and
 * rbx holds data. The words move to the first four argument registers (rdi,
 * rsi, rdx, rcx, each read before it is overwritten) and data to the fifth
 * (r8). Popping entry leaves rsp = T - 16, 16-byte aligned as the ABI
 * requires before a `call`; entry(w0, w1, w2, w3, data) never returns (it
 * switches away for good when the greenlet dies), so ud2 only guards
 * against a broken entry. No register needs saving: nothing called this.
 *
 * CFI, evaluated at the return address of the call, where rsp = T - 16:
 *   CFA = [rsp] + 24            DW_CFA_def_cfa_expression:
 *                                 breg7(rsp) 0, deref, plus_uconst 24
 *   rip at [rsp] + 8            DW_CFA_expression 16: breg7 0, deref, plus_uconst 8
 *   rbp at [rsp]                DW_CFA_expression 6:  breg7 0, deref
 *   rbx at [rsp] + 16           DW_CFA_expression 3:  breg7 0, deref, plus_uconst 16
 */
    .cfi_startproc
    .cfi_signal_frame
    .cfi_escape 0x0f, 0x05, 0x77, 0x00, 0x06, 0x23, 0x18
    .cfi_escape 0x10, 0x10, 0x05, 0x77, 0x00, 0x06, 0x23, 0x08
    .cfi_escape 0x10, 0x06, 0x03, 0x77, 0x00, 0x06
    .cfi_escape 0x10, 0x03, 0x05, 0x77, 0x00, 0x06, 0x23, 0x10
    pop rax
    mov rbp, rsp
    mov rdi, rdx
    mov rsi, rcx
    mov rdx, r8
    mov rcx, r9
    mov r8, rbx
    call rax
    ud2
    .cfi_endproc
