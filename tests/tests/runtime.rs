//! The runtime module (`asm/wasm/greenlet_rt.wat`) on its own, driven by a hand-written WAT
//! guest (`runtime_guest.wat`) whose greenlet bodies log what they see: the words handed by
//! each switch, the handle stored at `save`, the shadow-stack pointer, a marker kept on each
//! shadow stack. No Rust engine involved: this pins the runtime's contract with
//! `engine/src/arch/wasm32.rs`.

use greenlet_conformance::host::{Guest, engine};
use wasmtime::{Module, Trap};

const GUEST: &str = include_str!("runtime_guest.wat");

/// Log entries that mark who is logging (see runtime_guest.wat).
const ROOT_BACK: u32 = 0x2007;
const ECHO_START: u32 = 0xEC0;
const ECHO_BACK: u32 = 0xBAC;
const OTHER_START: u32 = 0x07E;
const RELAY_START: u32 = 0x4E1;
const RELAY_BACK: u32 = 0x4E2;
const ROOT_SP: u32 = 0x8000;

fn guest() -> Guest {
    let module = Module::new(engine(), GUEST).expect("runtime_guest.wat compiles");
    Guest::new(&module).expect("instantiate proxy, test guest and runtime")
}

/// Runs command `cmd` of the test guest; returns its log, or the trap and the log so far.
fn run(guest: &mut Guest, cmd: i32) -> (Result<(), Trap>, Vec<u32>) {
    let outcome = guest.run(cmd).map(drop).map_err(|e| {
        *e.downcast_ref::<Trap>()
            .unwrap_or_else(|| panic!("not a trap: {e:?}"))
    });
    let n = guest.read_u32(0x10).unwrap();
    let log = (0..n)
        .map(|i| guest.read_u32(0x1000 + 4 * i).unwrap())
        .collect();
    (outcome, log)
}

/// What the root logs when a switch comes back to it: the words, its own handle (0) as saved
/// by the switch, and its shadow-stack pointer, restored.
fn root_back(words: [u32; 4]) -> Vec<u32> {
    let mut v = vec![ROOT_BACK];
    v.extend(words);
    v.extend([0, ROOT_SP]);
    v
}

fn cat(parts: &[&[u32]]) -> Vec<u32> {
    parts.concat()
}

#[test]
fn switch_to_unstarted_then_suspended() {
    let mut g = guest();
    let (outcome, log) = run(&mut g, 1);
    outcome.unwrap();
    let expected = cat(&[
        // The first handle of a store.
        &[1],
        // Unstarted: the entry gets the first switch's words and its data, on its shadow stack.
        &[ECHO_START, 1, 1, 2, 3, 4, 0x4000],
        &root_back([11, 12, 13, 14]),
        // Suspended: its switch returns the words; its handle was saved; its shadow stack
        // pointer and the marker it left there are intact.
        &[ECHO_BACK, 1, 5, 6, 7, 8, 1, 0x3ff0, 1111],
        &root_back([15, 16, 17, 18]),
    ]);
    assert_eq!(log, expected);
    assert_eq!(
        g.continuations().unwrap(),
        2,
        "the root's and the greenlet's"
    );
}

#[test]
fn shadow_stacks_are_per_greenlet() {
    let mut g = guest();
    let (outcome, log) = run(&mut g, 2);
    outcome.unwrap();
    let expected = cat(&[
        &[ECHO_START, 1, 1, 0, 0, 0, 0x4000],
        &root_back([11, 10, 10, 10]),
        &[ECHO_START, 2, 2, 0, 0, 0, 0x5000],
        &root_back([12, 10, 10, 10]),
        // Each finds its own pointer and marker, although the other ran in between.
        &[ECHO_BACK, 1, 3, 0, 0, 0, 1, 0x3ff0, 1111],
        &root_back([13, 10, 10, 10]),
        &[ECHO_BACK, 2, 4, 0, 0, 0, 2, 0x4ff0, 2222],
        &root_back([14, 10, 10, 10]),
    ]);
    assert_eq!(log, expected);
}

#[test]
fn a_dead_greenlets_continuation_is_restarted_for_a_new_one() {
    let mut g = guest();
    let (outcome, log) = run(&mut g, 3);
    outcome.unwrap();
    let expected = cat(&[
        &[ECHO_START, 1, 1, 2, 3, 4, 0x4000],
        &root_back([11, 12, 13, 14]),
        &[ECHO_BACK, 1, 999, 0, 0, 0, 1, 0x3ff0, 1111],
        // Its last switch: it is dead from here on.
        &[0xF1],
        &root_back([0xF1, 1, 0, 0]),
        // Released and reused: the same handle...
        &[1],
        // ...starts the new entry with the new data, words and shadow stack; the dead body
        // never goes on (no 0xDEAD).
        &[OTHER_START, 9, 11, 12, 13, 14, 0x6000],
        &root_back([9, 0, 0, 0]),
        &root_back([9, 0, 0, 0]),
    ]);
    assert_eq!(log, expected);
    assert_eq!(g.continuations().unwrap(), 2, "no new continuation");
    // Again in the same store: the continuation is reused a second time.
    let (outcome, log2) = run(&mut g, 3);
    outcome.unwrap();
    assert_eq!(log2.len(), log.len());
    // The second run's first greenlet needs a new one (the first run's reused one is still
    // held by its suspended greenlet); the root's is parked and reused.
    assert_eq!(g.continuations().unwrap(), 3);
}

#[test]
fn a_never_started_continuation_is_reused_without_restart() {
    let mut g = guest();
    let (outcome, log) = run(&mut g, 8);
    outcome.unwrap();
    let expected = cat(&[
        &[1],
        &[OTHER_START, 3, 21, 22, 23, 24, 0x5000],
        &root_back([3, 0, 0, 0]),
    ]);
    assert_eq!(log, expected);
    assert_eq!(g.continuations().unwrap(), 2);
}

#[test]
fn greenlets_switch_to_each_other() {
    let mut g = guest();
    let (outcome, log) = run(&mut g, 7);
    outcome.unwrap();
    let expected = cat(&[
        &[1, 2],
        // relay 1 starts and switches to relay 2 (unstarted), which switches to the root.
        &[RELAY_START, 1],
        &[RELAY_START, 2],
        &root_back([77, 1, 2, 0]),
        // relay 1, suspended inside its switch to relay 2, is resumed by the root: relay 2
        // had stored its continuation under handle 1.
        &[RELAY_BACK, 1, 41, 42, 43, 44, 1],
        &root_back([41, 42, 43, 44]),
    ]);
    assert_eq!(log, expected);
}

#[test]
fn switching_to_a_released_handle_traps() {
    let mut g = guest();
    let (outcome, log) = run(&mut g, 4);
    assert_eq!(outcome, Err(Trap::UnreachableCodeReached));
    assert_eq!(log, [4]);
}

#[test]
fn releasing_twice_or_the_root_traps() {
    let mut g = guest();
    let (outcome, log) = run(&mut g, 5);
    assert_eq!(outcome, Err(Trap::UnreachableCodeReached));
    assert_eq!(log, [5]);
    let mut g = guest();
    let (outcome, log) = run(&mut g, 6);
    assert_eq!(outcome, Err(Trap::UnreachableCodeReached));
    assert_eq!(log, [6]);
}

#[test]
fn the_root_continuation_is_parked_between_runs() {
    let mut g = guest();
    for _ in 0..50 {
        let (outcome, _) = run(&mut g, 8);
        outcome.unwrap();
    }
    // One greenlet continuation per run stays suspended (the test never releases it); the
    // root's continuation is made once and parked, not made per run: 1 + 50.
    assert_eq!(g.continuations().unwrap(), 51);
}
