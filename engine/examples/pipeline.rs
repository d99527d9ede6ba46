//! A producer/consumer pipeline: a producer greenlet reads "lines", a filter greenlet keeps
//! the interesting ones, and a consumer greenlet totals them. Each stage switches straight to
//! the next with one item; the consumer switches back to the producer for more. No queue, no
//! scheduler, no thread: control follows the data.

use std::cell::RefCell;
use std::rc::Rc;

use greenlet::Greenlet;

/// What flows down the pipeline.
enum Item {
    Line(String),
    End,
}

fn main() {
    let input = "apples 3\nbananas 12\n# a comment\ncherries 7\n\nplums 30\n";
    let stages: Rc<RefCell<Vec<Greenlet>>> = Rc::default(); // [producer, filter, consumer]
    let stage = {
        let stages = stages.clone();
        move |i: usize| stages.borrow()[i].clone()
    };

    let next = stage.clone();
    let producer = Greenlet::builder()
        .name("producer")
        .spawn(move |_| {
            for line in input.lines() {
                println!("producer: read {line:?}");
                next(1).switch(Item::Line(line.to_string()));
            }
            next(1).switch(Item::End);
        })
        .expect("spawn producer");

    let next = stage.clone();
    let filter = Greenlet::builder()
        .name("filter")
        .spawn(move |v| {
            let mut item: Item = v.take();
            loop {
                let forward = match &item {
                    Item::Line(l) => !l.trim().is_empty() && !l.starts_with('#'),
                    Item::End => true,
                };
                let to = if forward { 2 } else { 0 }; // dropped lines: ask the producer for more
                if !forward {
                    println!(
                        "filter: dropped {:?}",
                        match &item {
                            Item::Line(l) => l.as_str(),
                            Item::End => "",
                        }
                    );
                }
                item = next(to).switch(item).take();
            }
        })
        .expect("spawn filter");

    let next = stage.clone();
    let consumer = Greenlet::builder()
        .name("consumer")
        .spawn(move |v| {
            let mut total = 0u32;
            let mut item: Item = v.take();
            while let Item::Line(line) = item {
                let (name, qty) = line.split_once(' ').expect("name and quantity");
                let qty: u32 = qty.parse().expect("a number");
                total += qty;
                println!("consumer: {name} +{qty} = {total}");
                item = next(0).switch(()).take();
            }
            total // the consumer's parent is the root: the total ends the pipeline
        })
        .expect("spawn consumer");

    stages
        .borrow_mut()
        .extend([producer.clone(), filter, consumer]);
    let total: u32 = producer.switch(()).take();
    println!("total: {total}");
    assert_eq!(total, 52);
    stages.borrow_mut().clear(); // break the handle cycle; suspended stages are killed
}
