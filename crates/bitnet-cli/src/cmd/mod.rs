pub mod bench;
pub mod inspect;
pub mod logits;
pub mod synth;
pub mod tokenize;
