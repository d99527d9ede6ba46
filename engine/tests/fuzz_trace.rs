//! Fuzzing the trace reader with proptest: arbitrary bytes, JSON-shaped noise, and real traces
//! mutated byte by byte and node by node. `Trace::from_json` must never panic: it returns a
//! trace or a `ReadError`, within a time bound. A trace it accepts must also survive what
//! consumers do with it (writing it back and reading it again gives the same trace, and the
//! Chrome export works).
//!
//! `GREENLET_FUZZ_CASES` overrides the number of cases per strategy (the valgrind CI step does
//! not run this file; `cargo test` runs the default).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use greenlet::trace::{self, ReadErrorKind, Trace};
use greenlet::{Greenlet, root, step};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value as Json;

const DEFAULT_CASES: u32 = 1_000;
/// One read of a few KiB takes well under a millisecond; this only catches runaway inputs
/// (quadratic error positions, deep recursion) without being flaky on a loaded machine.
const TIME_LIMIT: Duration = Duration::from_secs(2);

fn cases() -> u32 {
    let n = std::env::var("GREENLET_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    // The reader has no architecture-specific code: under qemu (the aarch64 CI step) a tenth
    // is enough to show it behaves the same, and keeps that step short.
    if cfg!(target_arch = "x86_64") {
        n
    } else {
        n / 10
    }
}

/// Reads attempted and traces accepted.
#[derive(Default)]
struct Counts {
    reads: Cell<u64>,
    accepted: Cell<u64>,
}

/// A real trace with every kind of event: spawns, switches, a throw caught, a panic, a kill,
/// a re-parenting, markers, output and drops.
fn recorded() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        std::thread::spawn(|| {
            trace::record_as("fuzz", || {
                let worker = Greenlet::builder()
                    .name("worker")
                    .spawn(|v| {
                        step!("worker got {v:?}");
                        let r = catch_unwind(AssertUnwindSafe(|| root().switch("paused")));
                        greenlet::trace_println!("caught: {}", r.is_err());
                        root().switch(2_u32);
                        "done"
                    })
                    .unwrap();
                worker.switch(1_i32);
                worker.throw("boom");
                let failing = Greenlet::builder()
                    .name("failing")
                    // resume_unwind: the same &str payload, without the hook's output.
                    .spawn(|_| -> () { resume_unwind(Box::new("failed on purpose")) })
                    .unwrap();
                let _ = catch_unwind(AssertUnwindSafe(|| failing.switch(())));
                let other = Greenlet::new(|v| v);
                worker.set_parent(&other).unwrap();
                worker.kill();
                drop((worker, failing, other));
            })
            .to_json()
        })
        .join()
        .unwrap()
    })
}

/// Reads `text`; fails the case on a panic, a slow read, or an accepted trace that does not
/// round-trip.
fn read_checked(text: &str, counts: &Counts) -> Result<(), TestCaseError> {
    counts.reads.set(counts.reads.get() + 1);
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| Trace::from_json(text)));
    let took = start.elapsed();
    let result = result.map_err(|_| TestCaseError::fail("Trace::from_json panicked"))?;
    prop_assert!(took < TIME_LIMIT, "reading took {took:?}");
    match result {
        Err(e) => {
            // The error must be printable, and a position must lie inside the text.
            let shown = e.to_string();
            prop_assert!(!shown.is_empty());
            if let Some(b) = e.byte {
                prop_assert!(b <= text.len(), "byte {b} past the end ({})", text.len());
            }
        }
        Ok(t) => {
            counts.accepted.set(counts.accepted.get() + 1);
            let again = catch_unwind(AssertUnwindSafe(|| {
                let _ = t.to_chrome_json();
                Trace::from_json(&t.to_json())
            }))
            .map_err(|_| TestCaseError::fail("an accepted trace made a consumer panic"))?;
            prop_assert_eq!(
                again.as_ref(),
                Ok(&t),
                "write then read gives the same trace"
            );
        }
    }
    Ok(())
}

fn run(name: &str, cases: u32, strategy: impl Strategy<Value = String>, counts: &Counts) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, |text| read_checked(&text, counts)) {
        panic!("{name}: {e}");
    }
}

fn report(what: &str, counts: &Counts) {
    eprintln!(
        "fuzz_trace: {what}: {} reads, {} accepted",
        counts.reads.get(),
        counts.accepted.get()
    );
}

#[test]
fn arbitrary_bytes_give_errors_never_panics() {
    let counts = Counts::default();
    run(
        "arbitrary bytes",
        cases(),
        vec(any::<u8>(), 0..512).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        &counts,
    );
    // Also through `Trace::read`, which sees the raw bytes (not always UTF-8).
    let path = std::env::temp_dir().join(format!("greenlet-fuzz-{}.json", std::process::id()));
    let mut runner = TestRunner::new(Config {
        cases: cases() / 4,
        failure_persistence: None,
        ..Config::default()
    });
    let files = runner.run(&vec(any::<u8>(), 0..256), |bytes| {
        counts.reads.set(counts.reads.get() + 1);
        std::fs::write(&path, &bytes).unwrap();
        let r = catch_unwind(|| Trace::read(&path))
            .map_err(|_| TestCaseError::fail("Trace::read panicked"))?;
        if std::str::from_utf8(&bytes).is_err() {
            prop_assert_eq!(r.unwrap_err().kind, ReadErrorKind::Syntax);
        }
        Ok(())
    });
    let _ = std::fs::remove_file(&path);
    files.unwrap();
    report("arbitrary bytes", &counts);
}

/// Tokens for [`json_noise`]: JSON punctuation and literals, and the trace format's own keys.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "1",
    "0",
    "-1",
    "1e999",
    "\"\\ud800\"",
    "\"\"",
    "\"version\"",
    "\"program\"",
    "\"source_files\"",
    "\"greenlets\"",
    "\"backtraces\"",
    "\"events\"",
    "\"kind\"",
    "\"type\"",
    "\"switch\"",
    "\"snapshot\"",
    "\"id\"",
    "\"greenlet\"",
    "\"root\"",
    "\"stack_size\"",
    "\"name\"",
    "\"time_ns\"",
];

/// Noise made of JSON tokens and the trace format's own keys, which gets past the tokenizer far
/// more often than random bytes. (Picked by index: a `prop_oneof!` of string strategies is
/// about a hundred times slower to generate in the dev profile.)
fn json_noise() -> impl Strategy<Value = String> {
    vec((0..TOKENS.len() + 1, any::<i64>()), 0..80).prop_map(|picks| {
        picks
            .into_iter()
            .map(|(i, n)| {
                TOKENS
                    .get(i)
                    .map_or_else(|| n.to_string(), |t| (*t).to_owned())
            })
            .collect()
    })
}

#[test]
fn json_shaped_noise_gives_errors_never_panics() {
    let counts = Counts::default();
    run(
        "JSON noise",
        cases(),
        json_noise().prop_map(|s| format!("{{\"version\": 1, {s}")),
        &counts,
    );
    run("JSON noise", cases(), json_noise(), &counts);
    report("JSON-shaped noise", &counts);
}

/// A byte-level change to a text.
#[derive(Debug, Clone)]
enum Edit {
    Flip {
        at: usize,
        bit: u8,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Truncate {
        at: usize,
    },
    Duplicate {
        at: usize,
        len: usize,
    },
    /// Replaces the `nth` number in the text with another.
    Number {
        nth: usize,
        with: String,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    let number = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("-0".to_owned()),
        Just("1.5".to_owned()),
        Just("1e400".to_owned()),
        (0..8u64).prop_map(|n| n.to_string()),
    ];
    prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
        (any::<usize>(), 1..256usize).prop_map(|(at, len)| Edit::Duplicate { at, len }),
        (any::<usize>(), number).prop_map(|(nth, with)| Edit::Number { nth, with }),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        let n = b.len().max(1);
        match e {
            Edit::Flip { at, bit } => {
                if !b.is_empty() {
                    b[at % n] ^= 1 << bit;
                }
            }
            Edit::Insert { at, byte } => b.insert(at % (b.len() + 1), *byte),
            Edit::Delete { at, len } => {
                let s = at % n;
                let e = (s + len).min(b.len());
                b.drain(s.min(b.len())..e);
            }
            Edit::Truncate { at } => b.truncate(at % n),
            Edit::Duplicate { at, len } => {
                let s = (at % n).min(b.len());
                let e = (s + len).min(b.len());
                let copy = b[s..e].to_vec();
                b.splice(e..e, copy);
            }
            Edit::Number { nth, with } => {
                let text = String::from_utf8_lossy(&b).into_owned();
                let starts: Vec<usize> = text
                    .char_indices()
                    .filter(|&(i, c)| {
                        c.is_ascii_digit()
                            && !text[..i].ends_with(|p: char| p.is_ascii_digit() || p == '.')
                    })
                    .map(|(i, _)| i)
                    .collect();
                if starts.is_empty() {
                    continue;
                }
                let s = starts[nth % starts.len()];
                let e = text[s..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(text.len(), |k| s + k);
                b = format!("{}{with}{}", &text[..s], &text[e..]).into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn mutated_real_traces_give_errors_never_panics() {
    let json = recorded();
    assert!(Trace::from_json(json).is_ok(), "the unmutated trace reads");
    let counts = Counts::default();
    run(
        "mutated trace",
        cases(),
        vec(edit(), 1..4).prop_map(move |edits| apply(json, &edits)),
        &counts,
    );
    report("byte-mutated traces", &counts);
}

/// A change to one node of the parsed trace: valid JSON, possibly an invalid trace.
#[derive(Debug, Clone)]
enum NodeEdit {
    Replace(Json),
    Remove,
    Duplicate,
}

fn node_edit() -> impl Strategy<Value = NodeEdit> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<u64>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        (0..6u64).prop_map(Json::from),
        any::<f64>().prop_map(Json::from),
        (0..4usize).prop_map(|n| Json::String("x_".repeat(n))),
        Just(Json::Array(Vec::new())),
        Just(Json::Object(Default::default())),
    ];
    prop_oneof![
        4 => leaf.prop_map(NodeEdit::Replace),
        2 => Just(NodeEdit::Remove),
        1 => Just(NodeEdit::Duplicate),
    ]
}

/// Every node of `v`, in a fixed order, as JSON pointers.
fn pointers(v: &Json, at: String, out: &mut Vec<String>) {
    match v {
        Json::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        Json::Object(o) => {
            for (k, x) in o {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
    out.push(at);
}

fn mutate_node(v: &Json, nth: usize, e: &NodeEdit) -> Json {
    let mut v = v.clone();
    let mut all = Vec::new();
    pointers(&v, String::new(), &mut all);
    let target = &all[nth % all.len()];
    if target.is_empty() {
        if let NodeEdit::Replace(new) = e {
            return new.clone();
        }
        return v;
    }
    let (parent_ptr, key) = target.rsplit_once('/').unwrap();
    let key = key.replace("~1", "/").replace("~0", "~");
    let parent = v.pointer_mut(parent_ptr).unwrap();
    match (parent, e) {
        (Json::Object(o), NodeEdit::Replace(new)) => {
            o.insert(key, new.clone());
        }
        (Json::Object(o), NodeEdit::Remove) => {
            o.remove(&key);
        }
        (Json::Object(o), NodeEdit::Duplicate) => {
            let copy = o[&key].clone();
            o.insert(format!("{key}_copy"), copy);
        }
        (Json::Array(a), edit) => {
            let i: usize = key.parse().unwrap();
            match edit {
                NodeEdit::Replace(new) => a[i] = new.clone(),
                NodeEdit::Remove => {
                    a.remove(i);
                }
                NodeEdit::Duplicate => {
                    let copy = a[i].clone();
                    a.insert(i, copy);
                }
            }
        }
        _ => unreachable!("a parent is an array or an object"),
    }
    v
}

#[test]
fn structurally_mutated_traces_give_errors_never_panics() {
    let parsed: Json = serde_json::from_str(recorded()).unwrap();
    let counts = Counts::default();
    // Half as many: each case prints and reads a whole 70 KB trace.
    run(
        "node-mutated trace",
        cases() / 2,
        vec((any::<usize>(), node_edit()), 1..4).prop_map(move |edits| {
            let mut v = parsed.clone();
            for (nth, e) in &edits {
                v = mutate_node(&v, *nth, e);
            }
            serde_json::to_string_pretty(&v).unwrap()
        }),
        &counts,
    );
    report("node-mutated traces", &counts);
}
