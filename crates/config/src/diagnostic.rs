//! Diagnostics: one problem in a configuration file, located by file, line,
//! column and key path, with a suggestion; and [`ConfigError`], the list of
//! every problem found, rendered as plain text (`Display`, for logs) or with
//! source snippets (`miette::Diagnostic`, for terminals).

use miette::{LabeledSpan, NamedSource, SourceSpan};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One step of a key path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

impl PathSegment {
    pub fn key(key: impl Into<String>) -> Self {
        PathSegment::Key(key.into())
    }
}

impl From<&str> for PathSegment {
    fn from(key: &str) -> Self {
        PathSegment::Key(key.to_owned())
    }
}

impl From<usize> for PathSegment {
    fn from(index: usize) -> Self {
        PathSegment::Index(index)
    }
}

/// Parses a dotted key path such as `ma[1].connector.path` or
/// `controller.triggers[0].cron` into segments.
pub fn parse_key_path(text: &str) -> Vec<PathSegment> {
    let mut out = Vec::new();
    for part in text.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                out.push(PathSegment::key(&rest[..open]));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    out.push(PathSegment::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else {
            out.push(PathSegment::key(rest));
        }
    }
    out
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The configuration cannot be used.
    Error,
    /// The configuration works but probably not as meant.
    Warning,
}

/// A line and column (both counted from 1; columns in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `source`.
    pub fn of(source: &str, offset: usize) -> Location {
        let mut offset = offset.min(source.len());
        while offset > 0 && !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &source[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// One problem found in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Where in the document, readable: `ma "hr" > import_flows[3] > mv`.
    /// Empty for problems of the whole file.
    pub key: String,
    /// What is wrong, in one sentence. Never contains a secret value.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The bytes of the file the problem is about.
    pub span: Option<SourceSpan>,
    /// A short text shown under the span in the fancy rendering.
    pub label: Option<String>,
    /// The file (set when the diagnostic is attached to a file).
    pub file: Option<PathBuf>,
    /// Line and column of the span's start (set with the file).
    pub location: Option<Location>,
}

impl Diagnostic {
    /// A new error diagnostic at `key` (use [`crate::Loaded::diagnostic_at`]
    /// to fill key and span from a key path).
    pub fn error(key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            key: key.into(),
            message: message.into(),
            help: None,
            span: None,
            label: None,
            file: None,
            location: None,
        }
    }

    /// A new warning diagnostic at `key`.
    pub fn warning(key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(key, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_span(mut self, span: Option<SourceSpan>) -> Self {
        self.span = span;
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Records the file and computes line and column from its text.
    pub fn locate(mut self, file: &Path, source: &str) -> Self {
        self.file = Some(file.to_path_buf());
        self.location = self.span.map(|s| Location::of(source, s.offset()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `file:line:col: key: message` then `  help: ...`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(loc) = self.location {
                write!(f, ":{}:{}", loc.line, loc.column)?;
            }
            f.write_str(": ")?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// A [`Diagnostic`] as miette sees it: `key: message` as the message (file,
/// line and help are rendered by miette itself).
#[derive(Debug)]
struct FancyDiagnostic {
    heading: String,
    inner: Diagnostic,
}

impl FancyDiagnostic {
    fn new(inner: &Diagnostic) -> Self {
        let heading = if inner.key.is_empty() {
            inner.message.clone()
        } else {
            format!("{}: {}", inner.key, inner.message)
        };
        FancyDiagnostic {
            heading,
            inner: inner.clone(),
        }
    }
}

impl fmt::Display for FancyDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.heading)
    }
}

impl std::error::Error for FancyDiagnostic {}

impl miette::Diagnostic for FancyDiagnostic {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.inner.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner
            .help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.inner.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            self.inner.label.clone(),
            span,
        ))))
    }
}

/// Everything wrong with a configuration file: at least one error (and any
/// warnings found along the way).
///
/// `Display` prints every diagnostic in plain text; [`ConfigError::render_fancy`]
/// prints them with source snippets for a terminal.
#[derive(Debug)]
pub struct ConfigError {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    diagnostics: Vec<Diagnostic>,
    source_code: Option<NamedSource<Arc<String>>>,
    fancy: Vec<FancyDiagnostic>,
}

impl ConfigError {
    /// A configuration error for `path`; `source` is the file's text when it
    /// could be read. Locates every diagnostic in it.
    pub fn new(path: &Path, source: Option<Arc<String>>, diagnostics: Vec<Diagnostic>) -> Self {
        let mut diagnostics = diagnostics;
        if let Some(text) = &source {
            // A parser may quote a value: never a secret one.
            let secrets = crate::scrub::secrets_of(text, &|n| std::env::var(n).ok());
            crate::scrub::scrub(&mut diagnostics, &secrets);
        }
        let mut diagnostics: Vec<Diagnostic> = diagnostics
            .into_iter()
            .map(|d| match &source {
                Some(text) => d.locate(path, text),
                None => Diagnostic {
                    file: Some(path.to_path_buf()),
                    ..d
                },
            })
            .collect();
        diagnostics.sort_by_key(|d| d.span.map_or(0, |s| s.offset()));
        let fancy = diagnostics.iter().map(FancyDiagnostic::new).collect();
        ConfigError {
            inner: Box::new(Inner {
                path: path.to_path_buf(),
                diagnostics,
                fancy,
                source_code: source.map(|text| {
                    NamedSource::new(path.display().to_string(), text).with_language("toml")
                }),
            }),
        }
    }

    /// The configuration file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Every problem found, in file order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.inner.diagnostics
    }

    /// The errors (not the warnings).
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.inner.diagnostics.iter().filter(|d| d.is_error())
    }
}

/// Every diagnostic, one after the other, in plain text.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for d in &self.inner.diagnostics {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// One line: `2 errors in config.toml`.
    pub fn summary(&self) -> String {
        let errors = self.errors().count();
        let noun = if errors == 1 { "error" } else { "errors" };
        format!("{errors} {noun} in {}", self.inner.path.display())
    }

    /// The diagnostics with source snippets and carets, for a terminal
    /// (`color`: ANSI colours).
    pub fn render_fancy(&self, color: bool) -> String {
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme);
        let mut out = String::new();
        for diagnostic in &self.inner.fancy {
            let report = WithSource {
                diagnostic,
                source: self.inner.source_code.as_ref(),
            };
            if handler.render_report(&mut out, &report).is_err() {
                return self.to_string();
            }
            out.push('\n');
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }
}

/// One diagnostic with the file's text, rendered as a report of its own.
struct WithSource<'a> {
    diagnostic: &'a FancyDiagnostic,
    source: Option<&'a NamedSource<Arc<String>>>,
}

impl fmt::Debug for WithSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for WithSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.diagnostic, f)
    }
}

impl std::error::Error for WithSource<'_> {}

impl miette::Diagnostic for WithSource<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        self.diagnostic.severity()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic.help()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.diagnostic.labels()
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.map(|s| s as &dyn miette::SourceCode)
    }
}

/// Source code and one related report per diagnostic (for a `miette::Report`);
/// [`ConfigError::render_fancy`] renders each diagnostic as a report of its
/// own, which reads better.
impl miette::Diagnostic for ConfigError {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.inner
            .source_code
            .as_ref()
            .map(|s| s as &dyn miette::SourceCode)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        Some(Box::new(
            self.inner
                .fancy
                .iter()
                .map(|d| d as &dyn miette::Diagnostic),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_key_path_should_split_keys_and_indexes() {
        assert_eq!(
            parse_key_path("ma[1].connector.path"),
            vec![
                PathSegment::key("ma"),
                PathSegment::Index(1),
                PathSegment::key("connector"),
                PathSegment::key("path"),
            ]
        );
    }

    #[test]
    fn location_should_count_lines_and_characters_from_one() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(Location::of(text, 0), Location { line: 1, column: 1 });
        let quote = text.find('"').unwrap_or(0);
        assert_eq!(Location::of(text, quote), Location { line: 2, column: 6 });
    }
}
