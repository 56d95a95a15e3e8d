//! The stores a shared-memory test runs against: the in-process store, and (feature `redis`) a
//! `redis-server` of the test's own. `on_both_stores!` runs each listed test once per store; the
//! including file declares `mod redis_server` (support/redis_server.rs) beside this module.
#![allow(dead_code)]

use memo_runtime::prelude::*;
use memo_runtime::store::InProcessStore;

/// Makes operators (replicas of a bot) on one store: for Redis, each with a connection of its
/// own, so that what passes here holds across processes.
#[derive(Clone)]
pub enum Stores {
    InProcess(InProcessStore),
    #[cfg(feature = "redis")]
    Redis(String),
}

impl Stores {
    pub fn label(&self) -> &'static str {
        match self {
            Stores::InProcess(_) => "in-process",
            #[cfg(feature = "redis")]
            Stores::Redis(_) => "redis",
        }
    }

    pub async fn operator(&self, bot: &str) -> Operator {
        let operator = Operator::new().name(bot).handle_signals(false);
        match self {
            Stores::InProcess(store) => operator.store(store.clone()),
            #[cfg(feature = "redis")]
            Stores::Redis(url) => operator.store(
                memo_runtime::store::RedisStore::connect(url)
                    .await
                    .expect("the test's redis-server answers"),
            ),
        }
    }

    pub async fn shared(&self, bot: &str) -> Shared {
        self.operator(bot).await.shared()
    }
}

/// Runs each listed test once per store.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Stores::InProcess(memo_runtime::store::InProcessStore::new())).await;
                }
            )*
        }

        #[cfg(feature = "redis")]
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(server) = super::redis_server::RedisServer::start() else { return };
                    super::$test(super::Stores::Redis(server.url())).await;
                }
            )*
        }
    };
}
