//! The in-memory store passes the same contract as the DynamoDB one (`tests/store.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use revscale_engine::testing::MemoryStore;
use revscale_test_support::store_contract::*;

#[test]
fn a_days_snapshot_is_written_once_in_memory_and_a_replay_changes_nothing() {
    pollster::block_on(a_days_snapshot_is_written_once_and_a_replay_changes_nothing(&MemoryStore::default()));
}

#[test]
fn in_memory_history_is_a_bounded_query_of_revenue_days_with_their_cost() {
    pollster::block_on(history_is_a_bounded_query_of_revenue_days_with_their_cost_when_collected(
        &MemoryStore::default(),
    ));
}

#[test]
fn a_backfilled_snapshot_never_overwrites_a_collected_day_in_memory_and_history_carries_its_mark() {
    pollster::block_on(a_backfilled_snapshot_never_overwrites_a_collected_day_and_history_carries_its_mark(
        &MemoryStore::default(),
    ));
}

#[test]
fn in_memory_state_writes_are_versioned_and_a_stale_writer_gets_a_conflict() {
    pollster::block_on(
        state_writes_are_versioned_and_a_stale_writer_gets_a_conflict(&MemoryStore::default()),
    );
}

#[test]
fn the_in_memory_audit_trail_is_append_only_and_read_newest_first() {
    pollster::block_on(the_audit_trail_is_append_only_and_read_newest_first(&MemoryStore::default()));
}

#[test]
fn the_in_memory_audit_trail_pages_backwards_from_a_cursor() {
    pollster::block_on(the_audit_trail_pages_backwards_from_a_cursor(&MemoryStore::default()));
}

#[test]
fn a_replayed_invocation_writes_nothing_in_memory() {
    pollster::block_on(a_replayed_invocation_writes_nothing(&MemoryStore::default()));
}

#[test]
fn the_in_memory_audit_trail_is_in_time_order_whoever_wrote_it() {
    pollster::block_on(the_audit_trail_is_in_time_order_whoever_wrote_it(&MemoryStore::default()));
}
