// A greenlet handle cannot be shared with another thread either: even `is_dead` reads state
// that only the owning thread may touch.
use greenlet::Greenlet;

fn main() {
    let g = Greenlet::new(|v| v);
    std::thread::scope(|s| {
        s.spawn(|| g.is_dead());
    });
}
