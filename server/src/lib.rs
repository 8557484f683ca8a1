//! The Gatehouse token server.
