/*
 * greenlet switch, x86_64 System V (body of an inline `asm!` block in
 * engine/src/arch/x86_64.rs, which binds the registers named below).
 *
 * In:  rdi = where to store the suspended context's stack pointer
 *      rsi = stack pointer of the context to resume
 *      rdx, rcx, r8, r9 = four words handed to the resumed context, which
 *           finds them in the same registers (the value and the sender:
 *           no memory traffic for the message)
 * Out: rdx, rcx, r8, r9 = the words handed to us by whoever resumes us later
 *
 * Stack of a suspended greenlet (grows down; `sp` is what rdi received):
 *
 *     sp + 16  saved rbp           frame pointer of the suspended function
 *     sp +  8  saved rbx           LLVM reserves rbx, so asm! cannot list it as clobbered
 *     sp +  0  resume address      label 2 below, or the entry trampoline for a new stack
 *
 * Registers:
 *   - rbx and rbp are pushed here because Rust's asm! cannot declare them
 *     clobbered (rbx is an LLVM base pointer, rbp the frame pointer).
 *   - r12-r15 are declared clobbered by the asm! block: the compiler saves
 *     them in the enclosing function only if they are live, which is cheaper
 *     than saving all four on every switch.
 *   - Every caller-saved register (rax, rcx, rdx, rsi, rdi, r8-r11, xmm0-15,
 *     k0-7, x87 stack) is declared clobbered with clobber_abi("C").
 *   - rsp is the context itself.
 *   - MXCSR and the x87 control word are NOT saved: a thread's greenlets share
 *     its floating-point control state, as with corosensei and Python's
 *     greenlet (see engine/src/arch/x86_64.rs for the measured cost).
 *
 * Return-address prediction: the switch neither calls nor returns. The
 * resume address is popped and reached with an indirect `jmp`, which the
 * indirect branch predictor learns for regular switch patterns (ping-pong,
 * round robin). A `ret` here would pop a return-stack-buffer entry pushed by
 * some other context's `call`, mispredict on every switch, and leave the
 * buffer unbalanced for the caller's own returns afterwards.
 */
    push rbp
    push rbx
    lea rax, [rip + 2f]
    push rax
    mov [rdi], rsp
    mov rsp, rsi
    pop rax
    jmp rax
2:
    pop rbx
    pop rbp
