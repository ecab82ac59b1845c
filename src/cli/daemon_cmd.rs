//! `rblwatch daemon`, `status`, `history`.
use std::path::Path;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `rblwatch daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Run every job once and exit.
    #[arg(long)]
    pub once: bool,
}
/// Arguments of `rblwatch status`.
#[derive(Debug, Args)]
pub struct StatusArgs {}
/// Arguments of `rblwatch history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The target.
    pub target: String,
}
pub(super) async fn daemon(_c: Option<&Path>, _a: DaemonArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
pub(super) async fn status(_c: Option<&Path>, _a: StatusArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
pub(super) async fn history(_c: Option<&Path>, _a: HistoryArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
