// A builder holds a handle to the parent it was given, so it stays on its thread too.
use greenlet::Greenlet;

fn main() {
    let b = Greenlet::builder().parent(&greenlet::current());
    std::thread::spawn(move || b.spawn(|v| v));
}
