//! The listing state machine (placeholder until the daemon lands).
