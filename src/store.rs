//! SQLite history (placeholder until the daemon lands).
