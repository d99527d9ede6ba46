//! Native vs wasm, scenario by scenario: every scenario of `greenlet_conformance::scenarios`
//! runs natively (on a thread of its own, so it starts with a fresh root) and in each wasm
//! guest that can run it (a fresh wasmtime store per run), in both modes (plain, traced); the
//! event lists must be identical.
//!
//! Guests: `Abort` (stable Rust, panic=abort) runs the scenarios that need only switching;
//! `Unwind` (nightly, panic=unwind with wasm exception handling) also runs those that unwind.
//! Scenarios that need threads run natively only. Each test prints which runs it compared.

use std::sync::Once;

use greenlet_conformance::host::{Guest, GuestKind};
use greenlet_conformance::scenarios::{self, Boom, Mode, Needs, SCENARIOS};

/// Panics the scenarios raise on purpose are expected: keep them off stderr (natively; a wasm
/// guest has no stderr).
fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            if !(p.is::<Boom>() || p.is::<greenlet::GreenletExit>()) {
                default(info);
            }
        }));
    });
}

fn native(index: usize, mode: Mode) -> Vec<String> {
    quiet_expected_panics();
    std::thread::spawn(move || scenarios::run_index(index, mode))
        .join()
        .unwrap_or_else(|_| panic!("{} failed natively ({mode:?})", SCENARIOS[index].name))
}

fn wasm(kind: GuestKind, index: usize, mode: Mode) -> Vec<String> {
    let module = kind.module().unwrap_or_else(|e| panic!("{e}"));
    let mut guest = Guest::new(module).expect("instantiate the guest");
    guest.scenario(index, mode).unwrap_or_else(|e| {
        panic!(
            "{} failed in the {kind:?} guest ({mode:?}): {e:?}",
            SCENARIOS[index].name
        )
    })
}

fn supports(kind: GuestKind, needs: Needs) -> bool {
    match needs {
        Needs::Switching => true,
        Needs::Unwinding => kind == GuestKind::Unwind,
        Needs::Threads => false,
    }
}

/// Compares the native run of `name` with every guest that supports it, in both modes.
fn compare(name: &str) {
    let index = SCENARIOS
        .iter()
        .position(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"));
    let needs = SCENARIOS[index].needs;
    for mode in [Mode::Plain, Mode::Traced] {
        let expected = native(index, mode);
        assert_eq!(expected.last().map(String::as_str), Some("end"));
        for kind in [GuestKind::Abort, GuestKind::Unwind] {
            if !supports(kind, needs) {
                println!(
                    "{name} ({mode:?}): native only in the {kind:?} guest: {}",
                    needs.reason()
                );
                continue;
            }
            let got = wasm(kind, index, mode);
            assert_eq!(
                got, expected,
                "{name} ({mode:?}): the {kind:?} wasm guest's events (left) differ from native"
            );
            println!(
                "{name} ({mode:?}): {kind:?} guest == native, {} events",
                got.len()
            );
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { compare(stringify!($name)); })*

        /// Every scenario of the library has a test above, in the library's order.
        #[test]
        fn every_scenario_is_compared() {
            assert_eq!(scenarios::names(), [$(stringify!($name)),*]);
        }
    };
}

conformance! {
    case_01_switch_order,
    case_02_two_greenlets_one_body,
    case_03_parent_is_creator,
    case_04_first_switch_is_argument,
    case_05_return_goes_to_parent,
    case_06_switch_to_dead_returns_at_once,
    case_07_root,
    case_08_states,
    case_09_panic_goes_to_parent,
    case_10_throw_caught,
    case_11_kill,
    case_12_throw_into_unstarted_chain,
    case_13_drop_kills_suspended,
    case_14_cycles_refused,
    case_15_threads,
    case_16_tracer,
    case_17_inject,
    case_18_reset,
    case_19_recursion_within_stack_size,
    case_20_generator,
    rule_01_switch_to_current,
    rule_01_dead_goes_to_first_live_ancestor,
    rule_02_parent_chain_on_finish,
    rule_03_panic_climbs_two_levels,
    rule_04_throw_into_dead_and_current,
    rule_05_exit_escaping_is_a_value,
    rule_06_drop_with_dropper_as_parent,
    rule_07_set_parent,
    rule_09_inject_panics,
    rule_10_reset_refused_and_after_panic,
    rule_12_tracer_panics,
    rule_13_values,
    shadow_stacks_are_isolated,
    many_short_lived,
    chain_of_500,
    backtrace_probe_leaves_state,
    example_seed,
    example_pingpong,
    example_generator,
    example_pipeline,
    example_pipeline_cleanup,
}

/// The limitation the `Abort` guest documents is real: a panic there traps (the whole store is
/// unusable afterwards), where the `Unwind` guest raises it in the parent.
#[test]
fn a_panic_traps_in_the_abort_guest() {
    let index = scenarios::names()
        .iter()
        .position(|n| *n == "case_09_panic_goes_to_parent")
        .unwrap();
    let mut guest = Guest::new(GuestKind::Abort.module().unwrap()).unwrap();
    let err = guest.scenario(index, Mode::Plain).unwrap_err();
    let trap = err.downcast_ref::<wasmtime::Trap>().copied();
    assert_eq!(
        trap,
        Some(wasmtime::Trap::UnreachableCodeReached),
        "{err:?}"
    );
}

/// Continuations come from the runtime's pool: thousands of greenlets, one after the other,
/// leave only a handful of continuations behind (wasmtime frees none before the store goes).
#[test]
fn continuations_are_reused() {
    let index = scenarios::names()
        .iter()
        .position(|n| *n == "many_short_lived")
        .unwrap();
    for kind in [GuestKind::Abort, GuestKind::Unwind] {
        let mut guest = Guest::new(kind.module().unwrap()).unwrap();
        let events = guest.scenario(index, Mode::Plain).unwrap();
        assert!(events.iter().any(|e| e.starts_with("total ")), "{events:?}");
        // 3000 started and 1000 never-started greenlets; at most two are alive at once.
        let made = guest.continuations().unwrap();
        assert!(
            made <= 4,
            "{kind:?}: {made} continuations for 4000 greenlets"
        );
        // Running it again in the same store makes no new ones.
        guest.scenario(index, Mode::Plain).unwrap();
        assert_eq!(guest.continuations().unwrap(), made, "{kind:?}");
    }
}

/// Each panic in the `Unwind` guest allocates a wasm exception object in wasmtime's GC heap,
/// and wasmtime 48 panics when a collection traces a suspended continuation
/// (bytecodealliance/wasmtime#14239). With the GC heap starting at 256 MiB (`host::config`) a
/// store takes thousands of kills without a collection; with wasmtime's default (an empty heap
/// that grows) this crashed after about 1,300.
#[test]
fn thousands_of_panics_in_one_store() {
    let index = scenarios::names()
        .iter()
        .position(|n| *n == "case_11_kill")
        .unwrap();
    let mut guest = Guest::new(GuestKind::Unwind.module().unwrap()).unwrap();
    for run in 0..5000 {
        let events = guest
            .scenario(index, Mode::Plain)
            .unwrap_or_else(|e| panic!("run {run}: {e:?}"));
        assert_eq!(events.last().map(String::as_str), Some("end"));
    }
}
