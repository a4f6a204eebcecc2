use clap::Parser;

use dpa_explorer::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    let _log = cli::init_logging(cli.ui.log.as_deref());
    let code = match &cli.command {
        Some(Command::Score(args)) => cli::score::run(&cli.model, &cli.direction, args),
        None => dpa_explorer::tui::run(&cli).map(|()| 0),
    };
    match code {
        Ok(code) => std::process::exit(code),
        // Output closed by its reader (`| head`): nothing is wrong, and nothing to say.
        Err(e) if cli::exit::is_broken_pipe(&e) => std::process::exit(0),
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {}", cli::exit::error_text(&e));
            std::process::exit(2);
        }
    }
}
