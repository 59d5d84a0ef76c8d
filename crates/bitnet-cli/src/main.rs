//! `bitnet`: a thin command-line front end over the BitNet-Rust library crates.
//!
//! Each subcommand lives in `cmd/<name>.rs` with its own clap `Args` and a `run` function;
//! this file only dispatches.

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(
    name = "bitnet",
    version,
    about = "Run, serve and inspect ternary (BitNet b1.58) language models",
    long_about = "Run, serve and inspect ternary (BitNet b1.58) language models.\n\n\
        MODEL arguments accept a GGUF file (I2_S, TQ1_0, TQ2_0), a Hugging Face model \
        directory (config.json + model.safetensors), or a Hugging Face \
        repo id such as microsoft/bitnet-b1.58-2B-4T-gguf, downloaded once into the HF cache \
        (HF_HOME, HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are honoured)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure prompt-processing and generation speed (llama-bench style).
    Bench(cmd::bench::Args),
    /// Measure the batched engine under 1..N concurrent streams (throughput, TTFT, latency).
    BenchServe(cmd::bench_serve::Args),
    /// Chat with a model interactively (multi-turn, one KV cache; /reset, /exit).
    Chat(cmd::chat::Args),
    /// Show a model's architecture, hyperparameters, tensors and tokenizer.
    Inspect(cmd::inspect::Args),
    /// Write the float32 logits of one forward pass over token ids to a .npy file.
    Logits(cmd::logits::Args),
    /// Perplexity of a model on a text file, measured as llama-perplexity measures it.
    Perplexity(cmd::perplexity::Args),
    /// Generate a completion of a prompt, streamed to stdout (stats on stderr).
    Run(cmd::run::Args),
    /// Serve a model over an OpenAI-compatible HTTP API (continuous batching).
    Serve(cmd::serve::Args),
    /// Write a deterministic random checkpoint in a named shape and layout.
    Synth(cmd::synth::Args),
    /// Tokenize text from stdin (or decode ids with --decode).
    Tokenize(cmd::tokenize::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(a) => cmd::bench::run(a),
        Command::BenchServe(a) => cmd::bench_serve::run(a),
        Command::Chat(a) => cmd::chat::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Logits(a) => cmd::logits::run(a),
        Command::Perplexity(a) => cmd::perplexity::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Tokenize(a) => cmd::tokenize::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
