//! Switch and spawn costs, greenlet side by side with corosensei in the same run.
//!
//! - `switch/round_trip`: root → child → root (two switches). Halve for ns per switch.
//! - `spawn/*`: create + first switch + finish + drop, with the thread's stack pool (greenlet),
//!   a stack reused by hand (corosensei), and without either; `*capturing*` with a closure that
//!   captures 32 bytes (a handle or `Rc` and three words) rather than nothing.
//!
//! Run with `cargo bench -p greenlet --bench switch`.

use std::hint::black_box;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use criterion::{Criterion, criterion_group, criterion_main};
use greenlet::{Greenlet, root};

fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");

    group.bench_function("round_trip/greenlet", |b| {
        let r = root();
        let g = Greenlet::new(move |_| {
            loop {
                r.switch(());
            }
        });
        b.iter(|| g.switch(()));
    });

    group.bench_function("round_trip/greenlet_usize", |b| {
        let r = root();
        let g = Greenlet::new(move |v| {
            let mut n: usize = v.take();
            loop {
                n = r.switch(n + 1).take();
            }
        });
        let mut n = 0usize;
        b.iter(|| {
            n = g.switch(black_box(n)).take();
        });
    });

    group.bench_function("round_trip/corosensei", |b| {
        let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| {
            loop {
                y.suspend(());
            }
        });
        b.iter(|| co.resume(()));
    });

    group.bench_function("round_trip/corosensei_usize", |b| {
        let mut co =
            Coroutine::<usize, usize, ()>::new(|y: &Yielder<usize, usize>, mut n: usize| {
                loop {
                    n = y.suspend(n + 1);
                }
            });
        let mut n = 0usize;
        b.iter(|| {
            n = match co.resume(black_box(n)) {
                CoroutineResult::Yield(v) => v,
                CoroutineResult::Return(()) => unreachable!(),
            };
        });
    });

    group.finish();
}

/// Stack sizes used by the pool-bypassing spawn bench and nowhere else, so that the pool holds
/// no stack of `BYPASS_STACK` bytes.
const BYPASS_STACK: usize = 20 << 10;
const BYPASS_FILLER_STACK: usize = 24 << 10;

fn spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn");

    group.bench_function("pooled/greenlet", |b| {
        b.iter(|| {
            let g = Greenlet::new(|v| v);
            black_box(g.switch(1usize));
        });
    });

    // The same past the per-thread hot pool: the pool is filled with stacks of another size
    // first, so each spawn takes a free slot of a chunk (guard already installed, its pages
    // kept within the thread's dirty budget) and each death gives it back to the chunk. A
    // never-used stack (guard installed, pages faulted in) costs more: `figures density`
    // reports that per greenlet, for corosensei too.
    group.bench_function("bypassed_pool/greenlet", |b| {
        let fillers: Vec<Greenlet> = (0..64)
            .map(|_| {
                Greenlet::builder()
                    .stack_size(BYPASS_FILLER_STACK)
                    .spawn(|v| v)
                    .unwrap()
            })
            .collect();
        for f in &fillers {
            f.switch(());
        }
        b.iter(|| {
            let g = Greenlet::builder()
                .stack_size(BYPASS_STACK)
                .spawn(|v| v)
                .unwrap();
            black_box(g.switch(1usize));
        });
    });

    group.bench_function("reused_stack/corosensei", |b| {
        let mut stack = Some(DefaultStack::new(1 << 20).unwrap());
        b.iter(|| {
            let mut co =
                Coroutine::with_stack(stack.take().unwrap(), |_: &Yielder<usize, ()>, v: usize| v);
            black_box(co.resume(1));
            stack = Some(co.into_stack());
        });
    });

    // A closure that captures 32 bytes (a handle and three words), as most real bodies
    // capture something: greenlet keeps it in the control block, corosensei on its stack.
    group.bench_function("pooled_capturing/greenlet", |b| {
        let r = greenlet::root();
        let words = [1usize, 2, 3];
        b.iter(|| {
            let (r, words) = (r.clone(), black_box(words));
            let g = Greenlet::new(move |v| {
                let _ = &r;
                v.take::<usize>() + words[0] + words[1] + words[2]
            });
            black_box(g.switch(1usize));
        });
    });

    group.bench_function("reused_stack_capturing/corosensei", |b| {
        let mut stack = Some(DefaultStack::new(1 << 20).unwrap());
        let r = std::rc::Rc::new(());
        let words = [1usize, 2, 3];
        b.iter(|| {
            let (r, words) = (r.clone(), black_box(words));
            let mut co = Coroutine::with_stack(
                stack.take().unwrap(),
                move |_: &Yielder<usize, ()>, v: usize| {
                    let _ = &r;
                    v + words[0] + words[1] + words[2]
                },
            );
            black_box(co.resume(1));
            stack = Some(co.into_stack());
        });
    });

    group.bench_function("fresh_stack/corosensei", |b| {
        b.iter(|| {
            let mut co = Coroutine::new(|_: &Yielder<usize, ()>, v: usize| v);
            black_box(co.resume(1));
        });
    });

    group.finish();
}

criterion_group!(benches, switch, spawn);
criterion_main!(benches);
