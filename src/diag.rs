//! Diagnostics: warnings and errors that point into ov files.

use crate::load::yaml::Span;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A place in a file: the path as shown to the user, line and column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    /// The file, relative to the project when it lies inside it.
    pub file: Arc<PathBuf>,
    /// Line and column; line 0 means "the whole file".
    pub span: Span,
}

impl Loc {
    /// A place in `file`.
    pub fn new(file: &Arc<PathBuf>, span: Span) -> Self {
        Loc {
            file: Arc::clone(file),
            span,
        }
    }

    /// The file as a whole.
    pub fn file(file: &Path) -> Self {
        Loc {
            file: Arc::new(file.to_path_buf()),
            span: Span::default(),
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.span.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(
                f,
                "{}:{}:{}",
                self.file.display(),
                self.span.line,
                self.span.col
            )
        }
    }
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    /// The project still loads; something is probably not what the author meant.
    Warning,
    /// The project cannot be used.
    Error,
}

/// One message about one place.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Warning or error.
    pub severity: Severity,
    /// Where, when a place is known.
    pub loc: Option<Loc>,
    /// What.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        match &self.loc {
            Some(loc) => write!(f, "{loc}: {word}: {}", self.message),
            None => write!(f, "{word}: {}", self.message),
        }
    }
}

/// Collects diagnostics while a project is loaded and checked, so a user
/// sees every problem at once rather than one per run.
#[derive(Default, Debug, Serialize, Deserialize)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records a warning.
    pub fn warn(&mut self, loc: Option<Loc>, message: impl Into<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Warning,
            loc,
            message: message.into(),
        });
    }

    /// Records an error.
    pub fn error(&mut self, loc: Option<Loc>, message: impl Into<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Error,
            loc,
            message: message.into(),
        });
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// All diagnostics, in the order found.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    /// Only the warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// Moves everything from `other` into `self`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
}

/// The project could not be loaded or failed validation. Holds every
/// diagnostic (warnings too, so the caller can print them in order).
#[derive(Debug, thiserror::Error)]
#[error("{}", render_errors(.0))]
pub struct InvalidProject(pub Diagnostics);

fn render_errors(d: &Diagnostics) -> String {
    let errors: Vec<String> = d.errors().map(|e| e.to_string()).collect();
    errors.join("\n")
}

/// The closest of `candidates` to `name`, if any is close enough to be a
/// plausible typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` or nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match closest(name, candidates) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// How long a phase of planning took, said on stderr when `OV_TIMING` is
/// set (as ninja's `-d stats`): where an edit's run spends its time is
/// the first question about a slow one, and a profiler is not always at
/// hand. Costs one environment lookup when unset.
pub struct Phase {
    name: &'static str,
    start: Option<std::time::Instant>,
}

/// Times the phase `name` until the returned guard drops.
pub fn phase(name: &'static str) -> Phase {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *ON.get_or_init(|| std::env::var_os("OV_TIMING").is_some());
    Phase {
        name,
        start: on.then(std::time::Instant::now),
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let Some(start) = self.start {
            eprintln!(
                "timing: {:<24} {:>7.1} ms",
                self.name,
                start.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}
