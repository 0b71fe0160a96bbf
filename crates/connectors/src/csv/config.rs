//! Settings of the CSV connector and their validation.

use crate::settings::{self, KeyHelp, ObjectTypes, Settings, error};
use autosync_connector::{BuildContext, SettingError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The `connector` table of a `type = "csv"` MA.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// The CSV file (relative to the configuration file's folder).
    pub path: PathBuf,
    /// Field delimiter, one ASCII character (default `,`).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Only `utf-8`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Separator of values in multi-valued columns, e.g. `;`.
    #[serde(default)]
    pub multi_value_separator: Option<String>,
    /// Columns whose cells hold several values.
    #[serde(default)]
    pub multi_valued: Vec<String>,
    /// Objects per import batch (default 5000).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Column order of exported files.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Column holding each row's object type.
    #[serde(default)]
    pub object_type_column: Option<String>,
    /// The most lines one record may span (line breaks in quoted fields);
    /// a quoted field running longer is judged unclosed (default 100).
    #[serde(default)]
    pub max_record_lines: Option<u64>,
    /// One object per distinct value of this column (read only).
    #[serde(default)]
    pub group_by: Option<String>,
    /// With `group_by`: each attribute of a group and the column whose
    /// values over the group's rows it collects.
    #[serde(default)]
    pub group_values: BTreeMap<String, String>,
}

pub const KEYS: &[KeyHelp] = &[
    KeyHelp {
        key: "path",
        help: "the CSV file, e.g. path = \"data/hr.csv\" (relative to the configuration file)",
    },
    KeyHelp {
        key: "delimiter",
        help: "one ASCII character, e.g. delimiter = \";\" (default \",\")",
    },
    KeyHelp {
        key: "encoding",
        help: "only encoding = \"utf-8\" is supported",
    },
    KeyHelp {
        key: "multi_value_separator",
        help: "the separator inside multi-valued cells, e.g. multi_value_separator = \";\"",
    },
    KeyHelp {
        key: "multi_valued",
        help: "the multi-valued columns, e.g. multi_valued = [\"groups\"]",
    },
    KeyHelp {
        key: "batch_size",
        help: "objects per import batch, 1 to 1000000 (default 5000)",
    },
    KeyHelp {
        key: "columns",
        help: "column order of the exported file, e.g. columns = [\"id\", \"name\"]",
    },
    KeyHelp {
        key: "object_type_column",
        help: "the column naming each row's object type (needed with several object types)",
    },
    KeyHelp {
        key: "max_record_lines",
        help: "the most lines a record may span through quoted line breaks, 1 to 1000000 (default 100)",
    },
    KeyHelp {
        key: "group_by",
        help: "one object per distinct value of this column, e.g. group_by = \"department\" (the MA then only imports; its object type's anchor is this column)",
    },
    KeyHelp {
        key: "group_values",
        help: "with group_by: attributes collecting a column's values over each group's rows, e.g. group_values = { members = \"employee_id\" }",
    },
];

const GROUP_BY: usize = 9;
const GROUP_VALUES: usize = 10;

/// The validated settings, with paths resolved.
#[derive(Clone, Debug)]
pub struct CsvSettings {
    pub path: PathBuf,
    pub delimiter: u8,
    pub separator: Option<String>,
    pub multi_valued: Vec<String>,
    pub batch_size: usize,
    pub columns: Option<Vec<String>>,
    pub types: ObjectTypes,
    /// The most lines a record may span (see `quotes`).
    pub max_record_lines: u64,
    /// `group_by`: one object per distinct value of a column.
    pub grouping: Option<Grouping>,
}

/// A file read as groups of rows (`group_by`, `group_values`): one object
/// per distinct non-empty value of `by`, anchored by it, whose attributes
/// are that value (as `by`) and, for each `(attribute, column)` of
/// `values`, the distinct values of the column over the group's rows.
#[derive(Clone, Debug)]
pub struct Grouping {
    pub by: String,
    pub values: BTreeMap<String, String>,
}

pub const DEFAULT_BATCH_SIZE: usize = 5000;

/// How many lines a record may span by default: a quoted field that runs
/// longer is judged unclosed.
pub const DEFAULT_MAX_RECORD_LINES: u64 = 100;

impl CsvSettings {
    /// Parse and check everything; one error per problem.
    pub fn from_settings(
        map: &Settings,
        ctx: &BuildContext,
    ) -> Result<CsvSettings, Vec<SettingError>> {
        let config: CsvConfig = settings::parse(map, KEYS, &["path"])?;
        let mut errors = Vec::new();
        if config.path.as_os_str().is_empty() {
            errors.push(error("path", "`path` is empty", Some(KEYS[0].help.into())));
        }
        let delimiter = match config.delimiter.as_deref() {
            None => b',',
            Some(d) if d.len() == 1 && d.is_ascii() && !matches!(d, "\"" | "\n" | "\r") => {
                d.as_bytes()[0]
            }
            Some(d) => {
                errors.push(error(
                    "delimiter",
                    &format!("delimiter {d:?} is not one ASCII character (other than a quote or a line break)"),
                    Some(KEYS[1].help.into()),
                ));
                b','
            }
        };
        if let Some(enc) = &config.encoding
            && !matches!(enc.to_ascii_lowercase().as_str(), "utf-8" | "utf8")
        {
            errors.push(error(
                "encoding",
                &format!("encoding {enc:?} is not supported"),
                Some("convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8) and set encoding = \"utf-8\"".into()),
            ));
        }
        match (
            &config.multi_value_separator,
            config.multi_valued.is_empty(),
        ) {
            (Some(s), _) if s.is_empty() || s.as_bytes().contains(&delimiter) => {
                errors.push(error(
                    "multi_value_separator",
                    &format!("separator {s:?} is empty or contains the delimiter"),
                    Some(KEYS[3].help.into()),
                ))
            }
            (None, false) => errors.push(error(
                "multi_value_separator",
                "`multi_valued` columns need a `multi_value_separator`",
                Some(KEYS[3].help.into()),
            )),
            (Some(_), true) => errors.push(error(
                "multi_valued",
                "`multi_value_separator` is set but no column is listed in `multi_valued`",
                Some(KEYS[4].help.into()),
            )),
            _ => {}
        }
        errors.extend(settings::check_batch_size(config.batch_size));
        if let Some(n) = config.max_record_lines
            && !(1..=1_000_000).contains(&n)
        {
            errors.push(error(
                "max_record_lines",
                &format!("max_record_lines = {n} is out of range"),
                Some(
                    "the most lines a record may span, 1 to 1000000, e.g. max_record_lines = 100"
                        .into(),
                ),
            ));
        }
        errors.extend(settings::check_object_types(
            ctx,
            config.object_type_column.as_deref(),
        ));
        let grouping = grouping(&config, ctx, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CsvSettings {
            path: settings::resolve(ctx, &config.path),
            delimiter,
            separator: config.multi_value_separator,
            multi_valued: config.multi_valued,
            batch_size: config.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            columns: config.columns,
            types: ObjectTypes::new(ctx, config.object_type_column),
            max_record_lines: config.max_record_lines.unwrap_or(DEFAULT_MAX_RECORD_LINES),
            grouping,
        })
    }

    pub fn is_multi_valued(&self, column: &str) -> bool {
        self.multi_valued.iter().any(|c| c == column)
    }
}

/// Check `group_by` and `group_values` (pushing one error per problem).
fn grouping(
    config: &CsvConfig,
    ctx: &BuildContext,
    errors: &mut Vec<SettingError>,
) -> Option<Grouping> {
    let help = || Some(KEYS[GROUP_BY].help.to_owned());
    let Some(by) = &config.group_by else {
        if !config.group_values.is_empty() {
            errors.push(error(
                "group_values",
                "`group_values` needs `group_by` (the column whose values make the groups)",
                help(),
            ));
        }
        return None;
    };
    let before = errors.len();
    if by.trim().is_empty() {
        errors.push(error("group_by", "`group_by` is empty", help()));
    }
    if config.object_type_column.is_some() {
        errors.push(error(
            "group_by",
            "`group_by` makes objects of one type: it cannot be used with `object_type_column`",
            help(),
        ));
    }
    match ctx.object_types.as_slice() {
        [t] if t.anchor == *by => {}
        [t] => errors.push(error(
            "group_by",
            &format!(
                "the anchor of object type `{}` is `{}`, but a group is anchored by its \
                 `group_by` column `{by}`",
                t.name, t.anchor
            ),
            Some(format!(
                "object_types = [{{ name = \"{}\", anchor = \"{by}\" }}]",
                t.name
            )),
        )),
        _ => errors.push(error(
            "group_by",
            "`group_by` makes objects of one type: give the MA one object type",
            help(),
        )),
    }
    for (attr, column) in &config.group_values {
        if attr == by || column.trim().is_empty() {
            errors.push(error(
                "group_values",
                &format!(
                    "`{attr} = {column:?}`: the attribute must differ from the `group_by` \
                     column and the column must not be empty"
                ),
                Some(KEYS[GROUP_VALUES].help.to_owned()),
            ));
        }
    }
    (errors.len() == before).then(|| Grouping {
        by: by.clone(),
        values: config.group_values.clone(),
    })
}
