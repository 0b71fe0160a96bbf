//! Names that rules read from the metaverse (provisioning conditions,
//! anchors and DNs, export flows) checked against the attributes declared
//! for the metaverse type they run on. An undeclared name is always empty:
//! a provisioning condition reading one is never true, and every connector
//! it provisioned would be deprovisioned. So an expression reading one is an
//! error; a script's literal read (`attr("x")`, `attrs.x`) is a warning,
//! since a script may test for an attribute on purpose. An expression that
//! reads a reference attribute (`[metaverse.T] references`) is an error
//! too: a reference is not text (references flow only by copy).

use super::Checker;
use crate::diagnostic::PathSegment;
use crate::document::name_span;
use autosync_expr::Program;
use autosync_model::suggest;

/// Reports every name `program` (compiled from `src`, the value at `at`)
/// reads that metaverse type `mv_type` does not declare. `rule` names the
/// rule in messages (`provisioning rule #1`).
pub fn check_mv_reads(
    c: &mut Checker<'_, '_>,
    mv_type: Option<&str>,
    at: &[PathSegment],
    rule: &str,
    program: &Program,
    src: &str,
) {
    let names = program.attributes();
    check_mv_reads_of(c, mv_type, at, rule, names, program.is_script(), src);
}

/// [`check_mv_reads`] of the names a script or expression reads.
pub fn check_mv_reads_of(
    c: &mut Checker<'_, '_>,
    mv_type: Option<&str>,
    at: &[PathSegment],
    rule: &str,
    names: &[String],
    is_script: bool,
    src: &str,
) {
    let Some(t) = mv_type else { return };
    let Some(def) = c.system().metaverse.get(t) else {
        return;
    };
    let declared: Vec<String> = def.attributes.clone();
    let unknown: Vec<String> = names
        .iter()
        .filter(|a| !declared.contains(a))
        .cloned()
        .collect();
    let references: Vec<String> = if is_script {
        Vec::new()
    } else {
        names
            .iter()
            .filter(|a| def.references.contains_key(*a) && declared.contains(a))
            .cloned()
            .collect()
    };
    let value = c.span(at);
    for name in references {
        let span = name_span(c.text, &value, src, &name);
        c.push(
            at.to_vec(),
            span,
            format!(
                "{rule} reads `{name}`, a reference attribute of metaverse type `{t}`: a reference is not text, an expression cannot read it"
            ),
            Some(format!(
                "a reference flows only by copy (`from = \"{name}\"`) into an attribute declared a reference; read a text attribute here"
            )),
            false,
        );
    }
    for name in unknown {
        let span = name_span(c.text, &value, src, &name);
        let fix = match suggest::closest(&name, declared.iter().map(String::as_str)) {
            Some(close) => {
                format!("did you mean `{close}`? or add `{name}` to [metaverse.{t}].attributes")
            }
            None => format!("add `{name}` to [metaverse.{t}].attributes, or fix the name"),
        };
        let (message, warning) = if is_script {
            (
                format!(
                    "{rule}: the script reads `{name}`, which is not an attribute of metaverse type `{t}`: it will always be empty"
                ),
                true,
            )
        } else {
            (
                format!(
                    "{rule} reads `{name}`, which is not an attribute of metaverse type `{t}`: it would always be empty"
                ),
                false,
            )
        };
        c.push(at.to_vec(), span, message, Some(fix), warning);
    }
}
