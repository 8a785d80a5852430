use clap::Parser;
use std::process::ExitCode;
use tapctl::cli::Cli;
use tapctl::failure::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match tapctl::commands::run(cli.command, cli.policy, cli.socket) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                tapctl::output::message(&format!("tapctl: {failure}"));
            }
            ExitCode::from(failure.exit as u8)
        }
    }
}

// clap exits with 2 on bad usage, which is Exit::Usage.
const _: () = assert!(Exit::Usage as u8 == 2);
