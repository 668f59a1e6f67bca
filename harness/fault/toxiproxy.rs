//! A real Toxiproxy 2.x over its HTTP API.
