//! The conformance suite: checks every [`Store`] implementation passes
//! (the SQLite store now, a PostgreSQL store later), so that the engine,
//! the controller and leases can rely on the contract whatever the store,
//! as connectors have their compliance suite.
//!
//! A store's tests describe it with a [`ConformanceTarget`] (how to make a
//! fresh, empty store and how to open a second handle on it, as a second
//! process would) and call the checks, each a plain function that panics
//! with a message saying what went wrong; [`CHECKS`] lists them all, so
//! that a store's tests can fail when the suite gains a check they lack:
//!
//! ```ignore
//! #[test]
//! fn connector_space_objects_should_read_back() {
//!     conformance::inserted_objects_should_read_back_equal_by_id_and_by_anchor(&target());
//! }
//! ```
//!
//! Covered: connector-space CRUD, filters and paging; the metaverse and
//! its join index (case folding, multi-values, derived keys); watermarks;
//! run history (write, list, trim); meta values and their
//! compare-and-set; the references that wait for the object they name
//! and the objects noted for their referrers; value rows (light reads,
//! value changes, lookups by value); transactions all or nothing
//! (dropped, failed, bulk); the parts of a bulk transaction; writers on
//! two handles; leases.
//!
//! Enabled by the `conformance` cargo feature (test support code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cs;
pub mod fixtures;
mod history;
mod mv;
mod refs;
mod refs_out;
mod rows;
mod rows_write;
mod txn;

use crate::api::Store;
use std::sync::Arc;

pub use cs::*;
pub use history::*;
pub use mv::*;
pub use refs::*;
pub use refs_out::*;
pub use rows::*;
pub use rows_write::*;
pub use txn::*;

/// A store implementation under test.
pub struct ConformanceTarget {
    /// Shown in assertion messages, e.g. `sqlite`.
    pub name: String,
    /// A fresh, empty store.
    pub fresh: Box<dyn Fn() -> FreshStore>,
}

/// A fresh store for one check.
pub struct FreshStore {
    pub store: Arc<dyn Store>,
    /// Another handle on the same store, as a second process opens it (its
    /// own connections and writer). Called while no transaction of `store`
    /// is open (opening may write).
    pub open_again: Box<dyn Fn() -> Arc<dyn Store>>,
    /// Whatever must live as long as the store (a temporary folder, say).
    pub keep: Box<dyn std::any::Any>,
}

/// A check of the suite.
pub type Check = (&'static str, fn(&ConformanceTarget));

/// Every check, by name.
pub const CHECKS: &[Check] = &[
    (
        "inserted_objects_should_read_back_equal_by_id_and_by_anchor",
        cs::inserted_objects_should_read_back_equal_by_id_and_by_anchor,
    ),
    (
        "inserting_an_existing_anchor_should_fail_as_invalid_and_name_it",
        cs::inserting_an_existing_anchor_should_fail_as_invalid_and_name_it,
    ),
    (
        "cs_by_anchors_should_return_every_existing_object_across_chunks",
        cs::cs_by_anchors_should_return_every_existing_object_across_chunks,
    ),
    (
        "cs_update_should_replace_the_object_and_move_it_between_filters",
        cs::cs_update_should_replace_the_object_and_move_it_between_filters,
    ),
    (
        "cs_update_of_a_missing_object_should_fail_as_invalid",
        cs::cs_update_of_a_missing_object_should_fail_as_invalid,
    ),
    (
        "cs_update_that_changes_the_anchor_should_be_found_by_the_new_anchor",
        cs::cs_update_that_changes_the_anchor_should_be_found_by_the_new_anchor,
    ),
    (
        "cs_delete_should_remove_the_object_everywhere",
        cs::cs_delete_should_remove_the_object_everywhere,
    ),
    (
        "cs_page_should_filter_by_ma_and_flag_in_id_order_with_paging",
        cs::cs_page_should_filter_by_ma_and_flag_in_id_order_with_paging,
    ),
    (
        "one_count_and_the_pending_deletes_should_agree_with_the_objects",
        cs::one_count_and_the_pending_deletes_should_agree_with_the_objects,
    ),
    (
        "cs_by_mv_should_return_connectors_of_every_ma",
        cs::cs_by_mv_should_return_connectors_of_every_ma,
    ),
    (
        "ids_should_never_be_reused_after_a_delete",
        cs::ids_should_never_be_reused_after_a_delete,
    ),
    (
        "cs_page_ids_should_list_the_ids_cs_page_returns",
        cs::cs_page_ids_should_list_the_ids_cs_page_returns,
    ),
    (
        "cs_by_mvs_should_return_the_connectors_of_every_listed_mv_object_in_id_order",
        cs::cs_by_mvs_should_return_the_connectors_of_every_listed_mv_object_in_id_order,
    ),
    (
        "mv_objects_should_read_back_equal_singly_and_in_batches",
        mv::mv_objects_should_read_back_equal_singly_and_in_batches,
    ),
    (
        "mv_get_many_should_handle_more_ids_than_one_query_takes",
        mv::mv_get_many_should_handle_more_ids_than_one_query_takes,
    ),
    (
        "mv_find_should_match_indexed_values_as_text_including_each_of_a_multi_value",
        mv::mv_find_should_match_indexed_values_as_text_including_each_of_a_multi_value,
    ),
    (
        "mv_find_on_an_attribute_that_is_not_indexed_should_fail_as_invalid",
        mv::mv_find_on_an_attribute_that_is_not_indexed_should_fail_as_invalid,
    ),
    (
        "mv_update_and_delete_should_keep_the_index_in_step",
        mv::mv_update_and_delete_should_keep_the_index_in_step,
    ),
    (
        "set_mv_index_should_build_new_pairs_from_existing_objects_and_drop_removed_ones",
        mv::set_mv_index_should_build_new_pairs_from_existing_objects_and_drop_removed_ones,
    ),
    (
        "the_index_set_should_be_kept_for_another_handle",
        mv::the_index_set_should_be_kept_for_another_handle,
    ),
    (
        "mv_page_should_filter_by_type_and_attribute_indexed_or_not",
        mv::mv_page_should_filter_by_type_and_attribute_indexed_or_not,
    ),
    (
        "mv_page_should_compare_exactly_when_case_sensitive_and_mv_page_ids_should_agree",
        mv::mv_page_should_compare_exactly_when_case_sensitive_and_mv_page_ids_should_agree,
    ),
    (
        "mv_find_many_should_say_which_value_found_which_object_across_chunks",
        mv::mv_find_many_should_say_which_value_found_which_object_across_chunks,
    ),
    (
        "an_update_should_write_only_the_keys_that_changed_and_follow_type_changes",
        mv::an_update_should_write_only_the_keys_that_changed_and_follow_type_changes,
    ),
    (
        "mv_find_should_ignore_the_case_of_strings_but_not_of_binary_data",
        mv::mv_find_should_ignore_the_case_of_strings_but_not_of_binary_data,
    ),
    (
        "a_derived_index_should_find_objects_by_the_key_it_computes_as_they_change",
        mv::a_derived_index_should_find_objects_by_the_key_it_computes_as_they_change,
    ),
    (
        "a_handle_that_did_not_declare_a_derived_index_should_refuse_to_write_its_type",
        mv::a_handle_that_did_not_declare_a_derived_index_should_refuse_to_write_its_type,
    ),
    (
        "runs_should_read_back_and_list_most_recent_first_per_ma",
        history::runs_should_read_back_and_list_most_recent_first_per_ma,
    ),
    (
        "runs_page_should_skip_the_most_recent_and_run_count_should_count_them",
        history::runs_page_should_skip_the_most_recent_and_run_count_should_count_them,
    ),
    (
        "run_update_should_replace_the_record_and_fail_for_a_missing_one",
        history::run_update_should_replace_the_record_and_fail_for_a_missing_one,
    ),
    (
        "run_errors_should_be_listed_per_run_in_order_up_to_the_limit",
        history::run_errors_should_be_listed_per_run_in_order_up_to_the_limit,
    ),
    (
        "run_changes_should_read_back_per_run_in_order_and_page_by_offset",
        history::run_changes_should_read_back_per_run_in_order_and_page_by_offset,
    ),
    (
        "trim_runs_should_delete_runs_ended_before_the_cutoff_with_their_errors",
        history::trim_runs_should_delete_runs_ended_before_the_cutoff_with_their_errors,
    ),
    (
        "watermarks_and_meta_values_should_be_set_replaced_and_cleared",
        history::watermarks_and_meta_values_should_be_set_replaced_and_cleared,
    ),
    (
        "compare_and_set_meta_should_change_only_the_value_it_expects",
        history::compare_and_set_meta_should_change_only_the_value_it_expects,
    ),
    (
        "compare_and_set_meta_should_have_one_winner_among_handles",
        history::compare_and_set_meta_should_have_one_winner_among_handles,
    ),
    (
        "ref_waits_set_should_replace_the_waits_and_ref_waiting_page_should_list_referrers_of_one_ma",
        refs::ref_waits_set_should_replace_the_waits_and_ref_waiting_page_should_list_referrers_of_one_ma,
    ),
    (
        "ref_in_ready_should_list_a_referrer_once_the_object_it_names_is_there_and_joined",
        refs::ref_in_ready_should_list_a_referrer_once_the_object_it_names_is_there_and_joined,
    ),
    (
        "ref_out_waits_set_should_replace_only_the_waits_of_its_ma_and_an_empty_ma_should_clear_all",
        refs_out::ref_out_waits_set_should_replace_only_the_waits_of_its_ma_and_an_empty_ma_should_clear_all,
    ),
    (
        "ref_out_ready_should_list_a_referrer_once_its_target_has_a_connector_on_the_ma_it_waits_for",
        refs_out::ref_out_ready_should_list_a_referrer_once_its_target_has_a_connector_on_the_ma_it_waits_for,
    ),
    (
        "ref_out_sendable_count_should_count_referrers_whose_connector_on_via_has_no_add_to_send",
        refs_out::ref_out_sendable_count_should_count_referrers_whose_connector_on_via_has_no_add_to_send,
    ),
    (
        "ref_out_waiting_page_should_list_the_connectors_of_the_target_ma_whose_references_wait",
        refs_out::ref_out_waiting_page_should_list_the_connectors_of_the_target_ma_whose_references_wait,
    ),
    (
        "ref_touched_should_keep_a_deletion_noted_list_in_id_order_and_clear_only_the_given_ids",
        refs::ref_touched_should_keep_a_deletion_noted_list_in_id_order_and_clear_only_the_given_ids,
    ),
    (
        "reference_writes_should_be_read_in_their_transaction_and_kept_or_dropped_with_it",
        refs::reference_writes_should_be_read_in_their_transaction_and_kept_or_dropped_with_it,
    ),
    (
        "a_reader_should_see_committed_data_while_a_write_transaction_is_open",
        txn::a_reader_should_see_committed_data_while_a_write_transaction_is_open,
    ),
    (
        "dropping_a_transaction_without_commit_should_discard_all_its_writes",
        txn::dropping_a_transaction_without_commit_should_discard_all_its_writes,
    ),
    (
        "a_failed_bulk_transaction_should_leave_nothing",
        txn::a_failed_bulk_transaction_should_leave_nothing,
    ),
    (
        "parts_of_a_bulk_transaction_should_commit_one_by_one_and_read_their_own_writes",
        txn::parts_of_a_bulk_transaction_should_commit_one_by_one_and_read_their_own_writes,
    ),
    (
        "writers_on_two_handles_should_all_land",
        txn::writers_on_two_handles_should_all_land,
    ),
    (
        "a_writer_on_another_handle_should_land_beside_a_bulk_transaction",
        txn::a_writer_on_another_handle_should_land_beside_a_bulk_transaction,
    ),
    (
        "a_lease_should_have_one_holder_across_handles",
        txn::a_lease_should_have_one_holder_across_handles,
    ),
    (
        "a_row_attribute_of_5000_values_should_read_back_whole_by_every_read",
        rows::a_row_attribute_of_5000_values_should_read_back_whole_by_every_read,
    ),
    (
        "a_light_read_should_give_the_placeholder_and_a_light_object_written_back_should_keep_the_rows",
        rows::a_light_read_should_give_the_placeholder_and_a_light_object_written_back_should_keep_the_rows,
    ),
    (
        "a_multi_value_should_replace_the_rows_and_a_single_or_absent_one_delete_them",
        rows_write::a_multi_value_should_replace_the_rows_and_a_single_or_absent_one_delete_them,
    ),
    (
        "value_changes_should_add_and_remove_values_and_be_idempotent",
        rows_write::value_changes_should_add_and_remove_values_and_be_idempotent,
    ),
    (
        "mv_find_on_a_row_attribute_should_answer_from_the_rows_exactly",
        rows::mv_find_on_a_row_attribute_should_answer_from_the_rows_exactly,
    ),
    (
        "deleting_an_object_should_delete_its_rows",
        rows_write::deleting_an_object_should_delete_its_rows,
    ),
    (
        "an_object_should_read_whole_whatever_the_declaration_said_when_it_was_written",
        rows::an_object_should_read_whole_whatever_the_declaration_said_when_it_was_written,
    ),
    (
        "pending_values_should_round_trip",
        rows::pending_values_should_round_trip,
    ),
    (
        "an_update_that_does_not_name_a_row_attribute_should_read_whole_with_it_unchanged",
        rows::an_update_that_does_not_name_a_row_attribute_should_read_whole_with_it_unchanged,
    ),
    (
        "a_rolled_back_transaction_should_leave_the_rows_as_they_were",
        rows_write::a_rolled_back_transaction_should_leave_the_rows_as_they_were,
    ),
    (
        "an_update_should_clear_the_rows_an_object_gained_since_it_was_read",
        rows_write::an_update_should_clear_the_rows_an_object_gained_since_it_was_read,
    ),
];

/// Runs every check on `t`.
pub fn run_all(t: &ConformanceTarget) {
    for (_, check) in CHECKS {
        check(t);
    }
}
