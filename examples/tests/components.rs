//! The components example: two isolated shared memories with the same key, each updated under
//! its own named lock.

#[allow(dead_code)]
#[path = "../components.rs"]
mod example;

mod common;

use memo_runtime::prelude::*;
use std::collections::HashMap;

#[test]
fn registers_exactly_its_four_handlers() {
    assert_eq!(memo_runtime::registered_handler_count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_component_counts_in_its_own_memory() {
    let operator = Operator::new().workers(4).handle_signals(false);
    let per_name = operator.component_shared("per-name");
    let per_namespace = operator.component_shared("per-namespace");
    let bot = operator.shared();
    operator.source(common::bundled_stream().await).run().await.unwrap();

    let by_name: HashMap<String, u64> = per_name.get("messages").await.unwrap().unwrap();
    let expected: HashMap<String, u64> = [("kopf-example-1", 3), ("kopf-example-2", 4), ("kopf-example-3", 2)]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
    assert_eq!(by_name, expected);
    let by_namespace: HashMap<String, u64> = per_namespace.get("messages").await.unwrap().unwrap();
    assert_eq!(
        by_namespace,
        [("default".to_owned(), 7), ("staging".to_owned(), 2)].into()
    );
    assert!(
        bot.keys().await.unwrap().is_empty(),
        "the bot's memory is not the components'"
    );
}
