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

use crate::scenarios::Mode;

pub use wasmtime::{Error, Result};

/// The runtime's source: `asm/wasm/greenlet_rt.wat`.
pub const RUNTIME_WAT: &str = include_str!("../../asm/wasm/greenlet_rt.wat");
/// The proxy's source: `asm/wasm/proxy.wat`.
pub const PROXY_WAT: &str = include_str!("../../asm/wasm/proxy.wat");

/// The wasmtime configuration stack switching needs (toolchain notes): typed function
/// references, exceptions (tags; the runtime also throws one), GC (the `rec` group of the
/// continuation type) and stack switching. Cranelift on x86_64 Linux only.
///
/// The GC heap starts at [`GC_HEAP_INITIAL`] bytes (reserved, committed as touched): wasmtime
/// 48 panics when a collection traces a suspended continuation
/// (bytecodealliance/wasmtime#14239), and the first collection comes when the heap is full.
/// Only wasm exceptions allocate here: none per switch, one per panic in the `Unwind` guest.
pub fn config() -> Config {
    let mut config = Config::new();
    config
        .wasm_function_references(true)
        .wasm_exceptions(true)
        .wasm_gc(true)
        .wasm_stack_switching(true)
        .gc_heap_initial_size(GC_HEAP_INITIAL);
    config
}

/// Initial GC heap of a store (see [`config`]).
pub const GC_HEAP_INITIAL: u64 = 256 << 20;

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

    /// Sends `greenlet_main` a command (see `tests/guest/src/lib.rs`) and returns the text it
    /// left in memory.
    pub fn command(&mut self, op: u32, arg: u32) -> Result<String> {
        assert!(op < 0x80 && arg < 1 << 24, "command out of range");
        let pair = self.run(((op << 24) | arg) as i32)? as u32;
        let (ptr, len) = (self.read_u32(pair)?, self.read_u32(pair + 4)?);
        String::from_utf8(self.read(ptr, len)?).map_err(|e| Error::msg(e.to_string()))
    }

    /// Runs scenario `index` in `mode` in this guest and returns its events.
    pub fn scenario(&mut self, index: usize, mode: Mode) -> Result<Vec<String>> {
        let arg = index as u32 * 2 + u32::from(mode == Mode::Traced);
        let text = self.command(0, arg)?;
        Ok(text.lines().map(str::to_owned).collect())
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

    /// Number of continuations the runtime has made (roots included); wasmtime keeps each one
    /// until the store is dropped.
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

/// The two builds of the Rust guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuestKind {
    /// Stable Rust, `wasm32-unknown-unknown` as shipped: `panic=abort` (a panic traps).
    Abort,
    /// Nightly Rust, the standard library rebuilt (`-Zbuild-std`) with `panic=unwind` and
    /// the exception-handling target feature, in the exnref encoding wasmtime implements
    /// (`-wasm-use-legacy-eh=false`): panics unwind across greenlets as natively.
    Unwind,
}

impl GuestKind {
    /// The guest's own target directory under the workspace's: a `cargo test` that builds it
    /// holds the lock of the main one, and the two builds must not share artifacts.
    pub fn target_dir(self) -> PathBuf {
        target_dir().join(match self {
            GuestKind::Abort => "wasm-guest",
            GuestKind::Unwind => "wasm-guest-unwind",
        })
    }

    /// The command that builds this guest (in release mode: the benchmark runs it too).
    pub fn build_command(self) -> Command {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("guest/Cargo.toml");
        let mut cmd = match self {
            GuestKind::Abort => {
                // The cargo running these tests, so the toolchain is the workspace's.
                Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            }
            GuestKind::Unwind => {
                let mut c = Command::new("rustup");
                c.args(["run", "nightly", "cargo"]);
                c
            }
        };
        cmd.args(["build", "--release", "--target", "wasm32-unknown-unknown"])
            .arg("--manifest-path")
            .arg(manifest)
            .arg("--target-dir")
            .arg(self.target_dir());
        // Never inherit flags meant for the host build.
        cmd.env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        if self == GuestKind::Unwind {
            // Set by the stable cargo running these tests; the nightly cargo must use its own
            // toolchain throughout.
            cmd.env_remove("CARGO")
                .env_remove("RUSTC")
                .env_remove("RUSTDOC");
            cmd.arg("-Zbuild-std=std,panic_unwind").env(
                "RUSTFLAGS",
                "-C panic=unwind -C target-feature=+exception-handling \
                 -C llvm-args=-wasm-use-legacy-eh=false",
            );
        }
        cmd
    }

    /// Where the build leaves the `.wasm` file.
    pub fn wasm_path(self) -> PathBuf {
        self.target_dir()
            .join("wasm32-unknown-unknown/release/greenlet_guest.wasm")
    }

    /// Builds the guest (a no-op when nothing changed) and returns its `.wasm` file.
    pub fn build(self) -> std::result::Result<PathBuf, String> {
        let status = self
            .build_command()
            .status()
            .map_err(|e| format!("running cargo for the {self:?} guest: {e}"))?;
        if !status.success() {
            return Err(format!(
                "building the {self:?} wasm guest failed ({status}); it needs the \
                 wasm32-unknown-unknown target{} (`cargo xtask setup` installs them)",
                match self {
                    GuestKind::Abort => "",
                    GuestKind::Unwind => ", the nightly toolchain and its rust-src component",
                }
            ));
        }
        Ok(self.wasm_path())
    }

    /// The guest, built and compiled once per process.
    pub fn module(self) -> Result<&'static Module> {
        static MODULES: [OnceLock<std::result::Result<Module, String>>; 2] =
            [OnceLock::new(), OnceLock::new()];
        MODULES[self as usize]
            .get_or_init(|| {
                let path = self.build()?;
                Module::from_file(engine(), &path).map_err(|e| format!("{}: {e:?}", path.display()))
            })
            .as_ref()
            .map_err(|e| Error::msg(e.clone()))
    }
}

/// CPU time of the calling thread, in seconds: unlike wall time, it leaves out the time the
/// thread waits for a core, which on a shared 2-core machine is most of the noise.
pub fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Nanoseconds per switch (minimum and median over `samples`), timed with
/// [`thread_cpu_seconds`]: each sample is the time of `rounds` round trips minus that of an
/// empty run (entering the root continuation, spawning the greenlet), over `2 * rounds`.
#[derive(Debug, Clone, Copy)]
pub struct SwitchNs {
    pub min: f64,
    pub median: f64,
}

/// [`SwitchNs`] of `f`, which runs `n` round trips and returns how many it counted.
pub fn measure(
    rounds: u32,
    samples: usize,
    mut f: impl FnMut(u32) -> Result<u32>,
) -> Result<SwitchNs> {
    let mut timed = |n: u32| -> Result<f64> {
        let start = thread_cpu_seconds();
        let count = f(n)?;
        let elapsed = thread_cpu_seconds() - start;
        if count != n {
            return Err(Error::msg(format!("{n} round trips counted {count}")));
        }
        Ok(elapsed)
    };
    timed(rounds)?; // warm up
    let mut per_switch: Vec<f64> = (0..samples.max(1))
        .map(|_| Ok((timed(rounds)? - timed(0)?) * 1e9 / (2.0 * f64::from(rounds))))
        .collect::<Result<_>>()?;
    per_switch.sort_by(f64::total_cmp);
    Ok(SwitchNs {
        min: per_switch[0],
        median: per_switch[per_switch.len() / 2],
    })
}

/// [`SwitchNs`] of the guest's ping-pong (`greenlet_conformance::bench`), in one store.
pub fn switch_ns(kind: GuestKind, rounds: u32, samples: usize) -> Result<SwitchNs> {
    let mut guest = Guest::new(kind.module()?)?;
    measure(rounds, samples, |n| {
        guest
            .command(2, n)?
            .parse()
            .map_err(|e| Error::msg(format!("bench result: {e}")))
    })
}
