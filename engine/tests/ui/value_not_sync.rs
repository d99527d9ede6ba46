// Nor shared: `downcast_ref` on two threads would clone the same `Rc` concurrently.
use std::rc::Rc;

fn main() {
    let v = greenlet::Value::new(Rc::new(1));
    std::thread::scope(|s| {
        s.spawn(|| v.downcast_ref::<Rc<i32>>().cloned());
        s.spawn(|| v.downcast_ref::<Rc<i32>>().cloned());
    });
}
