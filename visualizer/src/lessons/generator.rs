//! A generator: the body yields values one at a time, and whoever asks for the next value
//! becomes the generator's parent, so each yielded value goes back to the one who asked.
//! Greenlet bodies here are functions of their own (`#[inline(never)]`), so the stack view can
//! name them even in an optimised build.

use greenlet::{Greenlet, current, step, trace_println};

pub fn run() {
    let fibonacci = Greenlet::builder()
        .name("fibonacci")
        .spawn(|_| fibonacci())
        .expect("spawn fibonacci");
    let consumer = Greenlet::builder()
        .name("consumer")
        .spawn(move |_| consume(&fibonacci))
        .expect("spawn consumer");

    step!("main starts the consumer");
    let outcome: &str = consumer.switch(()).take();
    trace_println!("main: the consumer says {outcome:?}");

    // A second generator, abandoned half-way: dropping its last handle kills it.
    let countdown = Greenlet::builder()
        .name("countdown")
        .spawn(|_| countdown())
        .expect("spawn countdown");
    let first = next(&countdown);
    trace_println!("main took {first:?} from countdown and walks away");
    step!("dropping the suspended countdown kills it: its stack unwinds");
    drop(countdown);
}

/// The generator's body: the first five Fibonacci numbers.
#[inline(never)]
fn fibonacci() -> Option<u64> {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..5 {
        yield_value(a);
        (a, b) = (b, a + b);
    }
    step!("the generator is exhausted: returning None ends it");
    None
}

/// The consumer's body: pulls values until the generator is done.
#[inline(never)]
fn consume(generator: &Greenlet) -> &'static str {
    step!("the consumer pulls values until the generator is done");
    while let Some(v) = next(generator) {
        trace_println!("consumer got {v}");
    }
    step!("the consumer has seen every value");
    "consumed"
}

/// The second generator's body: 3, 2, 1.
#[inline(never)]
fn countdown() -> Option<u64> {
    for i in (1..=3u64).rev() {
        yield_value(i);
    }
    None
}

/// Hands `value` to the generator's parent (whoever called `next`) and waits to be asked again.
#[inline(never)]
fn yield_value(value: u64) {
    let asker = current().parent().expect("a generator always has a parent");
    step!("the generator yields {value} to its parent");
    asker.switch(Some(value));
}

/// Asks the generator for its next value: become its parent, then switch to it.
#[inline(never)]
fn next(generator: &Greenlet) -> Option<u64> {
    if generator.is_dead() {
        return None;
    }
    step!("make the asker the generator's parent, then switch to it");
    generator.set_parent(&current()).expect("no cycle");
    generator.switch(()).take()
}

/// Puts this file in the trace, so the source pane shows exactly this code.
pub fn register_source() {
    greenlet::trace::add_source(file!(), include_str!("generator.rs"));
}
