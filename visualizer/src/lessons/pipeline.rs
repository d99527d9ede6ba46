//! A producer/consumer pipeline: producer -> filter -> consumer. Each stage switches straight to
//! the next with one item; no queue, no scheduler, no thread: control follows the data.
//! Greenlet bodies here are functions of their own (`#[inline(never)]`), so the stack view can
//! name them even in an optimised build.

use std::cell::RefCell;
use std::rc::Rc;

use greenlet::{Greenlet, Value, step, trace_println};

/// What flows down the pipeline.
enum Item {
    Line(&'static str),
    End,
}

/// The stages, so each can find the next: [producer, filter, consumer].
type Stages = Rc<RefCell<Vec<Greenlet>>>;

const PRODUCER: usize = 0;
const FILTER: usize = 1;
const CONSUMER: usize = 2;

pub fn run() {
    let stages: Stages = Rc::default();
    let (s1, s2, s3) = (stages.clone(), stages.clone(), stages.clone());
    let producer = Greenlet::builder()
        .name("producer")
        .spawn(move |_| produce(&s1))
        .expect("spawn producer");
    let filter = Greenlet::builder()
        .name("filter")
        .spawn(move |first| filter(first, &s2))
        .expect("spawn filter");
    let consumer = Greenlet::builder()
        .name("consumer")
        .spawn(move |first| consume(first, &s3))
        .expect("spawn consumer");
    stages
        .borrow_mut()
        .extend([producer.clone(), filter, consumer]);

    step!("main starts the producer");
    let total: u32 = producer.switch(()).take();
    trace_println!("total: {total}");
    step!("main breaks the handle cycle: the suspended stages are killed");
    stages.borrow_mut().clear();
}

/// Stage `i`.
fn stage(stages: &Stages, i: usize) -> Greenlet {
    stages.borrow()[i].clone()
}

/// The producer's body: reads the input, one line per switch to the filter.
#[inline(never)]
fn produce(stages: &Stages) {
    for line in ["apples 3", "# a comment", "pears 12"] {
        trace_println!("producer: read {line:?}");
        step!("producer sends a line to the filter");
        stage(stages, FILTER).switch(Item::Line(line));
    }
    step!("producer has no more input: it sends End");
    stage(stages, FILTER).switch(Item::End);
}

/// The filter's body: passes lines on, drops comments.
#[inline(never)]
fn filter(first: Value, stages: &Stages) {
    let mut item: Item = first.take();
    loop {
        let keep = match item {
            Item::Line(line) => !line.starts_with('#'),
            Item::End => true,
        };
        if keep {
            step!("filter passes the item on to the consumer");
            item = stage(stages, CONSUMER).switch(item).take();
        } else {
            trace_println!("filter: dropped a comment");
            step!("filter drops the comment and asks the producer for more");
            item = stage(stages, PRODUCER).switch(()).take();
        }
    }
}

/// The consumer's body: totals the quantities until End.
#[inline(never)]
fn consume(first: Value, stages: &Stages) -> u32 {
    let mut total = 0u32;
    let mut item: Item = first.take();
    while let Item::Line(line) = item {
        let (name, qty) = line.split_once(' ').expect("name and quantity");
        total += qty.parse::<u32>().expect("a number");
        trace_println!("consumer: {name} -> total {total}");
        step!("consumer asks the producer for the next line");
        item = stage(stages, PRODUCER).switch(()).take();
    }
    step!("consumer got End: its total goes to its parent, main");
    total
}

/// Puts this file in the trace, so the source pane shows exactly this code.
pub fn register_source() {
    greenlet::trace::add_source(file!(), include_str!("pipeline.rs"));
}
