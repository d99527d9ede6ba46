//! Python-style tracing hooks: [`settrace`], [`gettrace`] and the [`Event`]s they see.
//!
//! With a tracer installed, every switch calls it with [`Event::Switch`] and every throw with
//! [`Event::Throw`], before the target runs. A tracer that panics is removed, and its panic is
//! raised in the target as if thrown. With no tracer, the switch path pays one predictable
//! branch.

use std::fmt;
use std::rc::Rc;

use crate::Greenlet;

/// What a tracer is told about.
#[derive(Debug, Clone)]
pub enum Event {
    /// Control passes from `origin` to `target` with a value (a switch, or a greenlet's return
    /// value climbing to its parent).
    Switch {
        /// The greenlet that was running.
        origin: Greenlet,
        /// The greenlet about to run.
        target: Greenlet,
    },
    /// Control passes from `origin` to `target` with a panic (a `throw`, or a panic climbing
    /// from a dead greenlet to its parent).
    Throw {
        /// The greenlet that was running.
        origin: Greenlet,
        /// The greenlet about to run, in which the panic is raised.
        target: Greenlet,
    },
}

impl Event {
    /// The greenlet control leaves.
    pub fn origin(&self) -> &Greenlet {
        match self {
            Event::Switch { origin, .. } | Event::Throw { origin, .. } => origin,
        }
    }

    /// The greenlet control goes to.
    pub fn target(&self) -> &Greenlet {
        match self {
            Event::Switch { target, .. } | Event::Throw { target, .. } => target,
        }
    }
}

/// A tracing callback, shared so that [`gettrace`] can hand it out.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use greenlet::{Event, Greenlet, Tracer};
///
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let sink = log.clone();
/// greenlet::settrace(Some(Tracer::new(move |e: &Event| {
///     sink.borrow_mut().push(matches!(e, Event::Switch { .. }));
/// })));
/// Greenlet::new(|v| v).switch(1);
/// greenlet::settrace(None);
/// assert_eq!(*log.borrow(), [true, true]); // into the greenlet, and its return
/// ```
#[derive(Clone)]
pub struct Tracer(Rc<dyn Fn(&Event)>);

impl Tracer {
    /// Wraps a callback.
    pub fn new(f: impl Fn(&Event) + 'static) -> Tracer {
        Tracer(Rc::new(f))
    }

    /// Calls the callback.
    pub fn call(&self, event: &Event) {
        (self.0)(event)
    }

    /// Whether two tracers are the same callback.
    pub fn same(&self, other: &Tracer) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tracer(..)")
    }
}

/// Installs `tracer` for this thread (or removes it with `None`); returns the previous one.
pub fn settrace(tracer: Option<Tracer>) -> Option<Tracer> {
    crate::thread::set_tracer(tracer)
}

/// This thread's tracer, if one is installed.
pub fn gettrace() -> Option<Tracer> {
    crate::thread::tracer()
}
