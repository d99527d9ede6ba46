//! The host side: wasmtime with stack switching, the runtime and proxy modules, and a guest
//! instantiated between them.
//!
//! Instantiation order breaks the guest ↔ runtime import cycle (see `asm/wasm/proxy.wat`):
//! proxy, then the guest (importing the proxy's forwarders as module `greenlet_rt`), then the
//! runtime (importing the guest's memory, `__stack_pointer`, function table and
//! `greenlet_main`, and filling the proxy's table).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use wasmtime::{Config, Engine, Instance, Linker, Memory, Module, Store, TypedFunc};

pub use wasmtime::{Error, Result};

/// The runtime's source: `asm/wasm/greenlet_rt.wat`.
pub const RUNTIME_WAT: &str = include_str!("../../asm/wasm/greenlet_rt.wat");
/// The proxy's source: `asm/wasm/proxy.wat`.
pub const PROXY_WAT: &str = include_str!("../../asm/wasm/proxy.wat");

/// The wasmtime configuration stack switching needs (toolchain notes): typed function
/// references, exceptions (tags; the runtime also throws one), GC (the `rec` group of the
/// continuation type) and stack switching. Cranelift on x86_64 Linux only.
pub fn config() -> Config {
    let mut config = Config::new();
    config
        .wasm_function_references(true)
        .wasm_exceptions(true)
        .wasm_gc(true)
        .wasm_stack_switching(true);
    config
}

/// One engine per process: compiling the modules is the slow part of a test, and an engine
/// can be shared by any number of stores.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(&config()).expect("wasmtime engine with stack switching"))
}

/// The runtime and proxy modules, compiled once (from WAT, with the `wat` crate).
pub fn runtime_modules() -> &'static (Module, Module) {
    static MODULES: OnceLock<(Module, Module)> = OnceLock::new();
    MODULES.get_or_init(|| {
        let compile = |name: &str, text: &str| {
            let bytes = wat::parse_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            Module::new(engine(), bytes).unwrap_or_else(|e| panic!("{name}: {e:?}"))
        };
        (
            compile("greenlet_rt.wat", RUNTIME_WAT),
            compile("proxy.wat", PROXY_WAT),
        )
    })
}

/// A guest wired to the runtime, in a store of its own.
pub struct Guest {
    pub store: Store<()>,
    pub guest: Instance,
    pub runtime: Instance,
    run: TypedFunc<i32, i32>,
    memory: Memory,
}

impl Guest {
    /// Instantiates proxy, `guest` and runtime in a new store.
    pub fn new(guest: &Module) -> Result<Guest> {
        let (runtime, proxy) = runtime_modules();
        let mut store = Store::new(engine(), ());
        let mut linker = Linker::new(engine());
        let proxy = linker.instantiate(&mut store, proxy)?;
        linker.instance(&mut store, "greenlet_rt", proxy)?;
        linker.instance(&mut store, "proxy", proxy)?;
        let guest_instance = linker.instantiate(&mut store, guest)?;
        linker.instance(&mut store, "guest", guest_instance)?;
        let runtime = linker.instantiate(&mut store, runtime)?;
        let run = runtime.get_typed_func::<i32, i32>(&mut store, "run")?;
        let memory = guest_instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| Error::msg("the guest exports no memory"))?;
        Ok(Guest {
            store,
            guest: guest_instance,
            runtime,
            run,
            memory,
        })
    }

    /// Calls the guest's `greenlet_main(arg)` inside the root continuation.
    pub fn run(&mut self, arg: i32) -> Result<i32> {
        self.run.call(&mut self.store, arg)
    }

    /// Reads `len` bytes of the guest's memory at `ptr`.
    pub fn read(&self, ptr: u32, len: u32) -> Result<Vec<u8>> {
        let mut buf = vec![0; len as usize];
        self.memory
            .read(&self.store, ptr as usize, &mut buf)
            .map_err(|e| Error::msg(format!("reading guest memory: {e}")))?;
        Ok(buf)
    }

    /// Reads a little-endian u32 of the guest's memory at `ptr`.
    pub fn read_u32(&self, ptr: u32) -> Result<u32> {
        let b = self.read(ptr, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Number of continuations the runtime has made (the root's slot included).
    pub fn continuations(&mut self) -> Result<i32> {
        let f = self
            .runtime
            .get_typed_func::<(), i32>(&mut self.store, "continuations")?;
        f.call(&mut self.store, ())
    }
}

/// The workspace's target directory (`CARGO_TARGET_DIR`, else `target/` at the root).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// Builds the Rust guest (`tests/guest`) for `wasm32-unknown-unknown`, in release mode, in a
/// target directory of its own (`target/wasm-guest`: a `cargo test` running this holds the
/// lock of the main one), and returns the `.wasm` file. Cargo makes this a no-op when nothing
/// changed.
pub fn build_guest() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = target_dir().join("wasm-guest");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("guest/Cargo.toml");
            let status = Command::new(cargo)
                .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
                .arg("--manifest-path")
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&dir)
                .status()
                .map_err(|e| format!("running cargo: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "building the wasm guest failed ({status}); is the target installed? \
                     `rustup target add wasm32-unknown-unknown`"
                ));
            }
            Ok(dir.join("wasm32-unknown-unknown/release/greenlet_guest.wasm"))
        })
        .clone()
        .map_err(Error::msg)
}

/// The Rust guest, built and compiled once per process.
pub fn guest_module() -> Result<&'static Module> {
    static MODULE: OnceLock<std::result::Result<Module, String>> = OnceLock::new();
    MODULE
        .get_or_init(|| {
            let path = build_guest().map_err(|e| e.to_string())?;
            Module::from_file(engine(), &path).map_err(|e| format!("{}: {e:?}", path.display()))
        })
        .as_ref()
        .map_err(|e| Error::msg(e.clone()))
}
