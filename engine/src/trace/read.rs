//! Reading traces back, with errors that say what is wrong and where.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::format::{EventKind, FORMAT_VERSION, Trace};

/// Why a trace could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// The file could not be opened or read.
    Io,
    /// The file ends in the middle of the JSON (an interrupted write).
    Truncated,
    /// The file is not valid JSON.
    Syntax,
    /// The file is a trace of another format version.
    Version {
        /// The version in the file (`None` when the field is missing).
        found: Option<u64>,
    },
    /// Valid JSON, but not a valid trace (a missing field, a wrong type, an event naming a
    /// greenlet the trace does not list, ...).
    Invalid,
}

/// A trace that could not be read: what is wrong, and where (1-based line and column, and the
/// byte offset, when the problem has a position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// What kind of problem.
    pub kind: ReadErrorKind,
    /// The details, in words.
    pub message: String,
    /// 1-based line of the problem, 0 when it has no position.
    pub line: usize,
    /// 1-based column of the problem, 0 when it has no position.
    pub column: usize,
    /// Byte offset of the problem, when it has a position.
    pub byte: Option<usize>,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            ReadErrorKind::Io => "could not read the trace file",
            ReadErrorKind::Truncated => "the trace file is truncated",
            ReadErrorKind::Syntax => "the trace file is not valid JSON",
            ReadErrorKind::Version { .. } => "unsupported trace format version",
            ReadErrorKind::Invalid => "the trace file is not a valid greenlet trace",
        };
        write!(f, "{what}")?;
        if self.line > 0 {
            write!(f, " at line {}, column {}", self.line, self.column)?;
            if let Some(b) = self.byte {
                write!(f, " (byte {b})")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ReadError {}

impl ReadError {
    fn plain(kind: ReadErrorKind, message: String) -> ReadError {
        ReadError {
            kind,
            message,
            line: 0,
            column: 0,
            byte: None,
        }
    }

    fn from_json(e: serde_json::Error, text: &str) -> ReadError {
        use serde_json::error::Category;
        let kind = match e.classify() {
            Category::Eof => ReadErrorKind::Truncated,
            Category::Syntax => ReadErrorKind::Syntax,
            Category::Data => ReadErrorKind::Invalid,
            Category::Io => ReadErrorKind::Io,
        };
        // serde_json appends " at line L column C" to its message; we report the position in
        // our own fields.
        let full = e.to_string();
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_owned(),
            None => full,
        };
        ReadError {
            kind,
            message,
            line: e.line(),
            column: e.column(),
            byte: byte_offset(text, e.line(), e.column()),
        }
    }
}

/// Byte offset of a 1-based line and column (serde_json counts columns in bytes).
fn byte_offset(text: &str, line: usize, column: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let line_start = if line == 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2)?.0 + 1
    };
    Some((line_start + column.saturating_sub(1)).min(text.len()))
}

/// Just the version, read before anything else so that a trace of another version gets a
/// version error rather than a confusing one about some field.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<serde_json::Value>,
}

impl Trace {
    /// Reads a trace from JSON text.
    ///
    /// # Errors
    /// A [`ReadError`] naming the problem: truncated, not JSON, another version, or not a valid
    /// trace (with the line, column and byte where it was found).
    ///
    /// ```
    /// use greenlet::trace::{ReadErrorKind, Trace};
    ///
    /// let err = Trace::from_json(r#"{"version": 1, "program": "x", "sou"#).unwrap_err();
    /// assert_eq!(err.kind, ReadErrorKind::Truncated);
    /// let err = Trace::from_json(r#"{"version": 99}"#).unwrap_err();
    /// assert_eq!(err.to_string(),
    ///     "unsupported trace format version: this file has version 99, this build reads version 1");
    /// ```
    pub fn from_json(text: &str) -> Result<Trace, ReadError> {
        if let Some(first) = text.trim_start().chars().next()
            && first != '{'
        {
            let byte = text.len() - text.trim_start().len();
            return Err(ReadError {
                kind: ReadErrorKind::Invalid,
                message: format!("a trace is a JSON object, but this starts with {first:?}"),
                line: text[..byte].matches('\n').count() + 1,
                column: byte - text[..byte].rfind('\n').map_or(0, |i| i + 1) + 1,
                byte: Some(byte),
            });
        }
        let probe: VersionProbe =
            serde_json::from_str(text).map_err(|e| ReadError::from_json(e, text))?;
        match probe.version.as_ref().and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            found => {
                let message = match (found, &probe.version) {
                    (Some(v), _) => format!(
                        "this file has version {v}, this build reads version {FORMAT_VERSION}"
                    ),
                    (None, None) => {
                        "the file has no \"version\" field; is it a greenlet trace?".to_owned()
                    }
                    (None, Some(other)) => {
                        format!("the \"version\" field is {other}, not a version number")
                    }
                };
                return Err(ReadError::plain(ReadErrorKind::Version { found }, message));
            }
        }
        let trace: Trace = serde_json::from_str(text).map_err(|e| ReadError::from_json(e, text))?;
        trace.validate()?;
        Ok(trace)
    }

    /// Reads a trace file.
    ///
    /// # Errors
    /// As [`Trace::from_json`], plus [`ReadErrorKind::Io`] when the file cannot be read (or is
    /// not UTF-8).
    pub fn read(path: impl AsRef<Path>) -> Result<Trace, ReadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| ReadError::plain(ReadErrorKind::Io, format!("{}: {e}", path.display())))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            ReadError {
                kind: ReadErrorKind::Syntax,
                message: format!("{}: not UTF-8 text", path.display()),
                line: 0,
                column: 0,
                byte: Some(at),
            }
        })?;
        Trace::from_json(&text)
    }

    /// Checks what JSON parsing cannot: every id an event names is in `greenlets`, every frame
    /// index is in `backtraces`.
    fn validate(&self) -> Result<(), ReadError> {
        let ids: HashSet<u64> = self.greenlets.iter().map(|g| g.id).collect();
        let invalid = |i: usize, what: String| {
            Err(ReadError::plain(
                ReadErrorKind::Invalid,
                format!("event {i}: {what}"),
            ))
        };
        for (i, e) in self.events.iter().enumerate() {
            let mut named = vec![e.greenlet];
            match &e.kind {
                EventKind::Spawn { id, parent, .. } => {
                    named.push(*id);
                    named.extend(parent);
                }
                EventKind::Switch { origin, target, .. }
                | EventKind::Throw { origin, target, .. } => {
                    named.extend([*origin, *target]);
                }
                EventKind::Finish { id, .. } | EventKind::Drop { id } => named.push(*id),
                EventKind::ParentChanged { id, old, new } => {
                    named.push(*id);
                    named.extend(old.iter().chain(new));
                }
                EventKind::Marker { .. } | EventKind::Output { .. } => {}
            }
            for s in &e.snapshot {
                named.push(s.id);
                named.extend(s.parent);
                if let Some(f) = s.frames
                    && f as usize >= self.backtraces.len()
                {
                    return invalid(
                        i,
                        format!(
                            "greenlet {} refers to backtrace {f}, but the trace has {}",
                            s.id,
                            self.backtraces.len()
                        ),
                    );
                }
            }
            if let Some(unknown) = named.iter().find(|id| !ids.contains(id)) {
                return invalid(
                    i,
                    format!("refers to greenlet {unknown}, which the trace does not list"),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_offsets() {
        let t = "ab\ncde\nf";
        assert_eq!(byte_offset(t, 1, 1), Some(0));
        assert_eq!(byte_offset(t, 2, 2), Some(4));
        assert_eq!(byte_offset(t, 3, 1), Some(7));
        assert_eq!(byte_offset(t, 0, 0), None);
    }
}
