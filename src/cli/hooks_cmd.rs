//! `rblwatch hooks list` and `rblwatch hooks test <name> --event <kind>`.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::text::terminal_safe;
use crate::actions::hooks;
use crate::config::HookMode;
use crate::event::{Event, EventKind};
use crate::store::{self, HookRun, Store};

/// `rblwatch hooks …`
#[derive(Debug, Subcommand)]
pub enum HooksCmd {
    /// The configured hooks.
    List,
    /// Run a hook once with a sample event (dry-run hooks only say what they would run). Recorded like any run.
    Test {
        /// Hook name.
        name: String,
        /// Event kind of the sample event.
        #[arg(long, default_value = "listed")]
        event: String,
        /// Run the hook's revert command instead.
        #[arg(long)]
        revert: bool,
    },
}

/// Runs it.
pub(super) async fn run(cfg_path: Option<&Path>, cmd: HooksCmd) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cfg_path, true)?;
    let hooks = &cfg.actions.hooks;
    match cmd {
        HooksCmd::List => {
            if hooks.is_empty() {
                println!("no hooks configured");
            }
            for h in hooks {
                let on: Vec<&str> = h.on.iter().map(|k| k.as_str()).collect();
                println!(
                    "{}{}\n  on: {}\n  command: {:?}\n  revert: {:?}\n  timeout {:?}, cooldown {:?}, at most {} runs/hour",
                    h.name,
                    if h.mode == HookMode::DryRun { " (dry-run)" } else { "" },
                    on.join(", "),
                    h.command,
                    h.revert,
                    h.timeout,
                    h.cooldown,
                    h.max_per_hour
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        HooksCmd::Test {
            name,
            event,
            revert,
        } => {
            let Some(h) = hooks.iter().find(|h| h.name == name) else {
                eprintln!("rblwatch: no hook named {name:?} (see `rblwatch hooks list`)");
                return Ok(ExitCode::from(2));
            };
            let Some(kind) = EventKind::parse(&event) else {
                eprintln!("rblwatch: unknown event {event:?}");
                return Ok(ExitCode::from(2));
            };
            let argv = if revert {
                match &h.revert {
                    Some(r) => r.clone(),
                    None => {
                        eprintln!("rblwatch: hook {name:?} has no revert command");
                        return Ok(ExitCode::from(2));
                    }
                }
            } else {
                h.command.clone()
            };
            let e = Event::sample(kind);
            let json = serde_json::to_string_pretty(&e)?;
            let action = if revert { "revert" } else { "run" };
            let started = crate::time::now();
            let exec = match h.mode {
                HookMode::DryRun => None,
                HookMode::Live => Some(
                    hooks::execute(
                        &argv,
                        &json,
                        &hooks::event_env(&e, action, &h.env),
                        h.timeout,
                    )
                    .await,
                ),
            };
            let run = HookRun {
                id: 0,
                hook: h.name.clone(),
                action: crate::runs::HookAction::Test,
                event_id: None,
                event_kind: Some(kind),
                started_at: started,
                duration_ms: exec.as_ref().map_or(0, |x| x.duration.as_millis() as i64),
                status: exec
                    .as_ref()
                    .map_or(crate::runs::HookStatus::DryRun, |x| x.status),
                exit_code: exec.as_ref().and_then(|x| x.exit_code),
                argv: argv.clone(),
                stdout: exec.as_ref().map(|x| x.stdout.clone()).unwrap_or_default(),
                stderr: exec.as_ref().map(|x| x.stderr.clone()).unwrap_or_default(),
                condition: None,
            };
            println!(
                "hook {name} ({action}) with a sample {} event: {:?}",
                kind.as_str(),
                argv
            );
            match &exec {
                None => println!("dry-run: not executed. It would receive on stdin:\n{json}"),
                Some(x) => {
                    println!(
                        "status: {} (exit {:?}, {} ms)",
                        x.status,
                        x.exit_code,
                        x.duration.as_millis()
                    );
                    println!(
                        "--- stdout (last 64 KiB)\n{}",
                        terminal_safe(&x.stdout, 65_536)
                    );
                    println!(
                        "--- stderr (last 64 KiB)\n{}",
                        terminal_safe(&x.stderr, 65_536)
                    );
                }
            }
            if let Ok(st) = Store::open(&cfg.daemon.database) {
                st.call(move |c| store::insert_hook_run(c, &run)).await?;
            }
            Ok(match exec.map(|x| x.status) {
                None | Some(crate::runs::HookStatus::Ok) => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            })
        }
    }
}
