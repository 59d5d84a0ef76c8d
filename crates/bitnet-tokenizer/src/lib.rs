//! Tokenizers (see crate description).
