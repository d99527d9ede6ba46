//! A generator built on greenlets: the body calls `yield_` as often as it likes, and the
//! consumer iterates. Each `next` re-parents the generator to whoever asks, so values always
//! go back to the caller (the same trick as the generator in Python greenlet's docs).

use std::marker::PhantomData;

use greenlet::{Greenlet, current};

/// Iterates over the values a body hands to `yield_`.
pub struct Generator<T> {
    g: Greenlet,
    _t: PhantomData<T>,
}

impl<T: 'static> Generator<T> {
    pub fn new(mut body: impl FnMut(&dyn Fn(T)) + 'static) -> Self {
        let g = Greenlet::new(move |_| {
            let yield_ = |v: T| {
                // Hand the value to whoever called `next` (our parent) and wait for the next
                // request.
                let parent = current().parent().expect("a generator always has a parent");
                parent.switch(Some(v));
            };
            body(&yield_);
            None::<T> // exhausted
        });
        Generator { g, _t: PhantomData }
    }
}

impl<T: 'static> Iterator for Generator<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.g.is_dead() {
            return None;
        }
        self.g
            .set_parent(&current())
            .expect("the consumer is never a child of the generator");
        self.g.switch(()).take::<Option<T>>()
    }
}

fn main() {
    let squares = Generator::new(|yield_| {
        for i in 0..5u64 {
            yield_(i * i);
        }
    });
    let v: Vec<u64> = squares.collect();
    println!("squares: {v:?}");
    assert_eq!(v, [0, 1, 4, 9, 16]);

    // Generators compose like any iterator, and can be dropped half-way: the suspended
    // greenlet is killed and its stack unwound.
    let words = Generator::new(|yield_| {
        for w in "the quick brown fox jumps".split(' ') {
            yield_(w.to_uppercase());
        }
    });
    let first_two: Vec<String> = words.take(2).collect();
    println!("first two words: {first_two:?}");
}
