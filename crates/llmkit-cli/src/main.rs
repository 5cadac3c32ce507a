//! The `llmkit` binary: parses argv, runs one command, and maps errors to a message, a
//! `hint:` line and an exit code (a closed output pipe exits quietly).

// The doc comments of the clap structs are `--help` text, where `[n]` and `FILE[@REV]` are
// meant literally; rustdoc would read them as links.
#![allow(rustdoc::broken_intra_doc_links)]

mod accounting;
mod app;
mod capabilities;
mod cli;
mod commands;
mod config_file;
mod error;
mod input;
mod output;
mod privacy;
mod settings;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::Cli;
use crate::error::{EXIT_FAILURE, EXIT_USAGE, is_broken_pipe};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(&anyhow::Error::new(e).context("cannot start the async runtime"));
        }
    };
    match runtime.block_on(app::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Prints clap's usage errors in our one-line + hint shape; help and version go to stdout.
fn clap_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // A closed pipe (`llmkit --help | head -1`) is not an error.
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_USAGE as u8)
        }
        _ => {
            let rendered = e.render().to_string();
            let mut lines = rendered.lines().skip_while(|l| l.trim().is_empty());
            let first = lines.next().unwrap_or("error: invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            // "the following required arguments were not provided:" lists them below.
            let mut first = first.to_string();
            if first.ends_with(':') {
                let listed: Vec<&str> = lines
                    .take_while(|l| l.starts_with("  "))
                    .map(str::trim)
                    .collect();
                first = format!("{first} {}", listed.join(", "));
            }
            let usage = subcommand_path();
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "error: {first}");
            let _ = writeln!(err, "hint: see `{usage} --help` for the accepted values");
            ExitCode::from(EXIT_USAGE as u8)
        }
    }
}

/// `llmkit SUBCOMMAND [ACTION]` as typed, for the hint of a usage error.
fn subcommand_path() -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut path = vec!["llmkit".to_string()];
    // argv may hold bytes that are not UTF-8 (clap reports those itself): never panic here.
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy().into_owned();
        if arg.starts_with('-') {
            continue;
        }
        match cmd.find_subcommand(&arg) {
            Some(sub) => {
                path.push(arg.clone());
                cmd = sub.clone();
            }
            // A flag's value before the subcommand (`--profile work ask`).
            None if path.len() == 1 => {}
            None => break,
        }
    }
    path.join(" ")
}

/// Prints an error as `error: ...` plus `hint: ...` and returns its exit code.
fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    let (message, hint, code) = describe(err);
    let mut out = std::io::stderr().lock();
    let _ = writeln!(out, "error: {message}");
    if let Some(h) = hint {
        let _ = writeln!(out, "hint: {h}");
    }
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn describe(err: &anyhow::Error) -> (String, Option<String>, i32) {
    if let Some(e) = crate::error::typed(err) {
        return (context_prefix(err, &e.message), e.hint, e.code);
    }
    let message = err
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    (message, None, EXIT_FAILURE)
}

/// Keeps any context added above the typed error ("reading notes.txt: ...").
fn context_prefix(err: &anyhow::Error, inner: &str) -> String {
    let outer = err.to_string();
    if outer == inner {
        inner.to_string()
    } else {
        format!("{outer}: {inner}")
    }
}
