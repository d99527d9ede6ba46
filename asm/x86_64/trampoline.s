/*
 * greenlet entry trampoline, x86_64 System V (body of a naked function in
 * engine/src/arch/x86_64.rs). The first switch into a new stack `jmp`s here.
 *
 * Initial stack written by `init_stack` (top T is 16-byte aligned):
 *
 *     T -  8   0                 padding
 *     T - 16   0                 fake return address: unwinders stop here
 *     T - 24   data              second argument of entry
 *     T - 32   entry             the Rust function to run on this stack
 *     T - 40   this trampoline   popped by the switch, rsp = T - 32 on arrival
 *
 * On arrival rdx, rcx, r8, r9 hold the four words passed by the switch. They
 * move to the first four argument registers (rdi, rsi, rdx, rcx, in an order
 * that reads each before overwriting it) and data, popped into r8, is the
 * fifth. Popping entry and data leaves rsp = T - 16, 16-byte aligned as the
 * ABI requires before a `call`; entry(w0, w1, w2, w3, data) never returns (it
 * switches away for good when the greenlet dies), so ud2 only guards against
 * a broken entry.
 *
 * rbp is cleared so frame-pointer walks end at this frame, and the CFI marks
 * the return address undefined so DWARF unwinders stop here as well instead
 * of reading past the top of the stack. No register needs saving: nothing
 * called this code.
 */
    .cfi_startproc
    .cfi_undefined rip
    xor ebp, ebp
    mov rdi, rdx
    mov rsi, rcx
    mov rdx, r8
    mov rcx, r9
    pop rax
    pop r8
    call rax
    ud2
    .cfi_endproc
