//! The one integration-test binary (ripgrep's habit): each module tests one
//! part against real sockets, real brokers and real processes.

#[macro_use]
#[path = "it/support.rs"]
mod support;

#[path = "it/bounds.rs"]
mod bounds;
#[path = "it/broker.rs"]
mod broker;
#[path = "it/browser.rs"]
mod browser;
#[path = "it/cli.rs"]
mod cli;
#[path = "it/containers.rs"]
mod containers;
#[path = "it/engine.rs"]
mod engine;
#[path = "it/figures.rs"]
mod figures;
#[path = "it/health.rs"]
mod health;
#[path = "it/html.rs"]
mod html;
#[path = "it/intervals.rs"]
mod intervals;
#[path = "it/merge.rs"]
mod merge;
#[path = "it/mqtt5.rs"]
mod mqtt5;
#[path = "it/nightly.rs"]
mod nightly;
#[path = "it/observer.rs"]
mod observer;
#[path = "it/own_clients.rs"]
mod own_clients;
#[path = "it/pitfalls.rs"]
mod pitfalls;
#[path = "it/proofs.rs"]
mod proofs;
#[path = "it/replay.rs"]
mod replay;
#[path = "it/run.rs"]
mod run;
#[path = "it/scenario.rs"]
mod scenario;
#[path = "it/schema.rs"]
mod schema;
#[path = "it/session.rs"]
mod session;
#[path = "it/shards.rs"]
mod shards;
#[path = "it/signoff.rs"]
mod signoff;
#[path = "it/subscription.rs"]
mod subscription;
#[path = "it/toxi_container.rs"]
mod toxi_container;
#[path = "it/toxiproxy.rs"]
mod toxiproxy;
#[path = "it/weather.rs"]
mod weather;
#[path = "it/window.rs"]
mod window;
#[path = "it/window_reports.rs"]
mod window_reports;
