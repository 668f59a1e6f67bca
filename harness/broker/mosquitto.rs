//! mosquitto broker backend.
