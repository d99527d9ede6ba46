//! The trace recorder and the trace format: event sequences, snapshots, round trips, corrupt
//! input, Chrome export, `GREENLET_TRACE`, and `Greenlet::backtrace`.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use greenlet::trace::{self, EventKind, FORMAT_VERSION, Outcome, ReadErrorKind, State, Trace};
use greenlet::{Greenlet, Tracer, root, step, trace_println};

/// The seed example's program, printing through the trace.
fn seed() {
    let g = Greenlet::builder()
        .name("greenlet 1")
        .spawn(|_| {
            trace_println!("in func1 (greenlet 1)");
            root().switch(());
            trace_println!("exiting func1 (greenlet 1)");
        })
        .unwrap();
    trace_println!("entering greenlet 1");
    g.switch(());
    trace_println!("re-entering greenlet 1");
    g.switch(());
    trace_println!("exiting program");
}

/// Each event as a short line: `kind origin->target` with greenlet names.
fn describe(t: &Trace) -> Vec<String> {
    t.events
        .iter()
        .map(|e| {
            let n = |id: u64| t.greenlet_label(id);
            match &e.kind {
                EventKind::Spawn { id, parent, .. } => {
                    format!("spawn {} parent={}", n(*id), n(parent.unwrap()))
                }
                EventKind::Switch {
                    origin,
                    target,
                    value,
                } => format!("switch {}->{} {value}", n(*origin), n(*target)),
                EventKind::Throw {
                    origin,
                    target,
                    payload,
                } => format!("throw {}->{} {payload}", n(*origin), n(*target)),
                EventKind::Finish { id, outcome } => format!("finish {} {outcome:?}", n(*id)),
                EventKind::ParentChanged { id, old, new } => {
                    format!("parent {} {}->{}", n(*id), n(old.unwrap()), n(new.unwrap()))
                }
                EventKind::Drop { id } => format!("drop {}", n(*id)),
                EventKind::Marker { label, .. } => format!("marker {label}"),
                EventKind::Output { text } => format!("output {}", text.trim_end()),
            }
        })
        .collect()
}

#[test]
fn recording_the_seed_example_gives_exactly_its_events() {
    let t = trace::record(seed);
    assert_eq!(t.version, FORMAT_VERSION);
    assert_eq!(
        describe(&t),
        [
            "spawn greenlet 1 parent=main",
            "output entering greenlet 1",
            "switch main->greenlet 1 ()",
            "output in func1 (greenlet 1)",
            "switch greenlet 1->main ()",
            "output re-entering greenlet 1",
            "switch main->greenlet 1 ()",
            "output exiting func1 (greenlet 1)",
            "finish greenlet 1 Returned { value: \"()\" }",
            "switch greenlet 1->main ()",
            "output exiting program",
            "drop greenlet 1",
        ]
    );
    // Event times never go backwards, and each event names the greenlet running at the time.
    assert!(t.events.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
    let running: Vec<String> = t
        .events
        .iter()
        .map(|e| t.greenlet_label(e.greenlet))
        .collect();
    assert_eq!(
        running[3], "greenlet 1",
        "the body's first print runs in greenlet 1"
    );
    assert_eq!(running[1], "main");
}

#[test]
fn snapshots_show_states_stacks_and_frames() {
    fn parked_in_here() {
        root().switch("parked");
    }
    let t = trace::record(|| {
        let g = Greenlet::builder()
            .name("worker")
            .stack_size(64 * 1024)
            .spawn(|_| parked_in_here())
            .unwrap();
        g.switch(());
        step!("after the first switch");
        g.switch(());
    });
    let worker = t
        .greenlets
        .iter()
        .find(|g| g.name.as_deref() == Some("worker"))
        .unwrap();
    assert_eq!(worker.stack_size, 64 * 1024);
    let state_of = |i: usize, id: u64| {
        t.events[i]
            .snapshot
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .unwrap()
    };
    // Event 0: spawn. The worker is unstarted with a stack and a guard page right below it.
    let s = state_of(0, worker.id);
    assert_eq!(s.state, State::Unstarted);
    let (stack, guard) = (s.stack.unwrap(), s.guard.unwrap());
    assert_eq!(stack.len(), 64 * 1024);
    assert_eq!(guard.end, stack.start);
    assert!(guard.len() >= 4096);
    // Event 1: switch main -> worker: the worker runs, main is suspended with frames.
    assert!(matches!(t.events[1].kind, EventKind::Switch { .. }));
    assert_eq!(state_of(1, worker.id).state, State::Running);
    let main = state_of(1, t.greenlets[0].id);
    assert_eq!(main.state, State::Suspended);
    assert!(main.frames.is_some(), "a suspended root has frames");
    // Event 2: switch worker -> main with "parked": the worker is suspended inside
    // `parked_in_here`, its stack in use, and the value lands on main.
    let EventKind::Switch { value, .. } = &t.events[2].kind else {
        panic!("expected a switch, got {:?}", t.events[2].kind)
    };
    assert_eq!(value, "\"parked\"");
    let w = state_of(2, worker.id);
    assert_eq!(w.state, State::Suspended);
    let sp = w.sp.unwrap();
    assert!(
        stack.start < sp && sp < stack.end,
        "sp {sp:#x} inside {stack:?}"
    );
    assert_eq!(w.stack_used, stack.end - sp);
    assert!(w.stack_high_water >= w.stack_used);
    // The stack pointer is the one the switch saved (as later events read it back), not an
    // estimate taken before the switch.
    assert_eq!(sp % 8, 0, "a saved stack pointer is word-aligned: {sp:#x}");
    assert_eq!(state_of(3, worker.id).sp, Some(sp));
    let frames = &t.backtraces[w.frames.unwrap() as usize];
    assert!(
        frames
            .iter()
            .any(|f| f.function.ends_with("parked_in_here")),
        "frames: {frames:?}"
    );
    // Only the program's own frames: none of the engine's or the runtime's.
    let plumbing = |f: &greenlet::trace::Frame| {
        f.function.starts_with("greenlet::")
            || f.file
                .as_deref()
                .is_some_and(|p| p.contains("engine/src/") || p.contains("/library/std/"))
    };
    assert!(!frames.iter().any(plumbing), "frames: {frames:?}");
    assert_eq!(
        t.events[2]
            .snapshot
            .iter()
            .find(|s| s.id == t.greenlets[0].id)
            .unwrap()
            .last_value,
        Some("\"parked\"".to_owned())
    );
    // The marker names this file and line, and the file's text is in the trace.
    let marker = t
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Marker { file, line, label } => Some((file, *line, label)),
            _ => None,
        })
        .unwrap();
    assert_eq!(marker.2, "after the first switch");
    assert!(marker.0.ends_with("trace.rs"));
    let source = t.source_files.iter().find(|f| &f.path == marker.0).unwrap();
    let line = source.text.lines().nth(marker.1 as usize - 1).unwrap();
    assert!(line.contains("step!(\"after the first switch\")"), "{line}");
}

#[test]
fn high_water_mark_records_the_deepest_use() {
    fn recurse(n: u32) -> u32 {
        let buf = std::hint::black_box([n as u8; 2048]);
        if n == 0 {
            buf[0] as u32
        } else {
            recurse(n - 1) + buf[1] as u32
        }
    }
    let t = trace::record(|| {
        let g = Greenlet::builder()
            .name("deep")
            .spawn(|_| {
                recurse(20); // about 40 KiB, then back up
                root().switch(());
            })
            .unwrap();
        g.switch(());
    });
    let id = t
        .greenlets
        .iter()
        .find(|g| g.name.as_deref() == Some("deep"))
        .unwrap()
        .id;
    let last = t
        .events
        .iter()
        .rev()
        .find_map(|e| {
            e.snapshot
                .iter()
                .find(|s| s.id == id && s.state == State::Suspended)
        })
        .unwrap();
    assert!(last.stack_high_water >= 40 * 1024, "{last:?}");
    assert!(last.stack_used < 16 * 1024, "back near the top: {last:?}");
}

#[test]
fn throws_panics_kills_and_reparenting_are_recorded() {
    let t = trace::record(|| {
        let a = Greenlet::builder()
            .name("a")
            .spawn(|_| {
                root().switch(());
            })
            .unwrap();
        let b = Greenlet::builder()
            .name("b")
            .spawn(|_| -> () { std::panic::panic_any("boom") })
            .unwrap();
        a.switch(());
        a.kill();
        b.set_parent(&root()).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.switch(())));
        assert!(r.is_err());
    });
    let d = describe(&t);
    let expected_tail = [
        "switch main->a ()",
        "switch a->main ()",
        "throw main->a GreenletExit",
        "finish a Killed",
        "switch a->main GreenletExit",
        "parent b main->main",
        "switch main->b ()",
        "finish b Panicked { message: \"boom\" }",
        "throw b->main boom",
    ];
    assert_eq!(&d[2..2 + expected_tail.len()], expected_tail, "{d:#?}");
    assert!(d.ends_with(&["drop b".to_owned(), "drop a".to_owned()]));
    let finish = t
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Finish {
                outcome: o @ Outcome::Panicked { .. },
                ..
            } => Some(o.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        finish,
        Outcome::Panicked {
            message: "boom".into()
        }
    );
}

#[test]
fn write_then_read_gives_an_equal_trace() {
    let t = trace::record(seed);
    let back = Trace::from_json(&t.to_json()).unwrap();
    assert_eq!(back, t);
    let path = std::env::temp_dir().join(format!("greenlet-trace-{}.json", std::process::id()));
    t.write(&path).unwrap();
    let from_file = Trace::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(from_file, t);
}

#[test]
fn corrupt_inputs_give_errors_never_panics() {
    let json = trace::record(seed).to_json();
    // Every truncation is an error (mostly "truncated"), never a panic or a silent success.
    for cut in (0..json.len()).step_by(37) {
        let err = Trace::from_json(&json[..cut]).unwrap_err();
        assert!(
            matches!(err.kind, ReadErrorKind::Truncated | ReadErrorKind::Syntax),
            "cut at {cut}: {err}"
        );
    }
    let err = Trace::from_json(&json[..json.len() / 2]).unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::Truncated);
    assert!(err.line > 1 && err.byte.is_some(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the trace file is truncated at line "),
        "{err}"
    );

    // Garbage in the middle: a syntax error pointing at it.
    let at = json.find("\"events\"").unwrap();
    let mut bad = json.clone();
    bad.replace_range(at..at + 1, "@");
    let err = Trace::from_json(&bad).unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::Syntax);
    assert_eq!(err.byte, Some(at));

    // Another version.
    let other = json.replacen("\"version\": 1", "\"version\": 2", 1);
    let err = Trace::from_json(&other).unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::Version { found: Some(2) });
    assert!(err.to_string().contains("version 2"), "{err}");

    // Not a trace at all.
    let err = Trace::from_json("[1, 2, 3]").unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::Invalid);
    let err = Trace::from_json("{\"hello\": 1}").unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::Version { found: None });

    // Valid JSON, wrong content: a missing field, a wrong type, an unknown greenlet.
    let missing = json.replacen("\"program\"", "\"programme\"", 1);
    let err = Trace::from_json(&missing).unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::Invalid);
    assert!(err.message.contains("programme"), "{err}");
    let mut t = Trace::from_json(&json).unwrap();
    t.greenlets
        .retain(|g| g.name.as_deref() != Some("greenlet 1"));
    let err = Trace::from_json(&t.to_json()).unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::Invalid);
    assert!(err.message.contains("does not list"), "{err}");

    // Unreadable files.
    let err = Trace::read("/nonexistent/trace.json").unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::Io);
    let path = std::env::temp_dir().join(format!("greenlet-binary-{}.json", std::process::id()));
    std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    let err = Trace::read(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(err.kind, ReadErrorKind::Syntax);
}

#[test]
fn chrome_export_has_a_track_per_greenlet_and_a_slice_per_run() {
    let t = trace::record(seed);
    let v: serde_json::Value = serde_json::from_str(&t.to_chrome_json()).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.iter().any(|n| n.starts_with("greenlet 1 (#")));
    let slices = events.iter().filter(|e| e["ph"] == "X").count();
    assert_eq!(slices, 5, "main, g1, main, g1, main");
    let flows = events.iter().filter(|e| e["ph"] == "s").count();
    assert_eq!(flows, 4, "one arrow per switch");
}

#[test]
fn recording_twice_on_one_thread_is_refused() {
    let r = std::panic::catch_unwind(|| {
        trace::record(|| {
            trace::record(|| {});
        })
    });
    assert!(r.is_err());
    assert!(
        !trace::is_recording(),
        "the outer recording stopped while unwinding"
    );
    // And recording works again afterwards.
    assert!(trace::record(seed).events.len() > 5);
}

#[test]
fn backtrace_of_a_suspended_greenlet_is_taken_on_its_stack_without_side_effects() {
    fn waits_in_here() -> greenlet::Value {
        root().switch("waiting")
    }
    let g = Greenlet::new(|_| waits_in_here().take::<i32>() + 1);
    assert!(g.backtrace().is_none(), "unstarted");
    g.switch(());
    // Neither a tracer nor an injected function notices the probe.
    let events = Rc::new(Cell::new(0));
    let seen = events.clone();
    greenlet::settrace(Some(Tracer::new(move |_| seen.set(seen.get() + 1))));
    let injected = Rc::new(Cell::new(false));
    let flag = injected.clone();
    g.inject(move || flag.set(true));
    let frames = g.backtrace().expect("suspended greenlets have frames");
    greenlet::settrace(None);
    assert_eq!(events.get(), 0);
    assert!(!injected.get());
    assert!(
        frames.iter().any(|f| f.function.ends_with("waits_in_here")),
        "{frames:?}"
    );
    assert!(g.is_active() && !g.is_current());
    // The greenlet then resumes normally, with the injected function running first.
    assert_eq!(g.switch(41).take::<i32>(), 42);
    assert!(injected.get());
    assert!(g.backtrace().is_none(), "dead");
    // The running greenlet's own backtrace names this test.
    let here = greenlet::current().backtrace().unwrap();
    assert!(
        here.iter()
            .any(|f| f.function.contains("backtrace_of_a_suspended_greenlet")),
        "{here:?}"
    );
}

#[test]
fn the_root_can_be_probed_from_a_greenlet() {
    fn root_waits_here(g: &Greenlet) {
        g.switch(());
    }
    let out: Rc<RefCell<Vec<String>>> = Rc::default();
    let sink = out.clone();
    let g = Greenlet::new(move |_| {
        let frames = root().backtrace().unwrap();
        sink.borrow_mut()
            .extend(frames.into_iter().map(|f| f.function));
    });
    root_waits_here(&g);
    assert!(
        out.borrow().iter().any(|f| f.ends_with("root_waits_here")),
        "{:?}",
        out.borrow()
    );
}

#[test]
fn greenlet_trace_env_var_writes_the_trace_at_exit() {
    if std::env::var_os("GREENLET_TRACE_CHILD").is_some() {
        seed();
        return;
    }
    let path = std::env::temp_dir().join(format!("greenlet-env-{}.json", std::process::id()));
    let status = common::self_command()
        .args([
            "--exact",
            "greenlet_trace_env_var_writes_the_trace_at_exit",
            "--test-threads=1",
        ])
        .env("GREENLET_TRACE_CHILD", "1")
        .env("GREENLET_TRACE", &path)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let t = Trace::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let d = describe(&t);
    assert!(
        d.contains(&"switch main->greenlet 1 ()".to_owned()),
        "{d:#?}"
    );
    assert!(d.contains(&"drop greenlet 1".to_owned()), "{d:#?}");
    assert_eq!(
        d.iter().filter(|l| l.starts_with("output ")).count(),
        5,
        "{d:#?}"
    );
}
