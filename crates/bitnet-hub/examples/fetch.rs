//! Resolve a model spec and print the local path:
//! `cargo run -p bitnet-hub --example fetch -- microsoft/bitnet-b1.58-2B-4T-gguf`
//! (environment: HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE).

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(spec) = std::env::args().nth(1) else {
        eprintln!("usage: fetch SPEC   (a path, or owner/name[@revision][:file-or-selector])");
        return ExitCode::from(2);
    };
    match bitnet_hub::resolve_model(&spec, &bitnet_hub::HubOptions::from_env()) {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
