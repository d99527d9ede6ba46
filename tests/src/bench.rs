//! The switch benchmark's workload, shared by the native and the wasm measurement: the root
//! and one greenlet switch back and forth, `rounds` round trips (two switches each).

use greenlet::{Greenlet, root};

/// Runs `rounds` round trips between the root and a greenlet; returns the greenlet's count.
pub fn pingpong(rounds: u32) -> u32 {
    let g = Greenlet::new(move |_| {
        let mut n = 0_u32;
        loop {
            n = n.wrapping_add(1);
            root().switch(n);
        }
    });
    let mut last = 0_u32;
    for _ in 0..rounds {
        last = g.switch(()).take::<u32>();
    }
    // The greenlet is suspended forever: dropping it would kill it, which needs unwinding
    // (not available in every wasm build). Its memory is the benchmark's to leak.
    std::mem::forget(g);
    last
}
