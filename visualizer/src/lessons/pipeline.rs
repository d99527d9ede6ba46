//! A producer/consumer pipeline: producer -> filter -> consumer. Each stage switches straight to
//! the next with one item; no queue, no scheduler, no thread: control follows the data.

use std::cell::RefCell;
use std::rc::Rc;

use greenlet::{Greenlet, step, trace_println};

/// What flows down the pipeline.
enum Item {
    Line(&'static str),
    End,
}

pub fn run() {
    let input = ["apples 3", "# a comment", "pears 12"];
    let stages: Rc<RefCell<Vec<Greenlet>>> = Rc::default(); // [producer, filter, consumer]
    let stage = {
        let stages = stages.clone();
        move |i: usize| stages.borrow()[i].clone()
    };

    let next = stage.clone();
    let producer = Greenlet::builder()
        .name("producer")
        .spawn(move |_| {
            for line in input {
                trace_println!("producer: read {line:?}");
                step!("producer sends a line to the filter");
                next(1).switch(Item::Line(line));
            }
            step!("producer has no more input: it sends End");
            next(1).switch(Item::End);
        })
        .expect("spawn producer");

    let next = stage.clone();
    let filter = Greenlet::builder()
        .name("filter")
        .spawn(move |first| {
            let mut item: Item = first.take();
            loop {
                let keep = match item {
                    Item::Line(line) => !line.starts_with('#'),
                    Item::End => true,
                };
                if keep {
                    step!("filter passes the item on to the consumer");
                    item = next(2).switch(item).take();
                } else {
                    trace_println!("filter: dropped a comment");
                    step!("filter drops the comment and asks the producer for more");
                    item = next(0).switch(()).take();
                }
            }
        })
        .expect("spawn filter");

    let next = stage.clone();
    let consumer = Greenlet::builder()
        .name("consumer")
        .spawn(move |first| {
            let mut total = 0u32;
            let mut item: Item = first.take();
            while let Item::Line(line) = item {
                let (name, qty) = line.split_once(' ').expect("name and quantity");
                total += qty.parse::<u32>().expect("a number");
                trace_println!("consumer: {name} -> total {total}");
                step!("consumer asks the producer for the next line");
                item = next(0).switch(()).take();
            }
            step!("consumer got End: its total goes to its parent, main");
            total
        })
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

/// Puts this file in the trace, so the source pane shows exactly this code.
pub fn register_source() {
    greenlet::trace::add_source(file!(), include_str!("pipeline.rs"));
}
