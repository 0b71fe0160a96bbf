//! Errors of the expression layer: compile errors (with the byte offset in the
//! source and a hint) and evaluation errors (naming the function and value).

use autosync_model::Value;

/// An expression or script that cannot be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    /// What is wrong, in one sentence.
    pub message: String,
    /// Byte offset in the source where the problem is, when known.
    pub offset: Option<usize>,
    /// A hint on how to fix it ("did you mean `lower`?").
    pub help: Option<String>,
}

impl CompileError {
    pub(crate) fn at(offset: usize, message: impl Into<String>) -> Self {
        CompileError {
            message: message.into(),
            offset: Some(offset),
            help: None,
        }
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// A multi-line rendering that shows the source line and points at the
    /// offending byte, followed by the hint:
    ///
    /// ```text
    /// unknown function `lowr` at line 1, column 1
    ///   lowr(email)
    ///   ^
    /// help: did you mean `lower`?
    /// ```
    pub fn render(&self, source: &str) -> String {
        let mut out = self.message.clone();
        if let Some(offset) = self.offset {
            let offset = floor_char_boundary(source, offset.min(source.len()));
            let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
            let line_end = source[offset..]
                .find('\n')
                .map_or(source.len(), |i| offset + i);
            let line_no = source[..offset].matches('\n').count() + 1;
            let column = source[line_start..offset].chars().count();
            out.push_str(&format!(" at line {line_no}, column {}\n", column + 1));
            out.push_str("  ");
            out.push_str(&source[line_start..line_end]);
            out.push_str("\n  ");
            out.push_str(&" ".repeat(column));
            out.push('^');
        }
        if let Some(help) = &self.help {
            out.push_str("\nhelp: ");
            out.push_str(help);
        }
        out
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// An evaluation that failed for one input (e.g. `to_int("abc")`). The
/// engine records it as a per-object error; other objects carry on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
    /// Whether a script (rather than an expression) failed: a rules script
    /// that throws or runs out of time, which MIM reports as an extension
    /// exception.
    pub script: bool,
}

impl EvalError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        EvalError {
            message: message.into(),
            script: false,
        }
    }

    pub(crate) fn from_script(message: impl Into<String>) -> Self {
        EvalError {
            message: message.into(),
            script: true,
        }
    }

    /// `func: <what> (value)`.
    pub(crate) fn in_function(func: &str, what: &str, value: &Value) -> Self {
        EvalError::new(format!("{func}: {what} (got {})", describe(value)))
    }
}

/// A short description of a value for error messages: its kind and a
/// truncated rendering, e.g. `string "abc"`, `multi-value of 3`.
pub(crate) fn describe(value: &Value) -> String {
    const MAX: usize = 60;
    match value {
        Value::String(s) => {
            if s.chars().count() > MAX {
                let cut: String = s.chars().take(MAX).collect();
                format!("string {cut:?}...")
            } else {
                format!("string {s:?}")
            }
        }
        Value::Integer(i) => format!("integer {i}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Binary(b) => format!("binary value of {} bytes", b.len()),
        Value::Reference(id) => format!("reference to metaverse object {id}"),
        Value::Multi(vs) => format!("multi-value with {} values", vs.len()),
    }
}
