/*
 * greenlet switch, x86_64 System V (body of an inline `asm!` block in
 * engine/src/arch/x86_64.rs, which binds the registers named below).
 *
 * In:  rdi = where to store the suspended context's stack pointer
 *      rsi = stack pointer of the context to resume
 *      r10 = the resumed stack's link slot (see below)
 *      rdx, rcx, r8, r9 = four words handed to the resumed context, which
 *           finds them in the same registers (the value and the sender:
 *           no memory traffic for the message)
 * Out: rdx, rcx, r8, r9 = the words handed to us by whoever resumes us later
 *
 * Stack of a suspended greenlet (grows down; `sp` is what rdi received):
 *
 *     sp + 16  saved rbx           LLVM reserves rbx, so asm! cannot list it
 *     sp +  8  resume address      label 2 below, or the entry trampoline
 *     sp +  0  saved rbp           \ together a frame record (rbp, return
 *                                   / address), as a `call` + `push rbp` make
 *
 * rbx goes first so that the frame record is at the saved stack pointer
 * itself: the link slot (below) then gets rsp, with no address to compute.
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
 * Link slot: before leaving, we store the address of our frame record
 * (sp) in the resumed stack's link slot, the word just below its top (a
 * root's slot is a dummy). The entry trampoline's frame record and its CFI
 * (trampoline.s) read it, so that a frame-pointer walk, a DWARF unwinder
 * (std::backtrace, a panic's backtrace, gdb) continue from a greenlet's
 * outermost frame into the frames of the context that last switched into
 * it, down to main. One store per switch buys debuggable stacks, and it is
 * skipped when the slot already holds our record, as it does in any regular
 * switch pattern (the same switch in a loop): a compare and a predictable
 * branch cost less than the store, which made a ping-pong round trip 12-16 %
 * slower (measured with the store unconditional: 4.2 ns, compared: 3.5 ns).
 *
 * Return-address prediction: the switch neither calls nor returns. The
 * resume address is popped and reached with an indirect `jmp`, which the
 * indirect branch predictor learns for regular switch patterns (ping-pong,
 * round robin). A `ret` here would pop a return-stack-buffer entry pushed by
 * some other context's `call`, mispredict on every switch, and leave the
 * buffer unbalanced for the caller's own returns afterwards.
 */
    push rbx
    lea rax, [rip + 2f]
    push rax
    push rbp
    mov [rdi], rsp
    cmp [r10], rsp
    je 3f
    mov [r10], rsp
3:
    mov rsp, rsi
    pop rbp
    pop rax
    pop rbx
    jmp rax
2:
