//! How the binary reports a failed run: the error chain without repeats, and quiet on a
//! closed pipe. Called by `main` only.

use std::io;

/// The error and its causes joined by `: `, leaving out a cause whose text the message
/// already shows (errors that print their source in their own message).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Whether the run failed because its output was closed (`score ... | head -1`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Repeats {
        path: String,
        source: io::Error,
    }

    #[test]
    fn a_cause_shown_in_its_message_is_not_repeated() {
        let e = anyhow::Error::new(Repeats {
            path: "/m/config.json".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "not found"),
        })
        .context("loading the model");
        assert_eq!(
            error_text(&e),
            "loading the model: /m/config.json: not found"
        );
    }

    #[test]
    fn distinct_causes_are_all_shown() {
        let e = anyhow::Error::new(io::Error::new(io::ErrorKind::NotFound, "no such file"))
            .context("opening in.jsonl");
        assert_eq!(error_text(&e), "opening in.jsonl: no such file");
    }

    #[test]
    fn a_broken_pipe_is_recognised_through_context() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        let e = anyhow::anyhow!("other");
        assert!(!is_broken_pipe(&e));
    }
}
