// A greenlet handle cannot be moved to another thread: its greenlet's stack, parent chain and
// reference counts belong to the thread that created it.
use greenlet::Greenlet;

fn main() {
    let g = Greenlet::new(|v| v);
    std::thread::spawn(move || {
        g.switch(());
    });
}
