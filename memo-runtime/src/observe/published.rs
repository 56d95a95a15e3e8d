//! A small record that one thread rewrites on every handler call and others read only when a
//! stop abandons that thread: a sequence lock over atomic words.
//!
//! Why not a `Mutex<Option<…>>` holding a clone of the resource's key: the lock and the
//! reference count cost four atomic read-modify-writes per handler call, about 3% of the
//! dispatch loop (memo-bench, measurement 1). Here the writer does plain stores (on x86, a
//! `Release` store and a `Release` fence compile to ordinary moves), and the rare reader retries
//! while a write is under way.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};

/// Words of text kept: a uid, a namespace and a name as long as Kubernetes allows them
/// (36 + 63 + 253 bytes and two separators) fit.
const WORDS: usize = 48;

/// The longest text [`Published::publish`] keeps.
pub(crate) const CAPACITY: usize = WORDS * 8;

/// `len` when the record holds no text.
const NO_TEXT: usize = usize::MAX;

/// How often a reader tries again while the writer keeps writing, before it gives up: the
/// report it serves must not wait on a thread that is busy rather than stuck.
const ATTEMPTS: usize = 1_000;

/// A number and an optional text, written by one thread at a time.
pub(crate) struct Published {
    /// Odd while a write is under way; every write adds two.
    seq: AtomicU64,
    number: AtomicUsize,
    len: AtomicUsize,
    words: [AtomicU64; WORDS],
}

/// What a reader saw, whole.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) number: usize,
    pub(crate) text: Option<String>,
    /// The text published was longer than [`CAPACITY`]: `text` is its beginning.
    pub(crate) cut: bool,
}

impl Default for Published {
    fn default() -> Self {
        Published {
            seq: AtomicU64::new(0),
            number: AtomicUsize::new(0),
            len: AtomicUsize::new(NO_TEXT),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Published {
    /// Replaces the record. `text` longer than [`CAPACITY`] is cut there (at a byte: the reader
    /// mends a cut character, and says it was cut); callers keep a long text elsewhere.
    ///
    /// One writer at a time: two threads publishing at once would tear each other's record.
    pub(crate) fn publish(&self, number: usize, text: Option<&str>) {
        let seq = self.seq.load(Ordering::Relaxed);
        debug_assert!(seq.is_multiple_of(2), "two writers publish at once");
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd mark before the stores below, for a reader who sees any of them.
        fence(Ordering::Release);
        self.number.store(number, Ordering::Relaxed);
        match text {
            None => self.len.store(NO_TEXT, Ordering::Relaxed),
            Some(text) => {
                let bytes = &text.as_bytes()[..text.len().min(CAPACITY)];
                self.len.store(text.len(), Ordering::Relaxed);
                for (word, chunk) in self.words.iter().zip(bytes.chunks(8)) {
                    let mut buffer = [0u8; 8];
                    buffer[..chunk.len()].copy_from_slice(chunk);
                    word.store(u64::from_le_bytes(buffer), Ordering::Relaxed);
                }
            }
        }
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The record as last published, whole; `None` if the writer kept rewriting it through
    /// every attempt.
    pub(crate) fn read(&self) -> Option<Snapshot> {
        for _ in 0..ATTEMPTS {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let number = self.number.load(Ordering::Relaxed);
            let len = self.len.load(Ordering::Relaxed);
            let text = (len != NO_TEXT).then(|| {
                let len = len.min(CAPACITY);
                let mut bytes: Vec<u8> = self.words[..len.div_ceil(8)]
                    .iter()
                    .flat_map(|word| word.load(Ordering::Relaxed).to_le_bytes())
                    .collect();
                bytes.truncate(len);
                bytes
            });
            // Orders the loads above before the check below: a write that overlapped them
            // shows as a changed sequence.
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                let text = text.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
                let cut = len != NO_TEXT && len > CAPACITY;
                return Some(Snapshot { number, text, cut });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn reads_what_was_published_last() {
        let published = Published::default();
        assert_eq!(
            published.read(),
            Some(Snapshot {
                number: 0,
                text: None,
                cut: false
            })
        );
        published.publish(3, Some("uid-1\0default\0web"));
        published.publish(4, Some("uid-2\0\0cluster-wide"));
        assert_eq!(
            published.read(),
            Some(Snapshot {
                number: 4,
                text: Some("uid-2\0\0cluster-wide".to_owned()),
                cut: false
            })
        );
        published.publish(5, None);
        assert_eq!(
            published.read(),
            Some(Snapshot {
                number: 5,
                text: None,
                cut: false
            })
        );
    }

    #[test]
    fn a_shorter_text_does_not_keep_the_tail_of_a_longer_one() {
        let published = Published::default();
        published.publish(1, Some(&"x".repeat(100)));
        published.publish(1, Some("short"));
        assert_eq!(published.read().unwrap().text.as_deref(), Some("short"));
        published.publish(1, Some(""));
        assert_eq!(published.read().unwrap().text.as_deref(), Some(""));
    }

    #[test]
    fn a_text_longer_than_the_record_is_cut_at_its_capacity() {
        let published = Published::default();
        let exact = "a".repeat(CAPACITY);
        published.publish(2, Some(&exact));
        let read = published.read().unwrap();
        assert_eq!((read.text.as_deref(), read.cut), (Some(exact.as_str()), false));
        let long = "é".repeat(CAPACITY);
        published.publish(2, Some(&long));
        let read = published.read().unwrap();
        let text = read.text.unwrap();
        assert!(read.cut);
        assert!(long.starts_with(text.trim_end_matches('\u{fffd}')));
        assert!(text.len() >= CAPACITY - 1);
    }

    /// A reader on another thread, while the writer rewrites the record again and again, never
    /// sees one write's number with another's text.
    #[test]
    fn a_reader_never_sees_a_torn_record() {
        let published = Arc::new(Published::default());
        let texts: Vec<String> = (0..8).map(|n| format!("{n}").repeat(n * 40 + 1)).collect();
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let (published, texts, done) = (Arc::clone(&published), texts.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut n = 0;
                while !done.load(Ordering::Relaxed) {
                    published.publish(n % 8, Some(&texts[n % 8]));
                    n += 1;
                    // As a worker does between handler calls; a writer that never pauses leaves
                    // a reader nothing whole to read (it gives up, as `read` says).
                    if n % 4 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let (mut whole, mut reads) = (0, 0);
        // Until enough whole reads came, overlapping writes in every way; bounded, should the
        // machine starve the writer.
        while whole < 2_000 && reads < 200_000 {
            reads += 1;
            match published.read() {
                Some(Snapshot {
                    number,
                    text: Some(text),
                    ..
                }) => {
                    assert_eq!(text, texts[number], "number {number} read with another write's text");
                    whole += 1;
                }
                // Before the first write.
                Some(Snapshot { number, text: None, .. }) => assert_eq!(number, 0),
                None => {}
            }
        }
        done.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        assert!(whole > 0, "no whole read in {reads} attempts");
    }
}
