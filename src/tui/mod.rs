//! The terminal explorer.

use crate::cli::Cli;

/// Runs the explorer until the user quits.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    let _ = cli;
    anyhow::bail!("the explorer is not built yet; use `dpa-explorer score`")
}
