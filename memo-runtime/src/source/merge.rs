//! Several sources read as one: each is pumped by a task of its own into one channel, so that a
//! source of any kind (a channel, a parser, a stream) is read while the others wait.

use super::EventSource;
use crate::api::error::{Error, Result};
use crate::api::event::Event;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Events waiting in the merged channel: enough to keep the loop busy, little enough that a fast
/// source cannot run far ahead of the handlers.
const CAPACITY: usize = 1024;

pub(crate) struct Merged {
    /// The sources, until the first read starts their pumps (there is a runtime then).
    waiting: Vec<EventSource>,
    events: Option<mpsc::Receiver<Result<Option<Event>>>>,
    pumps: Vec<JoinHandle<()>>,
    /// A failure `try_next` came upon, for `next` to report.
    failure: Option<Error>,
    ended: bool,
}

impl Merged {
    pub(crate) fn new(sources: Vec<EventSource>) -> Self {
        Merged {
            waiting: sources,
            events: None,
            pumps: Vec::new(),
            failure: None,
            ended: false,
        }
    }

    fn started(&mut self) -> &mut mpsc::Receiver<Result<Option<Event>>> {
        self.events.get_or_insert_with(|| {
            let (sender, receiver) = mpsc::channel(CAPACITY);
            for mut source in self.waiting.drain(..) {
                let sender = sender.clone();
                self.pumps.push(tokio::spawn(async move {
                    loop {
                        let item = source.next_or_failure().await;
                        let last = !matches!(item, Ok(Some(_)));
                        // The merged source is gone, or this one ended: nothing more to pump.
                        if matches!(item, Ok(None)) || sender.send(item).await.is_err() || last {
                            return;
                        }
                    }
                }));
            }
            receiver
        })
    }

    /// The next event, `Ok(None)` once every source ended, or the first failure.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>> {
        if let Some(err) = self.failure.take() {
            self.end();
            return Err(err);
        }
        if self.ended {
            return Ok(None);
        }
        match self.started().recv().await {
            Some(Ok(Some(event))) => Ok(Some(event)),
            Some(Err(err)) => {
                self.end();
                Err(err)
            }
            Some(Ok(None)) | None => {
                self.end();
                Ok(None)
            }
        }
    }

    pub(crate) fn try_next(&mut self) -> Option<Event> {
        if self.ended || self.events.is_none() {
            return None;
        }
        match self.started().try_recv() {
            Ok(Ok(Some(event))) => Some(event),
            Ok(Err(err)) => {
                self.failure = Some(err);
                None
            }
            // Nothing yet, or the end: `next` finds out.
            Ok(Ok(None)) | Err(_) => None,
        }
    }

    fn end(&mut self) {
        self.ended = true;
        self.stop_pumps();
    }

    fn stop_pumps(&mut self) {
        for pump in self.pumps.drain(..) {
            pump.abort();
        }
    }
}

impl Drop for Merged {
    /// A pump waiting on its source (a silent watch) must not outlive the merged source.
    fn drop(&mut self) {
        self.stop_pumps();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{channel, json_reader};
    use serde_json::json;

    fn pod(name: &str) -> Event {
        Event::added(json!({"kind": "Pod", "metadata": {"name": name}}))
    }

    #[tokio::test]
    async fn every_event_of_every_source_in_each_sources_order() {
        let (a, a_source) = channel(4);
        let (b, b_source) = channel(4);
        let mut merged = Merged::new(vec![a_source, b_source]);
        let feed = tokio::spawn(async move {
            for n in 0..50 {
                a.send(pod(&format!("a{n}"))).await.unwrap();
                b.send(pod(&format!("b{n}"))).await.unwrap();
            }
        });
        let mut seen = Vec::new();
        while let Some(event) = merged.next().await.unwrap() {
            seen.push(event.name().unwrap().to_owned());
        }
        feed.await.unwrap();
        for prefix in ["a", "b"] {
            let order: Vec<&String> = seen.iter().filter(|name| name.starts_with(prefix)).collect();
            let expected: Vec<String> = (0..50).map(|n| format!("{prefix}{n}")).collect();
            assert_eq!(order, expected.iter().collect::<Vec<_>>());
        }
    }

    struct Broken;

    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("watch broke"))
        }
    }

    #[tokio::test]
    async fn one_failing_source_fails_the_merge() {
        let (_open, quiet) = channel(1);
        let mut merged = Merged::new(vec![quiet, json_reader(Broken)]);
        let err = merged.next().await.unwrap_err();
        assert!(err.to_string().contains("watch broke"), "{err}");
        assert!(merged.next().await.unwrap().is_none(), "and then it has ended");
    }
}
