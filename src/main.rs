mod compose;

use clap::Parser;

use dpa_explorer::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    let _log = cli::init_logging(cli.ui.log.as_deref());
    let code = match &cli.command {
        Some(Command::Score(args)) => cli::score::run(&cli.model, &cli.direction, args),
        None => compose::run_explorer(&cli).map(|()| 0),
    };
    match code {
        Ok(code) => std::process::exit(code),
        // Output closed by its reader (`| head`): nothing is wrong, and nothing to say.
        Err(e) if cli::exit::is_broken_pipe(&e) => std::process::exit(0),
        Err(e) => {
            use std::io::Write;
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "error: {}", cli::exit::error_text(&e));
            if cli::is_model_error(&e) {
                let _ = writeln!(err, "\nWays forward:");
                for line in cli::no_model_hint(&cli.model) {
                    let _ = writeln!(err, "  {line}");
                }
            }
            std::process::exit(2);
        }
    }
}
