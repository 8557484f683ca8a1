//! The Gatehouse operator.
