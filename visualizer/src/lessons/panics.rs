//! Panics, throw and kill: a panic that escapes a greenlet's body is raised in its parent;
//! `throw` raises a panic inside a suspended greenlet; `kill` throws `GreenletExit`, which
//! unwinds the greenlet's stack (running every `Drop`) and arrives in the parent as a value.
//! Greenlet bodies here are functions of their own (`#[inline(never)]`), so the stack view can
//! name them even in an optimised build.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use greenlet::{Greenlet, GreenletExit, root, step, trace_println};

pub fn run() {
    // 1. A panic escapes a body: it is raised in the parent, inside the parent's switch.
    let sensor = Greenlet::builder()
        .name("sensor")
        .spawn(|_| sensor())
        .expect("spawn sensor");
    step!("main switches to sensor, ready to catch a panic");
    let caught = catch_unwind(AssertUnwindSafe(|| sensor.switch(())));
    if let Err(payload) = caught {
        trace_println!("main caught: {}", message(payload.as_ref()));
    }

    // 2. throw: raise a panic inside a suspended greenlet, which may catch it and go on.
    let server = Greenlet::builder()
        .name("server")
        .spawn(|_| serve())
        .expect("spawn server");
    server.switch(());
    step!("main sends the server a request");
    server.switch("GET /");
    step!("main throws an error into the suspended server");
    server.throw("disk full");

    // 3. kill: GreenletExit unwinds the server's stack and comes back to main as a value.
    step!("main kills the server");
    let exit = server.kill();
    trace_println!(
        "main: kill returned GreenletExit = {}, server dead = {}",
        exit.is_greenlet_exit(),
        server.is_dead()
    );
}

/// sensor's body: it panics.
#[inline(never)]
fn sensor() {
    let _guard = Cleanup("sensor");
    step!("sensor reads a bad value and panics");
    panic!("sensor returned garbage");
}

/// server's body: handles requests, survives a throw, lets a kill through.
#[inline(never)]
fn serve() {
    let _guard = Cleanup("server");
    loop {
        step!("server waits for a request");
        let request = catch_unwind(AssertUnwindSafe(|| root().switch("ready")));
        match request {
            Ok(v) => trace_println!("server handles {:?}", v.take::<&str>()),
            Err(payload) if payload.is::<GreenletExit>() => {
                step!("server is being killed: it lets GreenletExit unwind its stack");
                resume_unwind(payload);
            }
            Err(payload) => {
                trace_println!("server caught a throw: {}", message(payload.as_ref()));
                step!("server recovers and keeps serving");
            }
        }
    }
}

/// Prints when dropped, to show that unwinding runs destructors on the greenlet's stack.
struct Cleanup(&'static str);

impl Drop for Cleanup {
    fn drop(&mut self) {
        trace_println!("{}: cleanup runs while the stack unwinds", self.0);
    }
}

/// The text of a panic payload.
fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(not a string)"
    }
}

/// Puts this file in the trace, so the source pane shows exactly this code.
pub fn register_source() {
    greenlet::trace::add_source(file!(), include_str!("panics.rs"));
}
