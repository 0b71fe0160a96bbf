//! Configurations that are rejected: each error names file, line, column and
//! key, and suggests the fix. The rendered text is snapshotted.

use crate::support::{VALID, errors, load};

fn replace(from: &str, to: &str) -> String {
    assert!(
        VALID.contains(from),
        "the valid configuration should contain {from:?}"
    );
    VALID.replacen(from, to, 1)
}

#[test]
fn a_truncated_file_should_say_what_is_wrong_and_where() {
    let cut = VALID.find("object_types = [{ name = \"user\"").unwrap() + 30;
    insta::assert_snapshot!(errors(&VALID[..cut]));
}

#[test]
fn a_toml_syntax_error_in_the_middle_should_point_at_it() {
    insta::assert_snapshot!(errors(&replace("name = \"hr\"", "name = hr")));
}

#[test]
fn an_unknown_key_should_suggest_the_closest_valid_key() {
    insta::assert_snapshot!(errors(&replace("projection = [", "projections = [")));
}

#[test]
fn an_unknown_connector_type_should_list_the_known_types() {
    insta::assert_snapshot!(errors(&replace("type = \"csv\"", "type = \"ldap\"")));
}

#[test]
fn a_misspelt_connector_type_should_suggest_the_closest() {
    insta::assert_snapshot!(errors(&replace("type = \"jsonl\"", "type = \"json\"")));
}

#[test]
fn a_bad_connector_setting_should_be_reported_at_its_key() {
    insta::assert_snapshot!(errors(&replace(
        "path = \"data/hr.csv\" }",
        "path = \"data/hr.csv\", delimiter = \";;\" }"
    )));
}

#[test]
fn a_missing_connector_setting_should_be_reported_at_the_connector_table() {
    insta::assert_snapshot!(errors(&replace(
        "{ type = \"csv\", path = \"data/hr.csv\" }",
        "{ type = \"csv\" }"
    )));
}

#[test]
fn an_unknown_metaverse_attribute_in_a_flow_should_suggest_the_declared_one() {
    insta::assert_snapshot!(errors(&replace(
        "{ mv = \"email\", from = \"mail\" }",
        "{ mv = \"emial\", from = \"mail\" }"
    )));
}

#[test]
fn a_bad_expression_should_put_the_caret_on_the_offending_character() {
    let err = load(&replace(
        "expr = \"lower(email)\"",
        "expr = \"lowr(email)\"",
    ))
    .unwrap_err();
    insta::assert_snapshot!(err.to_string());
    // The span points inside the string: at `l` of `lowr`, not at the quote.
    let span = err.diagnostics()[0].span.unwrap();
    let source = replace("expr = \"lower(email)\"", "expr = \"lowr(email)\"");
    assert!(source[span.offset()..].starts_with("lowr"));
}

#[test]
fn a_syntax_error_inside_an_expression_should_point_at_the_character() {
    insta::assert_snapshot!(errors(&replace(
        "expr = \"lower(email)\"",
        "expr = \"lower(email\""
    )));
}

#[test]
fn a_flow_with_two_sources_should_name_both() {
    insta::assert_snapshot!(errors(&replace(
        "{ mv = \"employeeId\", from = \"employee_id\" }",
        "{ mv = \"employeeId\", from = \"employee_id\", expr = \"upper(employee_id)\" }"
    )));
}

#[test]
fn a_flow_without_a_source_should_say_which_keys_are_possible() {
    insta::assert_snapshot!(errors(&replace(
        "{ mv = \"email\", from = \"mail\" }",
        "{ mv = \"email\" }"
    )));
}

#[test]
fn a_missing_environment_variable_should_be_an_error_at_its_value() {
    insta::assert_snapshot!(errors(&replace("\"data/hr.csv\"", "\"${HR_DATA}/hr.csv\"")));
}

#[test]
fn an_unreadable_secret_file_should_be_an_error_at_its_key() {
    let text = replace(
        "path = \"data/hr.csv\" }",
        "path = \"data/hr.csv\", password_file = \"secrets/missing\" }",
    );
    let message = errors(&text);
    assert!(message.contains("cannot read secret file"), "{message}");
    assert!(message.contains("secrets/missing"), "{message}");
    assert!(message.starts_with("config.toml:10:"), "{message}");
}

#[test]
fn a_secret_given_twice_should_ask_to_keep_one() {
    let text = replace(
        "path = \"data/hr.csv\" }",
        "path = \"data/hr.csv\", password = \"x\", password_file = \"pw\" }",
    );
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn every_error_should_be_reported_together() {
    let text = VALID
        .replacen("projection = [", "projections = [", 1)
        .replacen("type = \"jsonl\"", "type = \"ldap\"", 1)
        .replacen(
            "{ mv = \"email\", from = \"mail\" }",
            "{ mv = \"emial\", from = \"mail\" }",
            1,
        )
        .replacen("expr = \"lower(email)\"", "expr = \"lowr(email)\"", 1)
        .replacen(
            "export_deletion_threshold = 200",
            "export_deletion_threshold = 0",
            1,
        )
        .replacen(
            "[\"directory\", \"hr\"]",
            "[\"directory\", \"hr\", \"payroll\"]",
            1,
        );
    let err = load(&text).unwrap_err();
    assert_eq!(err.errors().count(), 6, "{err}");
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn a_wrong_type_in_one_ma_should_not_hide_errors_in_another() {
    let text = VALID
        .replacen(
            "export_deletion_threshold = 200",
            "export_deletion_threshold = \"lots\"",
            1,
        )
        .replacen(
            "{ mv = \"employeeId\", from = \"employee_id\" }",
            "{ mv = \"employee\", from = \"employee_id\" }",
            1,
        );
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn duplicate_ma_names_should_point_at_the_second_and_mention_the_first() {
    insta::assert_snapshot!(errors(&replace("name = \"directory\"", "name = \"hr\"")));
}

#[test]
fn a_zero_export_deletion_threshold_should_suggest_off() {
    insta::assert_snapshot!(errors(&replace(
        "export_deletion_threshold = 200",
        "export_deletion_threshold = 0"
    )));
}

#[test]
fn a_misspelt_key_in_the_deletion_threshold_table_should_suggest_the_closest() {
    insta::assert_snapshot!(errors(&replace(
        "export_deletion_threshold = 200",
        "export_deletion_threshold = { count = 500, shar = \"10%\" }"
    )));
}

#[test]
fn a_wrong_value_in_the_deletion_threshold_table_should_be_reported_at_its_key() {
    insta::assert_snapshot!(errors(&replace(
        "export_deletion_threshold = 200",
        "export_deletion_threshold = { count = \"10%\", share = \"20%\" }"
    )));
}

#[test]
fn a_zero_max_value_size_should_name_the_key_and_the_default() {
    insta::assert_snapshot!(errors(&replace(
        "export_deletion_threshold = 200",
        "export_deletion_threshold = 200\nmax_value_size = 0"
    )));
}

#[test]
fn an_ambiguous_object_type_should_ask_for_it_and_list_the_choices() {
    insta::assert_snapshot!(errors(&replace(
        "object_types = [{ name = \"user\", anchor = \"uid\" }]",
        "object_types = [{ name = \"user\", anchor = \"uid\" }, { name = \"group\", anchor = \"gid\" }]"
    )));
}

#[test]
fn a_join_condition_with_cs_and_expr_should_be_rejected() {
    insta::assert_snapshot!(errors(&replace(
        "{ cs = \"employeeNumber\", mv = \"employeeId\" }",
        "{ cs = \"employeeNumber\", expr = \"trim(employeeNumber)\", mv = \"employeeId\" }"
    )));
}

#[test]
fn an_unknown_step_should_suggest_the_closest_step_type() {
    insta::assert_snapshot!(errors(&replace(
        "delta-sync = [\"delta-sync\"]",
        "delta-sync = [\"delta-synch\"]"
    )));
}

#[test]
fn an_empty_run_profile_should_be_rejected() {
    insta::assert_snapshot!(errors(&replace(
        "full-import = [\"full-import\"]",
        "full-import = []"
    )));
}

#[test]
fn an_equal_precedence_flow_loop_should_be_explained() {
    let text = VALID
        .replacen(
            "precedence = { email = [\"directory\", \"hr\"] }",
            "precedence = { email = \"equal\" }",
            1,
        )
        .replacen(
            "{ cs = \"cn\", from = \"displayName\" },",
            "{ cs = \"cn\", from = \"displayName\" },\n  { cs = \"mail\", from = \"email\" },",
            1,
        );
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn a_ranked_precedence_flow_back_should_not_be_called_a_loop() {
    let text = replace(
        "{ cs = \"cn\", from = \"displayName\" },",
        "{ cs = \"cn\", from = \"displayName\" },\n  { cs = \"mail\", from = \"email\" },",
    );
    assert!(load(&text).is_ok());
}

#[test]
fn an_unknown_metaverse_type_and_precedence_ma_should_suggest_names() {
    let text = VALID
        .replacen(
            "projection = [{ mv_type = \"person\" }]",
            "projection = [{ mv_type = \"persn\" }]",
            1,
        )
        .replacen("[\"directory\", \"hr\"]", "[\"directry\", \"hr\"]", 1);
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn the_fancy_rendering_should_show_the_source_line_and_the_help() {
    let err = load(&replace("projection = [", "projections = [")).unwrap_err();
    insta::assert_snapshot!(err.render_fancy(false));
}

#[test]
fn the_fancy_rendering_of_a_bad_expression_should_underline_the_character() {
    let err = load(&replace(
        "expr = \"lower(email)\"",
        "expr = \"lower(email) +\"",
    ))
    .unwrap_err();
    insta::assert_snapshot!(err.render_fancy(false));
}

#[test]
fn an_ordered_attribute_that_is_not_declared_should_suggest_the_declared_one() {
    insta::assert_snapshot!(errors(&replace(
        "precedence = { email = [\"directory\", \"hr\"] }",
        "precedence = { email = [\"directory\", \"hr\"] }\nordered = [\"emial\"]"
    )));
}

#[test]
fn the_any_connector_from_deletion_rule_without_mas_should_ask_for_them() {
    let rule = "precedence = { email = [\"directory\", \"hr\"] }\ndeletion";
    for (mas, at) in [("", "7:12"), (", mas = []", "7:49")] {
        let text = replace(
            "precedence = { email = [\"directory\", \"hr\"] }",
            &format!("{rule} = {{ rule = \"any-connector-from\"{mas} }}"),
        );
        let e = errors(&text);
        assert!(
            e.starts_with(&format!(
                "config.toml:{at}: metaverse > person > deletion > mas: \
                 rule `any-connector-from` needs `mas`"
            )),
            "{e}"
        );
        assert!(e.contains("help: e.g. `deletion = {"), "{e}");
        assert_eq!(e.lines().count(), 2, "{e}");
    }
}

#[test]
fn the_any_connector_from_deletion_rule_should_name_an_unknown_ma_and_suggest_one() {
    let text = replace(
        "precedence = { email = [\"directory\", \"hr\"] }",
        "precedence = { email = [\"directory\", \"hr\"] }\n\
         deletion = { rule = \"any-connector-from\", mas = [\"hr\", \"hrr\"] }",
    );
    let e = errors(&text);
    assert!(
        e.contains("metaverse > person > deletion > mas[1]: there is no MA named `hrr`"),
        "{e}"
    );
    assert!(e.contains("did you mean `hr`?"), "{e}");
    let ok = text.replace("\"hrr\"", "\"directory\"");
    assert!(load(&ok).is_ok(), "{:?}", load(&ok).err());
}

/// `mas` with a rule that reads none is refused (a MIM admin reads
/// `last-connector` with `mas` as "the last of these"; it was silently
/// ignored: a black-box review).
#[test]
fn a_deletion_rule_that_reads_no_mas_should_refuse_them() {
    for rule in ["last-connector", "never"] {
        let text = replace(
            "precedence = { email = [\"directory\", \"hr\"] }",
            &format!(
                "precedence = {{ email = [\"directory\", \"hr\"] }}\n\
                 deletion = {{ rule = \"{rule}\", mas = [\"hr\"] }}"
            ),
        );
        let e = errors(&text);
        assert!(
            e.contains(&format!(
                "metaverse > person > deletion > mas: rule `{rule}` reads no `mas`"
            )),
            "{e}"
        );
        assert!(e.contains("any-connector-from"), "{e}");
    }
    let default = replace(
        "precedence = { email = [\"directory\", \"hr\"] }",
        "precedence = { email = [\"directory\", \"hr\"] }\n\
         deletion = { rule = \"last-connector\" }",
    );
    assert!(load(&default).is_ok(), "{:?}", load(&default).err());
}
