//! The store conformance suite (`autosync_store::conformance`) against the
//! SQLite store: one test per check on a fresh store in a temporary
//! folder, and a test that fails when the suite has a check this list
//! lacks. Then what only the SQLite store promises: data kept across
//! closing and reopening the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use autosync_store::Store;
use autosync_store::conformance::{ConformanceTarget, FreshStore};
use autosync_store::sqlite::SqliteStore;
use common::*;
use std::sync::Arc;

fn sqlite() -> ConformanceTarget {
    ConformanceTarget {
        name: "sqlite".into(),
        fresh: Box::new(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state").join("store.db");
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
            FreshStore {
                store,
                open_again: Box::new(move || Arc::new(SqliteStore::open(&path).unwrap())),
                keep: Box::new(dir),
            }
        }),
    }
}

macro_rules! conformance_suite {
    ($($check:ident),* $(,)?) => {
        mod suite {
            $(
                #[test]
                fn $check() {
                    autosync_store::conformance::$check(&super::sqlite());
                }
            )*

            #[test]
            fn every_check_of_the_suite_should_have_its_test() {
                let tested = [$(stringify!($check)),*];
                let suite: Vec<&str> = autosync_store::conformance::CHECKS
                    .iter()
                    .map(|c| c.0)
                    .collect();
                assert_eq!(tested.to_vec(), suite);
            }
        }
    };
}

conformance_suite!(
    inserted_objects_should_read_back_equal_by_id_and_by_anchor,
    inserting_an_existing_anchor_should_fail_as_invalid_and_name_it,
    cs_by_anchors_should_return_every_existing_object_across_chunks,
    cs_update_should_replace_the_object_and_move_it_between_filters,
    cs_update_of_a_missing_object_should_fail_as_invalid,
    cs_update_that_changes_the_anchor_should_be_found_by_the_new_anchor,
    cs_delete_should_remove_the_object_everywhere,
    cs_page_should_filter_by_ma_and_flag_in_id_order_with_paging,
    one_count_and_the_pending_deletes_should_agree_with_the_objects,
    cs_by_mv_should_return_connectors_of_every_ma,
    ids_should_never_be_reused_after_a_delete,
    cs_page_ids_should_list_the_ids_cs_page_returns,
    cs_by_mvs_should_return_the_connectors_of_every_listed_mv_object_in_id_order,
    mv_objects_should_read_back_equal_singly_and_in_batches,
    mv_get_many_should_handle_more_ids_than_one_query_takes,
    mv_find_should_match_indexed_values_as_text_including_each_of_a_multi_value,
    mv_find_on_an_attribute_that_is_not_indexed_should_fail_as_invalid,
    mv_update_and_delete_should_keep_the_index_in_step,
    set_mv_index_should_build_new_pairs_from_existing_objects_and_drop_removed_ones,
    the_index_set_should_be_kept_for_another_handle,
    mv_page_should_filter_by_type_and_attribute_indexed_or_not,
    mv_page_should_compare_exactly_when_case_sensitive_and_mv_page_ids_should_agree,
    mv_find_many_should_say_which_value_found_which_object_across_chunks,
    an_update_should_write_only_the_keys_that_changed_and_follow_type_changes,
    mv_find_should_ignore_the_case_of_strings_but_not_of_binary_data,
    a_derived_index_should_find_objects_by_the_key_it_computes_as_they_change,
    a_handle_that_did_not_declare_a_derived_index_should_refuse_to_write_its_type,
    runs_should_read_back_and_list_most_recent_first_per_ma,
    runs_page_should_skip_the_most_recent_and_run_count_should_count_them,
    run_update_should_replace_the_record_and_fail_for_a_missing_one,
    run_errors_should_be_listed_per_run_in_order_up_to_the_limit,
    run_changes_should_read_back_per_run_in_order_and_page_by_offset,
    trim_runs_should_delete_runs_ended_before_the_cutoff_with_their_errors,
    watermarks_and_meta_values_should_be_set_replaced_and_cleared,
    compare_and_set_meta_should_change_only_the_value_it_expects,
    compare_and_set_meta_should_have_one_winner_among_handles,
    ref_waits_set_should_replace_the_waits_and_ref_waiting_page_should_list_referrers_of_one_ma,
    ref_in_ready_should_list_a_referrer_once_the_object_it_names_is_there_and_joined,
    ref_out_waits_set_should_replace_only_the_waits_of_its_ma_and_an_empty_ma_should_clear_all,
    ref_out_ready_should_list_a_referrer_once_its_target_has_a_connector_on_the_ma_it_waits_for,
    ref_out_sendable_count_should_count_referrers_whose_connector_on_via_has_no_add_to_send,
    ref_out_waiting_page_should_list_the_connectors_of_the_target_ma_whose_references_wait,
    ref_touched_should_keep_a_deletion_noted_list_in_id_order_and_clear_only_the_given_ids,
    reference_writes_should_be_read_in_their_transaction_and_kept_or_dropped_with_it,
    a_reader_should_see_committed_data_while_a_write_transaction_is_open,
    dropping_a_transaction_without_commit_should_discard_all_its_writes,
    a_failed_bulk_transaction_should_leave_nothing,
    parts_of_a_bulk_transaction_should_commit_one_by_one_and_read_their_own_writes,
    writers_on_two_handles_should_all_land,
    a_writer_on_another_handle_should_land_beside_a_bulk_transaction,
    a_lease_should_have_one_holder_across_handles,
    a_row_attribute_of_5000_values_should_read_back_whole_by_every_read,
    a_light_read_should_give_the_placeholder_and_a_light_object_written_back_should_keep_the_rows,
    a_multi_value_should_replace_the_rows_and_a_single_or_absent_one_delete_them,
    value_changes_should_add_and_remove_values_and_be_idempotent,
    mv_find_on_a_row_attribute_should_answer_from_the_rows_exactly,
    deleting_an_object_should_delete_its_rows,
    an_object_should_read_whole_whatever_the_declaration_said_when_it_was_written,
    pending_values_should_round_trip,
    an_update_that_does_not_name_a_row_attribute_should_read_whole_with_it_unchanged,
    a_rolled_back_transaction_should_leave_the_rows_as_they_were,
    an_update_should_clear_the_rows_an_object_gained_since_it_was_read,
);

#[test]
fn objects_should_survive_closing_and_reopening_the_store() {
    let t = store();
    let path = t.store.path().to_path_buf();
    t.store
        .set_mv_index(&[autosync_store::MvIndexDef::attribute("person", "mail")])
        .unwrap();
    let mut txn = t.store.begin().unwrap();
    let mut o = with_pending_import(cs("hr", "a"));
    txn.cs_insert(&mut o).unwrap();
    let mut m = mv("person", &[("mail", "a@x".into())]);
    txn.mv_insert(&mut m).unwrap();
    txn.commit().unwrap();
    drop(t.store);
    let reopened = SqliteStore::open(&path).unwrap();
    let mut r = reopened.read().unwrap();
    assert_eq!(r.cs_get(o.id).unwrap(), Some(o));
    assert_eq!(r.mv_find("person", "mail", &"A@X".into()).unwrap(), [m.id]);
}
