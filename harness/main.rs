//! The `mqtt-chaos` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mqtt-chaos",
    version,
    about = "Chaos and soak tests for MQTT client configurations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a scenario without running it.
    Validate { scenario: PathBuf },
    /// Run the embedded broker (rumqttd) in this process; used by the harness.
    #[command(hide = true)]
    BrokerServe {
        #[arg(long)]
        listen: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { scenario } => match mqtt_chaos::scenario::load(&scenario) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::BrokerServe { listen } => match mqtt_chaos::broker::embedded::serve(listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("broker-serve: {e}");
                ExitCode::from(3)
            }
        },
    }
}
