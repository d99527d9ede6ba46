//! The seed project's example, with greenlets: a greenlet prints, switches back to the root,
//! and is resumed once more to finish. Output (checked by `cargo xtask ci`):
//!
//! ```text
//! entering greenlet 1
//! in func1 (greenlet 1)
//! re-entering greenlet 1
//! exiting func1 (greenlet 1)
//! exiting program
//! ```

use greenlet::{Greenlet, root};

fn main() {
    let g = Greenlet::builder()
        .name("greenlet 1")
        .spawn(|_| {
            println!("in func1 (greenlet 1)");
            root().switch(());
            println!("exiting func1 (greenlet 1)");
        })
        .expect("spawn greenlet 1");

    println!("entering greenlet 1");
    g.switch(());

    println!("re-entering greenlet 1");
    g.switch(());

    println!("exiting program");
}
