//! Nodes of one deployment in this process, on the machine's PostgreSQL
//! (a schema of their own, dropped by [`Cluster::stop`]) and Redis, as a
//! cluster runs behind a load balancer with no sticky sessions. Used by
//! tests/api/cluster.rs and tests/cluster_faults/.

use std::time::Duration;

use natter::chat::Secret;
use natter::store::StoreChoice;
use natter::store::postgres::PostgresOptions;

use crate::common::{Client, TestServer};
use crate::services::{drop_schema, fresh_schema, postgres_url, redis_url};

/// Running nodes and the schema they share.
pub struct Cluster {
    pub nodes: Vec<TestServer>,
    pub postgres: String,
    pub schema: String,
}

impl Cluster {
    /// Two nodes on the test's Redis, whose head checks are too rare to
    /// matter: what the tests see came through the bus.
    pub async fn start() -> Option<Cluster> {
        Cluster::start_with(2, |_, redis| redis.to_owned(), Duration::from_secs(60)).await
    }

    /// `n` nodes, node `i` on the bus `bus(i, the test's Redis)`, each
    /// checking the store's heads every `head_checks`.
    pub async fn start_with(
        n: usize,
        bus: impl Fn(usize, &str) -> String,
        head_checks: Duration,
    ) -> Option<Cluster> {
        Cluster::start_tuned(n, |i, redis, config| {
            config.bus = Some(Secret(bus(i, redis)));
            config.hub.head_check_interval = head_checks;
        })
        .await
    }

    /// `n` nodes on the test's PostgreSQL schema and Redis (presence grace
    /// 1 s, head checks every 60 s), then `tune(i, the test's Redis,
    /// node i's configuration)`; `None` after saying why when PostgreSQL
    /// or Redis is missing outside CI.
    pub async fn start_tuned(
        n: usize,
        tune: impl Fn(usize, &str, &mut natter::Config),
    ) -> Option<Cluster> {
        let postgres = postgres_url("the cluster test").await?;
        let redis = redis_url("the cluster test").await?;
        let schema = fresh_schema();
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mut options = PostgresOptions::new(&postgres);
            options.schema = Some(schema.clone());
            let tune = &tune;
            let redis = redis.as_str();
            nodes.push(
                TestServer::start_with(move |config: &mut natter::Config| {
                    config.store = StoreChoice::Postgres(options);
                    config.bus = Some(Secret(redis.to_owned()));
                    config.hub.presence_grace = Duration::from_secs(1);
                    config.hub.head_check_interval = Duration::from_secs(60);
                    tune(i, redis, config);
                })
                .await,
            );
        }
        // All subscribed before anyone sends.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Some(Cluster {
            nodes,
            postgres,
            schema,
        })
    }

    /// `client` with its requests going to node `n`.
    pub fn on(&self, n: usize, client: &Client) -> Client {
        let mut moved = client.clone();
        moved.base = self.nodes[n % self.nodes.len()].base.clone();
        moved
    }

    /// Stops every node and drops the schema.
    pub async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
        drop_schema(&self.postgres, &self.schema).await;
    }
}
