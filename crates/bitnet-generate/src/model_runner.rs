//! [`LanguageModel`] for bitnet-model: a [`Model`] plus its KV-cached [`State`].

use std::borrow::Borrow;

use bitnet_model::{Logits, Model, ModelError, State};

use crate::generate::LanguageModel;

/// A model and one sequence's KV cache, driven by [`crate::generate()`].
///
/// `M` is anything that lends a [`Model`]: `&Model`, `Arc<Model>` or an owned `Model`.
pub struct ModelRunner<M: Borrow<Model>> {
    model: M,
    state: State,
}

impl<M: Borrow<Model>> ModelRunner<M> {
    /// A runner with a fresh KV cache of `context` positions.
    pub fn new(model: M, context: usize) -> Result<Self, ModelError> {
        let state = model.borrow().new_state(context)?;
        Ok(Self { model, state })
    }

    /// A runner over an existing state (e.g. one made with a custom batch size).
    pub fn with_state(model: M, state: State) -> Self {
        Self { model, state }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        self.model.borrow()
    }

    /// The KV-cached state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Gives back the model and the state.
    pub fn into_parts(self) -> (M, State) {
        (self.model, self.state)
    }
}

impl<M: Borrow<Model>> LanguageModel for ModelRunner<M> {
    type Error = ModelError;

    fn vocab_size(&self) -> usize {
        self.model.borrow().config.vocab_size
    }

    fn context_length(&self) -> usize {
        self.state.context()
    }

    fn position(&self) -> usize {
        self.state.pos()
    }

    fn prefill(&mut self, tokens: &[u32]) -> Result<&[f32], ModelError> {
        let pos = self.state.pos();
        self.model
            .borrow()
            .forward(&mut self.state, tokens, pos, Logits::Last)
    }

    fn reset(&mut self) {
        self.state.reset();
    }
}
