// A value can hold anything 'static, `Rc` included, so it must not be sent to another thread:
// both threads would then count the same `Rc` without synchronisation.
use std::rc::Rc;

fn main() {
    let v = greenlet::Value::new(Rc::new(1));
    let mine = v.downcast_ref::<Rc<i32>>().unwrap().clone();
    std::thread::spawn(move || drop(v));
    drop(mine);
}
