//! The crate's integration tests, in one binary: a module per unit, named after it (`client_*`,
//! `manager*`, `store_*`, `middleware`, `cli`, `testing`, `httpmock`). Tests that change
//! process-wide state (environment variables, the global `tracing` subscriber) are binaries of
//! their own: `tests/proxy_env.rs`, `tests/tracing_secrets.rs`. The generation pipeline's tests
//! are `tests/codegen/`.

mod support;

mod cli;
mod client_errors;
mod client_fuzz;
mod client_hostile;
mod client_refresh;
mod client_spans;
mod client_transport;
mod httpmock;
mod manager;
mod manager_expiry;
mod manager_failures;
mod manager_keep_alive;
mod manager_leases;
#[cfg(feature = "metrics")]
mod manager_metrics;
mod manager_processes;
mod manager_rejections;
mod manager_store;
#[cfg(feature = "middleware")]
mod middleware;
mod store_file;
#[cfg(feature = "redis")]
mod store_redis;
#[cfg(feature = "redis")]
mod store_redis_cluster;
#[cfg(feature = "redis")]
mod store_redis_discovery;
#[cfg(feature = "redis")]
mod store_redis_durability;
#[cfg(feature = "redis")]
mod store_redis_fleet;
#[cfg(feature = "redis")]
mod store_redis_outage;
#[cfg(feature = "redis")]
mod store_redis_partition;
#[cfg(feature = "redis")]
mod store_redis_rollback;
#[cfg(feature = "redis")]
mod store_redis_sentinel;
mod testing;
