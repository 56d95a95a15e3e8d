//! Handlers of one event run in the documented stable order: module path, then line.

mod common;

use common::*;
use memo_runtime::prelude::*;

mod b_second {
    use super::common::push;
    use memo_runtime::prelude::*;

    #[handler(event = "KopfExample")]
    fn third(memo: &Memo) {
        push(memo, "b_second::third");
    }
}

mod a_first {
    use super::common::push;
    use memo_runtime::prelude::*;

    #[handler(update = "kopfexamples")]
    fn second(memo: &Memo) {
        push(memo, "a_first::second (line 24)");
    }

    #[handler(event = "KopfExample", id = "a-first-earlier")]
    fn earlier(memo: &Memo) {
        push(memo, "a_first::earlier (line 29)");
    }
}

#[handler(event = "kopfexample.kopf.dev")]
fn top_level(memo: &Memo) {
    push(memo, "ordering::top_level");
}

#[handler(event = "OtherKind")]
fn never(memo: &Memo) {
    push(memo, "never: another kind");
}

#[tokio::test]
async fn handlers_run_in_module_then_line_order() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    // An update handler runs on a change from a version handled before: the `ADDED` is the base.
    let mut changed = example("a", "u-a");
    changed["spec"]["size"] = 2.into();
    run_events(
        memo,
        1,
        vec![Event::added(example("a", "u-a")), Event::modified(changed)],
    )
    .await
    .unwrap();
    let log = entries(&log);
    assert_eq!(
        log[3..],
        [
            "ordering::top_level",
            "a_first::second (line 24)",
            "a_first::earlier (line 29)",
            "b_second::third",
        ]
    );
}

#[test]
fn every_handler_of_this_test_binary_is_registered() {
    assert_eq!(memo_runtime::registered_handler_count(), 5);
}
