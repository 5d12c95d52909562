//! What the command line prints: results on stdout, logs and errors on
//! stderr, the database password masked in all of them. It prints; it
//! decides nothing.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use migrate_core::config::{DatabaseUrl, Environment};
use migrate_core::{Action, Direction, ScriptRef};
use serde_json::{Value, json};

use super::args::Global;
use crate::{DryRun, Progress, State, Status};

/// Printing, with the URL's password masked in everything.
pub(super) struct Out {
    url: Option<DatabaseUrl>,
    quiet: bool,
    terminal: bool,
    /// A step line is open on the terminal, waiting for its duration.
    open: bool,
}

impl Out {
    pub(super) fn new(quiet: bool) -> Out {
        Out {
            url: None,
            quiet,
            terminal: std::io::stdout().is_terminal(),
            open: false,
        }
    }

    pub(super) fn set_url(&mut self, url: DatabaseUrl) {
        self.url = Some(url);
    }

    fn mask(&self, text: &str) -> String {
        match &self.url {
            Some(url) => url.redact(text),
            None => text.to_owned(),
        }
    }

    /// A line of results (silenced by `-q`).
    pub(super) fn line(&mut self, text: &str) {
        if !self.quiet {
            self.end_progress();
            println!("{}", self.mask(text));
        }
    }

    /// A block of results, without its trailing newline.
    pub(super) fn text(&mut self, text: &str) {
        self.line(text.trim_end_matches('\n'));
    }

    /// JSON for tools, printed even with `-q`.
    pub(super) fn json(&mut self, value: &Value) {
        let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
        println!("{}", self.mask(&text));
    }

    /// An error, on stderr.
    pub(super) fn error(&mut self, error: &dyn std::fmt::Display) {
        self.end_progress();
        eprintln!("error: {}", self.mask(&error.to_string()));
    }

    /// A line per step: opened when the step starts (on a terminal), closed
    /// with its duration when it ends.
    pub(super) fn progress(&mut self, event: Progress<'_>) {
        if self.quiet {
            return;
        }
        match event {
            Progress::Started(step) => {
                if self.terminal {
                    self.end_progress();
                    let line = format!(
                        "  {:<4} {} {} ({}) ...",
                        step.direction, step.version, step.name, step.kind
                    );
                    print!("{}", self.mask(&line));
                    let _ = std::io::stdout().flush();
                    self.open = true;
                }
            }
            Progress::Finished(report) => {
                if self.open {
                    print!("\r");
                    self.open = false;
                }
                println!("{}", self.mask(&format!("  {report}")));
            }
        }
    }

    /// Closes a step line left open by a failure.
    pub(super) fn end_progress(&mut self) {
        if self.open {
            println!(" failed");
            self.open = false;
        }
    }
}

/// Sends `tracing` to stderr: `RUST_LOG` if set, else warnings (`-q`:
/// errors; `-v`: the planner's decisions; `-vv`: everything). Passwords are
/// masked in every line. Does nothing if the application already installed
/// a subscriber.
pub(super) fn init_logging(g: &Global, url: Option<DatabaseUrl>) {
    use tracing_subscriber::EnvFilter;
    let default = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,migrate=debug",
        (false, _) => "trace",
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.is_empty())
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let url = Arc::new(url);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(move || MaskingWriter {
            url: Arc::clone(&url),
            buf: Vec::new(),
        })
        .try_init();
}

/// Buffers one log event and writes it to stderr with the password masked.
struct MaskingWriter {
    url: Arc<Option<DatabaseUrl>>,
    buf: Vec<u8>,
}

impl Write for MaskingWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buf);
        let masked = match self.url.as_ref() {
            Some(url) => url.redact(&text),
            None => text.into_owned(),
        };
        self.buf.clear();
        std::io::stderr().write_all(masked.as_bytes())
    }
}

impl Drop for MaskingWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Applied => "applied",
        State::Pending => "pending",
        State::AboveAppVersion => "above_app_version",
        State::AppliedUnknown => "applied_unknown",
        State::ChecksumChanged => "checksum_changed",
        State::InProgress => "in_progress",
        State::Ahead => "ahead",
        State::RevertedKeptChanges => "reverted_changes_kept",
    }
}

/// `status --json`; with `--check`, start-up's plan and the exit code.
pub(super) fn status_json(
    status: &Status,
    env: &Environment,
    check: Option<Result<&DryRun, &crate::Error>>,
    code: u8,
) -> Value {
    let refs =
        |refs: &[ScriptRef]| -> Vec<String> { refs.iter().map(ToString::to_string).collect() };
    let dry = check.and_then(Result::ok);
    let ahead = match check {
        Some(Ok(dry)) => Some(refs(&dry.plan.ahead)),
        Some(Err(crate::Error::DatabaseAhead { ahead, .. })) => Some(refs(ahead)),
        _ => None,
    };
    json!({
        "environment": env.name,
        "database": env.url.to_string(),
        "driver": env.driver.name(),
        "application_version": status.app_version.version.to_string(),
        "application_version_source": status.app_version.source.to_string(),
        "database_version": status.database_version.as_ref().map(ToString::to_string),
        "diesel_history": status.diesel_history.as_ref().map(|(count, latest)| serde_json::json!({"migrations": count, "latest": latest})),
        "pending_steps": check.map(|c| c.map_or(0, |dry| dry.plan.steps.len())),
        "ahead": ahead,
        "above_application_version": dry.map(|dry| refs(&dry.plan.above_target)),
        "start_up_refuses": check.and_then(|c| c.err()).map(ToString::to_string),
        "exit_code": code,
        "in_progress": status.in_progress,
        "scripts": status.rows.iter().map(|r| json!({
            "version": r.version.to_string(),
            "name": r.name,
            "kind": r.kind.map(|k| k.to_string()),
            "applied_at": r.applied_at,
            "state": state_name(r.state),
        })).collect::<Vec<_>>(),
    })
}

/// `plan --json`.
pub(super) fn plan_json(dry: &DryRun) -> Value {
    json!({
        "application_version": dry.app_version.version.to_string(),
        "from": dry.plan.from.as_ref().map(ToString::to_string),
        "to": dry.plan.to.as_ref().map(ToString::to_string),
        "steps": dry.plan.steps.iter().zip(&dry.sql).map(|(s, sql)| json!({
            "direction": match s.direction { Direction::Up => "up", Direction::Down => "down" },
            "version": s.version.to_string(),
            "name": s.name,
            "kind": s.kind.to_string(),
            "runs": s.action == Action::Run,
            "sql": sql,
        })).collect::<Vec<_>>(),
    })
}
