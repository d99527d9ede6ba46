// Nor can `current()` or `root()` escape through a channel: another thread's root would be
// switched to from the wrong stack.
fn main() {
    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(greenlet::root()).unwrap();
    std::thread::spawn(move || {
        let root = rx.recv().unwrap();
        root.switch(());
    });
}
