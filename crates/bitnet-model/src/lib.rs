//! Model (see crate description).
