//! Stacks carved side by side from shared mappings: each keeps a working guard page, and many
//! suspended greenlets cost few memory mappings.
//!
//! The overflow tests re-execute this test binary with `--exact <its own name>` and
//! `GREENLET_TEST_CHILD=1` (see `engine/tests/overflow.rs` for the pattern): the scenario
//! ends the process, and the parent checks how it died and what it printed. The density test
//! runs in a child too, so that its mapping count and memory are its own.

mod common;

use common::{ChildRun, deep_frames, in_child, report, run_child};
use greenlet::{Greenlet, MIN_STACK_SIZE, Value, root};

/// `libc::SIGABRT` (6 on Linux); `libc` is not a dev-dependency.
const SIGABRT: i32 = 6;

/// A greenlet named `name` with a `MIN_STACK_SIZE` stack. Its first switch returns the address
/// of a local of its body (the same frame position in every such greenlet, so two addresses
/// differ by exactly the distance between the two stacks); after that, every depth switched to
/// it runs `deep_frames(depth)` and the result comes back.
fn small_greenlet(name: &str) -> (Greenlet, usize) {
    let g = Greenlet::builder()
        .name(name)
        .stack_size(MIN_STACK_SIZE)
        .spawn(|_: Value| {
            let local = 0u8;
            let at = std::hint::black_box(&local) as *const u8 as usize;
            let mut depth = root().switch(at).take::<usize>();
            loop {
                let r = deep_frames(depth);
                depth = root().switch(r).take::<usize>();
            }
        })
        .expect("spawn a small greenlet");
    let at = g.switch(()).take::<usize>();
    (g, at)
}

/// Checks the child died of an overflow reported for the greenlet called `deep`.
fn assert_deep_overflowed(run: &ChildRun) {
    let id = run.number("deep-id");
    let expected = format!(
        "greenlet 'deep' (#{id}) has overflowed its stack ({} KiB)",
        MIN_STACK_SIZE >> 10
    );
    assert!(
        run.stderr.contains(&expected),
        "stderr lacks {expected:?}\n{}",
        run.explain()
    );
    assert_eq!(run.signal, Some(SIGABRT), "{}", run.explain());
    assert!(
        run.reported("survived").is_none(),
        "the overflow went unnoticed\n{}",
        run.explain()
    );
}

/// Checks that the stack of `deep` sits right above the stack of `below`: the two locals are
/// exactly one usable stack plus a guard apart, the guard being a page (4, 16 or 64 KiB).
fn assert_adjacent(run: &ChildRun) {
    let below = run.number("below-local");
    let deep = run.number("deep-local");
    assert!(deep > below, "{}", run.explain());
    let guard = deep - below - MIN_STACK_SIZE;
    assert!(
        guard.is_power_of_two() && (4096..=65536).contains(&guard),
        "expected a guard page between the stacks, found {guard} bytes\n{}",
        run.explain()
    );
}

/// The scenario of the two carved-stack tests: `below` suspended in the lower neighbour slot,
/// `deep` carved right above it overflows.
fn overflow_above_a_live_neighbour() {
    let (below, below_local) = small_greenlet("below");
    report("below-local", below_local);
    let (deep, deep_local) = small_greenlet("deep");
    report("deep-id", deep.id());
    report("deep-local", deep_local);
    report("madvise", greenlet::guard_uses_madvise() == Some(true));
    // Two 10 KiB frames do not fit in 16 KiB: the second one runs into the guard, which is
    // all that separates it from `below`'s live frames.
    deep.switch(usize::MAX);
    report("survived", "overflow was not detected");
    drop(below);
}

#[test]
fn overflow_of_a_carved_stack_above_a_live_neighbour_hits_its_guard() {
    if in_child() {
        overflow_above_a_live_neighbour();
        return;
    }
    let run = run_child(
        "overflow_of_a_carved_stack_above_a_live_neighbour_hits_its_guard",
        &[],
    );
    assert_adjacent(&run);
    assert_deep_overflowed(&run);
}

#[test]
fn mprotect_fallback_guards_carved_stacks_too() {
    if in_child() {
        overflow_above_a_live_neighbour();
        return;
    }
    let run = run_child(
        "mprotect_fallback_guards_carved_stacks_too",
        &[("GREENLET_GUARD", "mprotect")],
    );
    assert_eq!(run.reported("madvise"), Some("false"), "{}", run.explain());
    assert_adjacent(&run);
    assert_deep_overflowed(&run);
}

#[test]
fn overflow_of_a_stack_reused_from_its_chunk_hits_its_guard() {
    if in_child() {
        fill_hot_pool_with_another_size();
        let (below, below_local) = small_greenlet("below");
        report("below-local", below_local);
        // `first` takes the slot above `below`, dies, and its slot goes back to the chunk...
        let (first, first_local) = small_greenlet("first");
        first.kill();
        assert!(first.is_dead());
        // ...where `deep` gets it again, with `below` still suspended under it.
        let (deep, deep_local) = small_greenlet("deep");
        report("same-slot", first_local == deep_local);
        report("deep-id", deep.id());
        report("deep-local", deep_local);
        deep.switch(usize::MAX);
        report("survived", "overflow was not detected");
        drop(below);
        return;
    }
    let run = run_child(
        "overflow_of_a_stack_reused_from_its_chunk_hits_its_guard",
        &[],
    );
    assert_eq!(
        run.reported("same-slot"),
        Some("true"),
        "the freed slot should be handed out again\n{}",
        run.explain()
    );
    assert_adjacent(&run);
    assert_deep_overflowed(&run);
    assert!(!run.stderr.contains("'first'"), "{}", run.explain());
}

#[test]
fn overflow_of_a_stack_reused_after_its_chunk_emptied_hits_its_guard() {
    if in_child() {
        fill_hot_pool_with_another_size();
        // Three stacks side by side; when the last of them dies, the chunk has no stack left
        // and is kept for reuse (its slots still hold their pages and guards).
        let three: Vec<(Greenlet, usize)> =
            (0..3).map(|i| small_greenlet(&format!("g{i}"))).collect();
        let lowest = three[0].1;
        for (g, _) in three.iter().rev() {
            g.kill();
        }
        // Freed highest first, so the lowest two slots come back first, in order.
        let (below, below_local) = small_greenlet("below");
        report("below-local", below_local);
        report("same-slots", below_local == lowest);
        let (deep, deep_local) = small_greenlet("deep");
        report("deep-id", deep.id());
        report("deep-local", deep_local);
        deep.switch(usize::MAX);
        report("survived", "overflow was not detected");
        drop((below, three));
        return;
    }
    let run = run_child(
        "overflow_of_a_stack_reused_after_its_chunk_emptied_hits_its_guard",
        &[],
    );
    assert_eq!(
        run.reported("same-slots"),
        Some("true"),
        "{}",
        run.explain()
    );
    assert_adjacent(&run);
    assert_deep_overflowed(&run);
}

/// Fills the thread's hot pool (64 stacks that keep their pages) with stacks of another size:
/// from then on a freed small stack goes back to its chunk instead of the pool.
fn fill_hot_pool_with_another_size() {
    let fillers: Vec<Greenlet> = (0..64)
        .map(|_| {
            Greenlet::builder()
                .stack_size(2 * MIN_STACK_SIZE)
                .spawn(|v: Value| v)
                .unwrap()
        })
        .collect();
    for f in &fillers {
        f.switch(());
        assert!(f.is_dead());
    }
}

/// Lines of `/proc/self/maps`: one per memory mapping (VMA) of this process.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .count()
}

/// `VmRSS` of this process in KiB.
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

const DENSITY_N: usize = 100_000;

#[test]
fn a_hundred_thousand_suspended_greenlets_take_few_mappings() {
    if in_child() {
        let (probe, _) = small_greenlet("probe");
        drop(probe);
        if greenlet::guard_uses_madvise() != Some(true) {
            report("skipped", "guard pages fall back to mprotect here");
            return;
        }
        let maps_before = mappings();
        let rss_before = rss_kib();
        let greenlets: Vec<Greenlet> = (0..DENSITY_N)
            .map(|i| {
                let g = Greenlet::builder()
                    .stack_size(MIN_STACK_SIZE)
                    .spawn(move |_: Value| {
                        root().switch(());
                        i
                    })
                    .unwrap();
                g.switch(());
                g
            })
            .collect();
        report("maps-added", mappings() - maps_before);
        report("rss-added-kib", rss_kib() - rss_before);
        // Finish them all: each returns its index, and its stack goes back for reuse.
        for (i, g) in greenlets.iter().enumerate() {
            assert_eq!(g.switch(()).take::<usize>(), i);
        }
        report("finished", greenlets.iter().all(Greenlet::is_dead));
        return;
    }
    let run = run_child(
        "a_hundred_thousand_suspended_greenlets_take_few_mappings",
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    if let Some(why) = run.reported("skipped") {
        eprintln!("skipped: {why} (each stack then costs two mappings)");
        return;
    }
    let added = run.number("maps-added");
    let rss = run.number("rss-added-kib");
    eprintln!(
        "{DENSITY_N} suspended greenlets: {added} more mappings, {:.2} KiB of RSS each",
        rss as f64 / DENSITY_N as f64
    );
    // One chunk holds 1024 small stacks: about 100 chunks, fewer when the kernel merges them.
    assert!(
        added <= DENSITY_N / 500,
        "{added} mappings for {DENSITY_N} stacks\n{}",
        run.explain()
    );
    assert_eq!(run.reported("finished"), Some("true"), "{}", run.explain());
}

#[test]
fn mprotect_fallback_costs_two_mappings_per_stack() {
    const N: usize = 1000;
    if in_child() {
        let (probe, _) = small_greenlet("probe");
        let maps_before = mappings();
        let greenlets: Vec<(Greenlet, usize)> = (0..N).map(|_| small_greenlet("g")).collect();
        report("maps-added", mappings() - maps_before);
        report("madvise", greenlet::guard_uses_madvise() == Some(true));
        drop((probe, greenlets));
        return;
    }
    let run = run_child(
        "mprotect_fallback_costs_two_mappings_per_stack",
        &[("GREENLET_GUARD", "mprotect")],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(run.reported("madvise"), Some("false"), "{}", run.explain());
    // Each guard splits its chunk: [guard][usable] is two mappings, which is why the default
    // vm.max_map_count (65530) stops the fallback near 32,700 live stacks.
    let added = run.number("maps-added");
    assert!(
        (2 * N - 2..=2 * N + 2).contains(&added),
        "{added} mappings for {N} stacks\n{}",
        run.explain()
    );
}
