//! `openspace-cmd`: talk to a rendering server's command port from a shell.
//! Prints each answer as one JSON line; exits 1 when the answer's `error` is not "none".

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use openspace_agent::auth::BearerToken;
use openspace_agent::command::{Answer, CommandClient, Request, StartRequest};

#[derive(Debug, Parser)]
#[command(
    name = "openspace-cmd",
    version,
    about = "Send commands to an OpenSpace rendering server"
)]
struct Cli {
    /// The server's command WebSocket.
    #[arg(
        long,
        env = "OPENSPACE_COMMAND_URL",
        default_value = "ws://127.0.0.1:4699"
    )]
    url: String,
    /// File holding the bearer token, when the server requires one.
    #[arg(long, env = "OPENSPACE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Seconds to wait for the connection and each answer.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// SERVER_STATUS: busy and total slots.
    ServerStatus,
    /// START an instance on the lowest free slot.
    Start {
        #[arg(long)]
        session: Option<String>,
        #[arg(long, requires = "height")]
        width: Option<u32>,
        #[arg(long, requires = "width")]
        height: Option<u32>,
        #[arg(long)]
        profile: Option<String>,
    },
    /// STOP instance ID.
    Stop { id: u32 },
    /// STATUS of slot ID.
    Status { id: u32 },
    /// RESOLUTION of instance ID.
    Resolution { id: u32, width: u32, height: u32 },
    /// WATCH: print every slot change until interrupted.
    Watch,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("openspace-cmd: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<bool, Box<dyn std::error::Error>> {
    let token = cli
        .token_file
        .as_deref()
        .map(BearerToken::from_file)
        .transpose()?;
    let timeout = Duration::from_secs(cli.timeout);
    let mut client =
        CommandClient::connect(&cli.url, token.as_ref().map(BearerToken::as_str), timeout).await?;
    let request = match cli.command {
        Cmd::ServerStatus => Request::ServerStatus,
        Cmd::Start {
            session,
            width,
            height,
            profile,
        } => Request::Start(StartRequest {
            session,
            width,
            height,
            profile,
            warm: false,
        }),
        Cmd::Stop { id } => Request::Stop { id },
        Cmd::Status { id } => Request::Status { id },
        Cmd::Resolution { id, width, height } => Request::Resolution { id, width, height },
        Cmd::Watch => {
            let mut watch = match client.watch().await? {
                Ok(watch) => watch,
                Err(refusal) => return Ok(print(&refusal)),
            };
            loop {
                print(&watch.next().await?);
            }
        }
    };
    let answer = client.call(&request).await?;
    client.close().await;
    Ok(print(&answer))
}

fn print(answer: &Answer) -> bool {
    println!("{}", answer.to_json());
    answer.is_ok()
}
