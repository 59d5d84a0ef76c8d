//! `bitnet tokenize` (not implemented yet).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`bitnet tokenize` is not implemented yet")
}
