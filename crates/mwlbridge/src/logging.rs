//! Log output (tracing) for people or for log collectors.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::ParseError;

use crate::cli::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `--log-level` is neither a level nor a filter (a usage error).
    #[error("--log-level {level:?} is not a valid level or filter: {source}")]
    BadLevel {
        /// What was given.
        level: String,
        /// Why the filter does not parse.
        #[source]
        source: ParseError,
    },
    /// A global subscriber is already installed.
    #[error("cannot set up logging: {0}")]
    Init(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Whether text logs may carry colour escapes: only to a terminal, and never with
/// `NO_COLOR` set (<https://no-color.org>). Files, pipes and the journal get plain text.
fn colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber writing to stderr.
pub fn init(level: &str, format: LogFormat) -> Result<(), LoggingError> {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_new(level).map_err(|source| LoggingError::BadLevel {
        level: level.to_string(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(LoggingError::Init)
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_to_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None), "files, pipes and the journal");
        assert!(!colour(true, Some("1".into())));
        assert!(
            colour(true, Some("".into())),
            "an empty NO_COLOR does not count"
        );
    }
}
