//! Link arguments of the wasm32 guest: the runtime module (`asm/wasm/greenlet_rt.wat`) imports
//! the guest's shadow-stack pointer, to give each greenlet its own shadow stack, and its
//! function table, to call a greenlet's entry function. The linker exports neither by default.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--export=__stack_pointer");
        println!("cargo:rustc-link-arg-cdylib=--export-table");
    }
}
