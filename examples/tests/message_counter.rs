//! The message counter example: one `messages` counter in the bot's shared memory, prepared once,
//! incremented by every event from any worker.

#[allow(dead_code)]
#[path = "../message_counter.rs"]
mod example;

mod common;

use memo_runtime::prelude::*;

#[test]
fn registers_exactly_its_three_handlers() {
    assert_eq!(memo_runtime::registered_handler_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_every_event_of_the_bundled_stream() {
    let operator = Operator::new().workers(4).handle_signals(false);
    let shared = operator.shared();
    operator.source(common::bundled_stream().await).run().await.unwrap();
    assert_eq!(shared.get::<u64>("messages").await.unwrap(), Some(9));
}
