use super::*;
use std::mem::size_of;
use std::sync::Mutex;
use std::thread::JoinHandle;

type Shared = Arc<Mutex<Vec<u32>>>;

/// Depth of the layer chain of a memo.
fn depth(memo: &Memo) -> usize {
    chain(memo.top.as_deref()).count()
}

/// Heap bytes held by `memo` alone (layers and values it does not share),
/// counting each `Arc` allocation as two counters plus its payload.
fn own_heap_bytes(memo: &Memo) -> usize {
    fn arc_bytes(payload: usize) -> usize {
        (2 * size_of::<usize>() + payload).next_multiple_of(size_of::<usize>())
    }
    let mut total = 0;
    let mut layer = memo.top.as_ref();
    while let Some(current) = layer {
        if Arc::strong_count(current) != 1 {
            break;
        }
        total += arc_bytes(size_of::<Layer>());
        total += match &current.entries {
            Entries::Small(v) => v.capacity() * size_of::<(Key, Slot)>(),
            Entries::Big(m) => m.capacity() * (size_of::<(Key, Slot)>() + 1),
        };
        for (key, slot) in current.entries.iter() {
            if let Key::Owned(s) = key {
                total += size_of::<Box<str>>() + s.len();
            }
            if let Some(value) = slot
                && Arc::strong_count(value) == 1
            {
                total += arc_bytes(std::mem::size_of_val(&**value));
            }
        }
        layer = current.parent.as_ref();
    }
    total
}

#[test]
fn memo_is_send_sync_clone_static() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<Memo>();
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<MemoError>();
}

#[test]
fn sizes_are_lean() {
    assert_eq!(size_of::<Memo>(), size_of::<usize>());
    assert_eq!(size_of::<Key>(), 2 * size_of::<usize>());
    assert_eq!(size_of::<(Key, Slot)>(), 4 * size_of::<usize>());
    assert_eq!(size_of::<Slot>(), 2 * size_of::<usize>());
    assert_eq!(size_of::<Entries>(), 3 * size_of::<usize>());
    assert_eq!(size_of::<Layer>(), 5 * size_of::<usize>());
}

#[test]
fn small_memo_cloned_from_empty_parent_uses_little_heap() {
    let parent = Memo::new();
    assert_eq!(own_heap_bytes(&parent), 0);
    let mut memo = parent.clone();
    memo.insert("counter", 0u64);
    memo.insert("seen", false);
    let bytes = own_heap_bytes(&memo);
    // Layer 16 + 40, entries 2 * 32, values 2 * 24: 168 bytes on 64 bits.
    assert!(bytes < 200, "{bytes} bytes");
    assert_eq!(bytes, 21 * size_of::<usize>());
    assert_eq!(depth(&memo), 1);
}

#[test]
fn clone_of_big_memo_costs_only_its_own_writes() {
    let mut operator = Memo::new();
    for i in 0..1000 {
        operator.insert(format!("key-{i}"), i as u64);
    }
    let mut resource = operator.clone();
    resource.insert("counter", 1u64);
    let bytes = own_heap_bytes(&resource);
    assert!(bytes < 200, "{bytes} bytes");
}

#[test]
fn insert_get_try_get() {
    let mut memo = Memo::new();
    memo.insert("counter", 5u64);
    memo.insert(String::from("name"), String::from("kopf"));
    assert_eq!(memo.get::<u64>("counter"), Some(&5));
    assert_eq!(memo.get::<String>("name").map(String::as_str), Some("kopf"));
    assert_eq!(memo.get::<u32>("counter"), None);
    assert_eq!(memo.get::<u64>("other"), None);

    assert_eq!(memo.try_get::<u64>("counter"), Ok(&5));
    let missing = memo.try_get::<u64>("other").unwrap_err();
    assert_eq!(missing, MemoError::Missing { key: "other".into() });
    assert_eq!(missing.to_string(), "no value under key `other`");
    let mismatch = memo.try_get::<String>("counter").unwrap_err();
    assert_eq!(
        mismatch,
        MemoError::TypeMismatch {
            key: "counter".into(),
            expected: type_name::<String>(),
            found: type_name::<u64>(),
        }
    );
    assert_eq!(
        mismatch.to_string(),
        "the value under key `counter` is a `u64`, not a `alloc::string::String`"
    );
}

#[test]
fn overwrite_with_another_type() {
    let mut memo = Memo::new();
    memo.insert("x", 1u64);
    memo.insert("x", "text");
    assert_eq!(memo.len(), 1);
    assert_eq!(memo.get::<u64>("x"), None);
    assert_eq!(memo.get::<&str>("x"), Some(&"text"));

    // Also over a parent layer.
    let mut clone = memo.clone();
    clone.insert("x", 2.5f64);
    assert_eq!(clone.len(), 1);
    assert_eq!(clone.get::<f64>("x"), Some(&2.5));
    assert_eq!(memo.get::<&str>("x"), Some(&"text"));
}

#[test]
fn clone_shares_values_but_not_keys() {
    let mut operator = Memo::new();
    operator.insert("log", Shared::default());
    operator.insert("both", 1u8);
    let mut resource = operator.clone();

    resource.get::<Shared>("log").unwrap().lock().unwrap().push(1);
    operator.get::<Shared>("log").unwrap().lock().unwrap().push(2);
    assert_eq!(*resource.get::<Shared>("log").unwrap().lock().unwrap(), [1, 2]);
    assert!(Arc::ptr_eq(
        resource.get::<Shared>("log").unwrap(),
        operator.get::<Shared>("log").unwrap()
    ));

    resource.insert("resource-only", 1u8);
    assert!(resource.remove("both"));
    operator.insert("operator-only", 2u8);
    assert!(!operator.contains_key("resource-only"));
    assert!(operator.contains_key("both"));
    assert!(!resource.contains_key("operator-only"));
    assert!(!resource.contains_key("both"));
    assert_eq!(operator.len(), 3);
    assert_eq!(resource.len(), 2);
}

#[test]
fn remove_uses_tombstone_over_parent() {
    let mut parent = Memo::new();
    parent.insert("a", 1u8);
    parent.insert("b", 2u8);
    let mut child = parent.clone();
    child.insert("a", 10u8);
    assert!(child.remove("a"));
    assert_eq!(child.get::<u8>("a"), None, "parent value must stay hidden");
    assert!(!child.remove("a"));
    assert!(child.remove("b"));
    assert!(!child.remove("zzz"));
    assert!(child.is_empty());
    assert_eq!(child.keys().count(), 0);
    assert_eq!(parent.get::<u8>("a"), Some(&1));
    assert_eq!(parent.len(), 2);

    // Re-inserting over a tombstone makes the key visible again.
    child.insert("a", 3u8);
    assert_eq!(child.get::<u8>("a"), Some(&3));
    assert_eq!(child.len(), 1);
}

#[test]
fn removing_last_own_key_frees_the_layer() {
    let mut memo = Memo::new();
    memo.insert("a", 1u8);
    assert!(memo.remove("a"));
    assert!(memo.top.is_none());
}

#[test]
fn len_keys_contains_after_layered_writes() {
    let mut l1 = Memo::new();
    l1.insert("a", 1u8);
    l1.insert("b", 2u8);
    let mut l2 = l1.clone();
    l2.insert("c", 3u8);
    l2.remove("a");
    let mut l3 = l2.clone();
    l3.insert("a", 4u8);
    l3.insert("b", 5u8);
    l3.remove("c");
    l3.insert("d", 6u8);

    assert_eq!(l1.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(l2.keys().collect::<Vec<_>>(), ["b", "c"]);
    assert_eq!(l3.keys().collect::<Vec<_>>(), ["a", "b", "d"]);
    assert_eq!((l1.len(), l2.len(), l3.len()), (2, 2, 3));
    assert!(l3.contains_key("a") && !l3.contains_key("c"));
    assert!(!l2.contains_key("a") && l2.contains_key("c"));
    assert_eq!(l3.get::<u8>("b"), Some(&5));
    assert_eq!(l2.get::<u8>("b"), Some(&2));
}

#[test]
fn get_mut_copies_on_write() {
    let mut parent = Memo::new();
    parent.insert("n", 1u64);
    let mut child = parent.clone();
    *child.get_mut::<u64>("n").unwrap() += 10;
    assert_eq!(child.get::<u64>("n"), Some(&11));
    assert_eq!(parent.get::<u64>("n"), Some(&1));

    // A clone of a clone; mutate the middle one after cloning.
    let grandchild = child.clone();
    *child.get_mut::<u64>("n").unwrap() += 100;
    assert_eq!(child.get::<u64>("n"), Some(&111));
    assert_eq!(grandchild.get::<u64>("n"), Some(&11));
    assert_eq!(parent.get::<u64>("n"), Some(&1));

    // Mutating the parent does not leak into children either.
    *parent.get_mut::<u64>("n").unwrap() = 0;
    assert_eq!(child.get::<u64>("n"), Some(&111));
    assert_eq!(grandchild.get::<u64>("n"), Some(&11));
    assert_eq!(child.len(), 1);
    assert_eq!(parent.len(), 1);

    assert!(child.get_mut::<u32>("n").is_none());
    assert!(child.get_mut::<u64>("missing").is_none());
}

#[test]
fn get_mut_in_place_when_unshared() {
    let mut memo = Memo::new();
    memo.insert("v", vec![1u32, 2, 3]);
    let layer_before = Arc::as_ptr(memo.top.as_ref().unwrap());
    let value_before: *const Vec<u32> = memo.get::<Vec<u32>>("v").unwrap();
    memo.get_mut::<Vec<u32>>("v").unwrap().push(4);
    assert_eq!(Arc::as_ptr(memo.top.as_ref().unwrap()), layer_before);
    assert_eq!(memo.get::<Vec<u32>>("v").unwrap() as *const _, value_before);
    assert_eq!(memo.get::<Vec<u32>>("v").unwrap(), &[1, 2, 3, 4]);

    // After the clone is dropped, the first write copies, the next is in place.
    let clone = memo.clone();
    memo.get_mut::<Vec<u32>>("v").unwrap().push(5);
    let copied: *const Vec<u32> = memo.get::<Vec<u32>>("v").unwrap();
    assert_ne!(copied, value_before);
    assert_eq!(clone.get::<Vec<u32>>("v").unwrap(), &[1, 2, 3, 4]);
    drop(clone);
    memo.get_mut::<Vec<u32>>("v").unwrap().push(6);
    assert_eq!(memo.get::<Vec<u32>>("v").unwrap() as *const _, copied);
    assert_eq!(memo.get::<Vec<u32>>("v").unwrap(), &[1, 2, 3, 4, 5, 6]);
}

#[test]
fn take_join_handle_after_clones_dropped() {
    let mut operator = Memo::new();
    operator.insert("worker", std::thread::spawn(|| 40 + 2));
    operator.insert("other", 1u8);
    let mut resources: Vec<Memo> = (0..3).map(|_| operator.clone()).collect();
    for (i, r) in resources.iter_mut().enumerate() {
        r.insert("i", i);
    }
    drop(resources);
    // The key is in a layer below the top one? Make it so.
    let snapshot = operator.clone();
    operator.insert("late", 2u8);
    drop(snapshot);
    assert_eq!(depth(&operator), 2);

    let handle = operator.take::<JoinHandle<i32>>("worker").unwrap();
    assert_eq!(handle.join().unwrap(), 42);
    assert!(!operator.contains_key("worker"));
    assert_eq!(operator.len(), 2);
    assert_eq!(operator.keys().collect::<Vec<_>>(), ["late", "other"]);
    assert_eq!(
        operator.take::<JoinHandle<i32>>("worker").unwrap_err(),
        MemoError::Missing { key: "worker".into() }
    );
}

#[test]
fn take_while_shared_keeps_value() {
    let mut operator = Memo::new();
    operator.insert("worker", std::thread::spawn(|| ()));
    let resource = operator.clone();
    let err = operator.take::<JoinHandle<()>>("worker").unwrap_err();
    assert_eq!(err, MemoError::Shared { key: "worker".into() });
    assert_eq!(
        err.to_string(),
        "the value under key `worker` is still shared with another memo"
    );
    assert!(operator.contains_key("worker"));
    assert!(resource.contains_key("worker"));

    let err = operator.take::<u8>("worker").unwrap_err();
    assert!(matches!(err, MemoError::TypeMismatch { .. }));
    drop(resource);
    let mismatch = operator.take::<u8>("worker").unwrap_err();
    assert!(matches!(mismatch, MemoError::TypeMismatch { .. }));
    assert!(operator.contains_key("worker"));
    operator.take::<JoinHandle<()>>("worker").unwrap().join().unwrap();
    assert!(operator.is_empty());
}

#[test]
fn take_shadowed_key_leaves_tombstone() {
    let mut parent = Memo::new();
    parent.insert("k", 1u32);
    let mut child = parent.clone();
    child.insert("k", String::from("own"));
    assert_eq!(child.take::<String>("k").unwrap(), "own");
    assert!(!child.contains_key("k"));
    assert_eq!(child.len(), 0);
    assert_eq!(parent.get::<u32>("k"), Some(&1));
    // The parent's value is shared with `parent`: it cannot be taken.
    let mut child2 = parent.clone();
    assert!(matches!(child2.take::<u32>("k"), Err(MemoError::Shared { .. })));
}

#[test]
fn chain_flattening_keeps_values_right() {
    let mut memo = Memo::new();
    let mut keep = Vec::new();
    for i in 0..100u64 {
        let snapshot = memo.clone();
        memo.insert(format!("k{i}"), i);
        if i % 3 == 0 && i > 0 {
            assert!(memo.remove(&format!("k{}", i - 1)));
        }
        if i % 5 == 0 {
            *memo.get_mut::<u64>("k0").unwrap() += 1;
        }
        keep.push(snapshot);
        assert!(depth(&memo) <= MAX_DEPTH, "depth {}", depth(&memo));
    }
    let expected: Vec<u64> = (0..100).filter(|i| i % 3 != 2).collect();
    assert_eq!(memo.len(), expected.len());
    for i in 0..100u64 {
        let value = memo.get::<u64>(&format!("k{i}"));
        if expected.contains(&i) {
            let want = if i == 0 { 20 } else { i };
            assert_eq!(value, Some(&want), "k{i}");
        } else {
            assert_eq!(value, None, "k{i}");
        }
    }
    assert_eq!(memo.keys().count(), expected.len());
    // Snapshots still see their own state.
    assert_eq!(keep[10].len(), 10 - 3);
    assert_eq!(keep[10].get::<u64>("k0"), Some(&2));
    assert_eq!(keep[0].len(), 0);
}

#[test]
fn big_parent_many_clones() {
    let mut operator = Memo::new();
    for i in 0..1000u64 {
        operator.insert(format!("op-{i}"), i);
    }
    assert!(matches!(operator.top.as_ref().unwrap().entries, Entries::Big(_)));
    let resources: Vec<Memo> = (0..10_000u64)
        .map(|i| {
            let mut r = operator.clone();
            r.insert("counter", i);
            r
        })
        .collect();
    for (i, r) in resources.iter().enumerate().step_by(997) {
        assert_eq!(r.len(), 1001);
        assert_eq!(r.get::<u64>("counter"), Some(&(i as u64)));
        assert_eq!(r.get::<u64>("op-999"), Some(&999));
        assert_eq!(r.get::<u64>("op-0"), Some(&0));
        assert_eq!(depth(r), 2);
    }
    assert!(!operator.contains_key("counter"));
    assert_eq!(operator.len(), 1000);
}

#[test]
fn deep_chain_over_big_base_keeps_base_shared() {
    let mut operator = Memo::new();
    for i in 0..1000u64 {
        operator.insert(format!("op-{i}"), i);
    }
    let base = Arc::as_ptr(operator.top.as_ref().unwrap());
    let mut memo = operator.clone();
    let mut snapshots = Vec::new();
    for i in 0..50u64 {
        snapshots.push(memo.clone());
        memo.insert(format!("r-{i}"), i);
        assert!(depth(&memo) <= MAX_DEPTH);
    }
    let bottom = chain(memo.top.as_deref()).last().unwrap() as *const Layer;
    assert_eq!(bottom, base, "the operator layer must not be copied");
    assert_eq!(memo.len(), 1050);
    assert_eq!(memo.get::<u64>("r-0"), Some(&0));
    assert_eq!(memo.get::<u64>("op-500"), Some(&500));
}

#[test]
fn debug_output() {
    let mut memo = Memo::new();
    assert_eq!(format!("{memo:?}"), "Memo {}");
    memo.insert("seen", true);
    memo.insert("counter", 1u64);
    let mut clone = memo.clone();
    clone.insert("log", Shared::default());
    clone.remove("seen");
    assert_eq!(format!("{memo:?}"), r#"Memo { "counter": u64, "seen": bool }"#);
    assert_eq!(
        format!("{clone:?}"),
        format!(r#"Memo {{ "counter": u64, "log": {} }}"#, type_name::<Shared>())
    );
    assert!(format!("{memo:#?}").contains("\"counter\": u64,"));
}
