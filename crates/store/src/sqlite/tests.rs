//! Tests that need the store's internals (a full disk simulated with max_page_count).
