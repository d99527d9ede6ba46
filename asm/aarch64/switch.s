/*
 * greenlet switch, AArch64 AAPCS64 on Linux (body of an inline `asm!` block
 * in engine/src/arch/aarch64.rs, which binds the registers named below).
 *
 * In:  x0 = where to store the suspended context's stack pointer
 *      x1 = stack pointer of the context to resume
 *      x9 = the resumed stack's link slot (see below)
 *      x2-x5 = four words handed to the resumed context, which finds them in
 *              the same registers (the value and the sender: no memory
 *              traffic for the message)
 * Out: x2-x5 = the words handed to us by whoever resumes us later
 *
 * Stack of a suspended greenlet (grows down; `sp` is what x0 received; sp is
 * 16-byte aligned at every instruction, as AArch64 faults on a misaligned sp
 * used as a base register):
 *
 *     sp + 24  resume address      \ together a frame record (x29, x30) as
 *     sp + 16  saved x29           / AAPCS64 lays them out, at sp + 16
 *     sp +  8  0                   padding to 16 bytes (the entry function
 *                                  of a new stack, see trampoline.s)
 *     sp +  0  saved x19           LLVM reserves x19, so asm! cannot list it
 *
 * Registers (AAPCS64 callee-saved: x19-x29, sp, lr as the return address,
 * and the low 64 bits d8-d15 of v8-v15):
 *   - x19 and x29 are stored here because Rust's asm! cannot declare them
 *     clobbered (x19 is reserved by LLVM as a base pointer, x29 is the frame
 *     pointer).
 *   - x20-x28 are declared clobbered by the asm! block: the compiler saves
 *     them in the prologue of the function this block is inlined into and
 *     spills only the values live across the switch, instead of this code
 *     storing all nine on every switch (same cost for one switch per call,
 *     less for a function that switches in a loop).
 *   - d8-d15: clobber_abi("C") on AArch64 declares all of v0-v31 clobbered
 *     (asm! cannot express "only the upper 64 bits"), so the compiler
 *     saves d8-d15 in that same prologue. Storing them here as well would
 *     only duplicate that work.
 *   - lr (x30) is declared clobbered by clobber_abi("C"): the enclosing
 *     function is not a leaf (it contains this switch, which the compiler
 *     treats as a call), so its prologue already keeps its return address.
 *     The suspended context's own resume point is the resume address slot.
 *   - Every caller-saved register (x0-x18, x30, v0-v31, the SVE p0-p15 and
 *     ffr, NZCV) is declared clobbered with clobber_abi("C") or by default.
 *     x18 is the platform register; on Linux it is an ordinary temporary
 *     and part of clobber_abi("C") for this target, so it is not saved.
 *   - sp is the context itself.
 *   - FPCR (rounding mode, flush-to-zero, default NaN) is NOT saved: like
 *     MXCSR on x86_64, a thread's greenlets share their floating-point
 *     control state, as with corosensei and Python's greenlet (see
 *     engine/src/arch/aarch64.rs). FPSR (cumulative exception flags) is
 *     shared the same way.
 *
 * Resuming loads the whole frame into registers before sp moves above it,
 * so no byte of the frame is read from below sp (a signal handler running
 * on this stack may overwrite anything there: AArch64 Linux has no red zone).
 * x16/x17 are scratch (IP0/IP1); for a suspended greenlet x17 receives the
 * padding and is ignored.
 *
 * Branch prediction: the switch neither calls nor returns. The resume
 * address is loaded and reached with `br x16`, an indirect branch that the
 * indirect-branch predictor learns for regular switch patterns (ping-pong,
 * round robin). A `ret` would pop a return-stack entry pushed by some other
 * context's `bl`, mispredict on every switch, and leave the return stack
 * unbalanced for the caller's own returns afterwards. Nothing here uses `bl`
 * either, so the return stack is left exactly as the caller had it.
 *
 * Link slot: before leaving, we store the address of our frame record
 * (sp + 16) in the resumed stack's link slot, the word just below its top (a
 * root's slot is a dummy). The entry trampoline's frame record and CFI
 * (trampoline.s) read it, so that frame-pointer walks and DWARF unwinders
 * continue from a greenlet's outermost frame into the frames of the context
 * that last switched into it, down to main.
 *
 * The target is built without branch protection (BTI/PAC), so the resume
 * labels need no landing pad and the stored resume address is unsigned.
 */
    adr x16, 2f
    stp x29, x16, [sp, #-16]!
    stp x19, xzr, [sp, #-16]!
    mov x16, sp
    str x16, [x0]
    add x17, x16, #16
    str x17, [x9]
    ldp x19, x17, [x1]
    ldp x29, x16, [x1, #16]
    add sp, x1, #32
    br x16
2:
