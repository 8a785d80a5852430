//! `pam_tap-softkey`: the key-helper protocol (one JSON request on stdin,
//! one JSON response on stdout) backed by a software authenticator whose
//! state lives in a JSON file, with fault options for refusal tests. See
//! README.md beside this crate.

mod authn;
mod state;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tap_core::keys::protocol::{HelperError, Request, Response, MAX_MESSAGE_BYTES};
use zeroize::Zeroizing;

use authn::{Attestation, Config, Faults, Uv};

#[derive(Parser, Debug)]
#[command(
    name = "pam_tap-softkey",
    about = "pam_tap test key helper backed by a software authenticator"
)]
struct Cli {
    /// JSON file with the authenticator's credentials, counters and AAGUID
    /// (created if missing).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Create the state file if missing (applying --aaguid) and exit.
    #[arg(long)]
    init: bool,
    /// The key has this client PIN; UV only with it.
    #[arg(long, value_name = "PIN", conflicts_with = "no_uv")]
    pin: Option<String>,
    /// The key cannot verify its user at all (no PIN, no built-in UV).
    /// Without --pin and --no-uv the key has built-in UV that always succeeds.
    #[arg(long)]
    no_uv: bool,
    /// Algorithms the key supports (COSE ids; repeat). Default: -7 and -8.
    #[arg(long = "alg", value_name = "ID", allow_negative_numbers = true)]
    algorithms: Vec<i64>,
    /// Attestation on registration: "none" (default) or "packed" (self attestation).
    #[arg(long, value_name = "FORMAT", default_value = "none")]
    attestation: String,
    /// Use (and save) this AAGUID, 32 hex digits.
    #[arg(long, value_name = "HEX")]
    aaguid: Option<String>,
    /// Sign for another rp id than the one asked for.
    #[arg(long)]
    wrong_rp_id: bool,
    /// Clear the user-present flag.
    #[arg(long)]
    no_up: bool,
    /// Never set the user-verified flag, even after a right PIN.
    #[arg(long)]
    no_uv_flag: bool,
    /// Flip a bit of the authenticator data after signing.
    #[arg(long)]
    tamper_authdata: bool,
    /// Flip a bit of the signature.
    #[arg(long)]
    tamper_signature: bool,
    /// Report a signature counter lower than the last one.
    #[arg(long)]
    counter_regress: bool,
    /// Answer with a fresh credential that is not enrolled.
    #[arg(long)]
    other_key: bool,
    /// Answer "no_device".
    #[arg(long)]
    no_device: bool,
    /// Sleep forever without answering.
    #[arg(long)]
    hang: bool,
    /// Exit with status 3 and no output.
    #[arg(long)]
    die: bool,
    /// Print something that is not JSON.
    #[arg(long)]
    garbage: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.hang {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    if cli.die {
        return ExitCode::from(3);
    }
    if cli.garbage {
        println!("this is not JSON: <<softkey garbage>>");
        return ExitCode::SUCCESS;
    }
    let config = match config(&cli) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("pam_tap-softkey: {why}");
            return ExitCode::from(2);
        }
    };
    let Some(path) = cli.state.as_deref() else {
        eprintln!("pam_tap-softkey: --state FILE is required");
        return ExitCode::from(2);
    };
    let (mut file, mut state) = match state::StateFile::open(path) {
        Ok(opened) => opened,
        Err(why) => {
            eprintln!("pam_tap-softkey: {why}");
            return ExitCode::from(1);
        }
    };
    if cli.init {
        if let Some(aaguid) = config.aaguid {
            state.aaguid = aaguid;
        }
        return match file.save(&state) {
            Ok(()) => ExitCode::SUCCESS,
            Err(why) => {
                eprintln!("pam_tap-softkey: {why}");
                ExitCode::from(1)
            }
        };
    }

    let response = match read_request() {
        Ok(request) => authn::handle(&request, &config, &mut state),
        Err(why) => Response::Failed {
            error: HelperError::BadRequest,
            message: why,
        },
    };
    if let Err(why) = file.save(&state) {
        eprintln!("pam_tap-softkey: {why}");
        return ExitCode::from(1);
    }
    let mut out = std::io::stdout().lock();
    if out
        .write_all(&response.to_json())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn config(cli: &Cli) -> Result<Config, String> {
    let uv = match (&cli.pin, cli.no_uv) {
        (Some(pin), _) => Uv::Pin(Zeroizing::new(pin.clone())),
        (None, true) => Uv::None,
        (None, false) => Uv::BuiltIn,
    };
    let attestation = match cli.attestation.as_str() {
        "none" => Attestation::None,
        "packed" => Attestation::PackedSelf,
        other => return Err(format!("unknown attestation format {other:?}")),
    };
    let aaguid = cli.aaguid.as_deref().map(state::parse_aaguid).transpose()?;
    Ok(Config {
        uv,
        attestation,
        algorithms: if cli.algorithms.is_empty() {
            vec![-7, -8]
        } else {
            cli.algorithms.clone()
        },
        aaguid,
        faults: Faults {
            wrong_rp_id: cli.wrong_rp_id,
            no_up: cli.no_up,
            no_uv_flag: cli.no_uv_flag,
            tamper_authdata: cli.tamper_authdata,
            tamper_signature: cli.tamper_signature,
            counter_regress: cli.counter_regress,
            no_device: cli.no_device,
            other_key: cli.other_key,
        },
    })
}

fn read_request() -> Result<Request, String> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_MESSAGE_BYTES + 1));
    std::io::stdin()
        .lock()
        .take(MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the request: {e}"))?;
    // serde's message may quote a value, and a value may be a PIN.
    Request::from_json(&bytes).map_err(|_| "the request is not a valid helper request".to_string())
}
