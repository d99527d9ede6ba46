//! The bundled lessons: small real programs, each with an explanation written for a student.
//!
//! Natively a lesson is recorded when it is chosen: its program runs on real greenlets under
//! [`greenlet::trace::record_as`], on a thread of its own. The catalog ([`ALL`]) holds only
//! text, so a build that cannot run greenlets (the web page) can show the same lessons from
//! pre-recorded traces instead (see [`load`]).

#[cfg(not(target_arch = "wasm32"))]
mod generator;
#[cfg(not(target_arch = "wasm32"))]
mod panics;
#[cfg(not(target_arch = "wasm32"))]
mod parents;
#[cfg(not(target_arch = "wasm32"))]
mod pingpong;
#[cfg(not(target_arch = "wasm32"))]
mod pipeline;
#[cfg(not(target_arch = "wasm32"))]
mod recursion;
#[cfg(not(target_arch = "wasm32"))]
mod seed;

use greenlet::trace::Trace;

/// One lesson: what the picker and the explanation panel show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lesson {
    /// Short name, used on the command line (`--lesson pingpong`) and as the trace's program name.
    pub id: &'static str,
    /// Title in the picker.
    pub title: &'static str,
    /// What to look for, for a student (a few short paragraphs separated by blank lines).
    pub explanation: &'static str,
}

/// Every bundled lesson, in teaching order.
pub const ALL: [Lesson; 7] = [
    Lesson {
        id: "seed",
        title: "1. The seed example",
        explanation: "A greenlet is a function with its own stack that you can pause and resume. \
            Creating one runs nothing: greenlet 1 starts 'unstarted'.\n\n\
            main switches to it, greenlet 1 prints and switches back to main. Its stack keeps \
            its place (see its frames in the stack view). The second switch resumes greenlet 1 \
            right after its own switch; when its body returns it is dead and control goes to \
            its parent, main.",
    },
    Lesson {
        id: "pingpong",
        title: "2. Ping-pong",
        explanation: "Greenlets are symmetric: any greenlet can switch to any other, handing it \
            a value. ping and pong pass a counter straight to each other, with no scheduler in \
            between (watch the arrows on the timeline).\n\n\
            When ping returns, its result goes to its parent, main. pong is still suspended; \
            when main drops the last handle to it, it is killed and its stack unwinds.",
    },
    Lesson {
        id: "generator",
        title: "3. A generator",
        explanation: "A generator yields values one at a time. The trick: whoever asks for the \
            next value first makes itself the generator's parent (watch the parent tree \
            change), then switches to it; the generator hands each value to its parent.\n\n\
            The second generator, countdown, is abandoned after one value: dropping it kills \
            it while suspended.",
    },
    Lesson {
        id: "pipeline",
        title: "4. Producer / consumer pipeline",
        explanation: "Three greenlets form a pipeline: producer -> filter -> consumer. Each stage \
            switches straight to the next with one item, and the consumer switches back to the \
            producer for more. There is no queue and no scheduler: control follows the data.\n\n\
            The filter drops the comment line and asks the producer for the next one instead.",
    },
    Lesson {
        id: "parents",
        title: "5. Return values climb the parent chain",
        explanation: "When a body returns, its result is switched to its parent. If the parent \
            is unstarted, the result becomes the parent's first argument; if it is dead, the \
            value keeps climbing to the first live ancestor.\n\n\
            leaf returns 40 to middle, middle returns 41 to collector, which reports to main. \
            Then main switches into dead leaf: the value climbs past dead middle to collector. \
            After leaf is re-parented under main, switching to it lands on main itself.",
    },
    Lesson {
        id: "panics",
        title: "6. Panics, throw and kill",
        explanation: "A panic that escapes a greenlet's body unwinds its stack and is raised in \
            its parent, inside the parent's switch (main catches it with catch_unwind).\n\n\
            throw raises a panic inside a suspended greenlet: the server catches it and goes \
            on. kill throws GreenletExit: the server lets it unwind its stack (its Drop \
            cleanup runs), dies, and main receives the GreenletExit as a value.",
    },
    Lesson {
        id: "recursion",
        title: "7. Deep recursion fills a stack",
        explanation: "Each greenlet has its own fixed-size stack; deep here has only 256 KiB. \
            Every call of descend keeps a 1 KiB buffer on it, so 'in use' grows as it recurses \
            (it reports to main every 16 levels; while it waits, its frames are listed under \
            its stack).\n\n\
            When the calls return, 'in use' shrinks but the high-water mark shows the deepest \
            point reached. Below the stack is a guard page: recursing past the end would hit \
            it and abort with a stack overflow message, so this lesson stops well before.",
    },
];

/// The lesson with this id.
pub fn find(id: &str) -> Option<&'static Lesson> {
    ALL.iter().find(|l| l.id == id)
}

/// The lesson ids, comma-separated (for error messages and `--help`).
pub fn ids() -> String {
    ALL.iter().map(|l| l.id).collect::<Vec<_>>().join(", ")
}

/// The lesson's trace: recorded now by running its program natively.
///
/// # Errors
/// A message if the program failed outside its greenlets (a bug in the lesson).
#[cfg(not(target_arch = "wasm32"))]
pub fn load(lesson: &Lesson) -> Result<Trace, String> {
    let program = program(lesson.id).ok_or_else(|| format!("no program for {}", lesson.id))?;
    record(lesson.id, program)
}

/// The lesson's trace. A web build cannot run greenlets: it shows the trace the native build
/// recorded, which the page delivered (see [`crate::web`]).
///
/// # Errors
/// When the page did not deliver it, or it cannot be read.
#[cfg(target_arch = "wasm32")]
pub fn load(lesson: &Lesson) -> Result<Trace, String> {
    crate::web::lesson_trace(lesson.id)
}

/// A lesson's code.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy)]
struct Program {
    /// Puts the lesson's file in the trace.
    register_source: fn(),
    /// The program.
    run: fn(),
}

/// The program behind a lesson id.
#[cfg(not(target_arch = "wasm32"))]
fn program(id: &str) -> Option<Program> {
    macro_rules! lesson {
        ($module:ident) => {
            Program {
                register_source: $module::register_source,
                run: $module::run,
            }
        };
    }
    Some(match id {
        "seed" => lesson!(seed),
        "pingpong" => lesson!(pingpong),
        "generator" => lesson!(generator),
        "pipeline" => lesson!(pipeline),
        "parents" => lesson!(parents),
        "panics" => lesson!(panics),
        "recursion" => lesson!(recursion),
        _ => return None,
    })
}

/// Threads that record lessons are named with this prefix, so the panic hook can tell them
/// apart.
#[cfg(not(target_arch = "wasm32"))]
const THREAD_PREFIX: &str = "lesson ";

/// Records `program` on a thread of its own (greenlets belong to their thread, and the UI
/// thread's greenlet state stays untouched), waiting for it: lessons take milliseconds.
#[cfg(not(target_arch = "wasm32"))]
fn record(id: &'static str, program: Program) -> Result<Trace, String> {
    quiet_lesson_panics();
    let thread = std::thread::Builder::new()
        .name(format!("{THREAD_PREFIX}{id}"))
        .spawn(move || {
            greenlet::trace::record_as(id, || {
                (program.register_source)();
                (program.run)();
            })
        })
        .map_err(|e| format!("could not start a thread to record {id}: {e}"))?;
    thread
        .join()
        .map_err(|_| format!("lesson {id} panicked outside its greenlets"))
}

/// Lessons panic on purpose (the panics lesson); the default hook would print those panics on
/// the terminal as if the visualizer had crashed. Panics on lesson threads are shown in the
/// trace instead; every other panic still goes to the previous hook.
#[cfg(not(target_arch = "wasm32"))]
fn quiet_lesson_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_lesson_thread = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(THREAD_PREFIX));
            if !on_lesson_thread {
                previous(info);
            }
        }));
    });
}
