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
        Err(e) => {
            eprintln!("error: {e:#}");
            if cli::is_model_error(&e) {
                eprintln!("\nWays forward:");
                for line in cli::no_model_hint(&cli.model) {
                    eprintln!("  {line}");
                }
            }
            std::process::exit(2);
        }
    }
}
