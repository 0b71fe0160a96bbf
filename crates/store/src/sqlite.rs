//! SQLite implementation (being built).
