//! The Docker Swarm test (it/swarm.rs), a test binary of its own: joining
//! and leaving a swarm rebuilds Docker's networking, which would break the
//! published ports of the containers the other tests run at that moment,
//! and cargo runs test binaries one after another.

#[path = "it/support.rs"]
mod support;
#[path = "it/swarm.rs"]
mod swarm;
