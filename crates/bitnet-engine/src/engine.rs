//! The engine: continuous batching. Each [`Engine::step`] schedules a flat batch of tokens
//! from many sequences (decode tokens first, then prefill chunks, then newly admitted
//! requests), runs it through the backend in one forward pass, samples the sequences whose
//! logits came out, and retires the finished ones. Requests join and leave between steps.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bitnet_generate::{FinishReason, Sampler, SamplerConfig, StopReason};
use bitnet_model::Segment;

use crate::backend::{Backend, Geometry};
use crate::kv::BlockManager;
use crate::request::{Logprob, Request, RequestId, TokenEvent};
use crate::sequence::{Seq, SeqId, SeqParams};
use crate::EngineError;

/// Scheduling settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Most sequences running at once (at most the backend's `max_seqs`).
    pub max_running: usize,
    /// Most prompt tokens one sequence computes in one step: a long prompt is computed in
    /// chunks, so running streams wait at most one chunk for their next token.
    pub prefill_chunk: usize,
    /// Reuse the KV blocks of prompt prefixes computed before.
    pub prefix_cache: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_running: 64,
            prefill_chunk: 256,
            prefix_cache: true,
        }
    }
}

/// Counters and gauges of an engine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineStats {
    pub running: usize,
    pub waiting: usize,
    pub blocks_used: usize,
    pub blocks_total: usize,
    pub blocks_cached: usize,
    pub prefix_hit_blocks: u64,
    pub steps: u64,
    pub prompt_tokens_computed: u64,
    pub generated_tokens: u64,
    pub preemptions: u64,
    /// Tokens in the last step's batch.
    pub last_batch_tokens: usize,
}

/// A batched engine over a [`Backend`].
pub struct Engine<B: Backend> {
    backend: B,
    geo: Geometry,
    config: EngineConfig,
    blocks: BlockManager,
    seqs: HashMap<SeqId, Seq>,
    /// Waiting sequences, admitted front first (preempted ones go back to the front).
    waiting: VecDeque<SeqId>,
    /// Running sequences, oldest first.
    running: Vec<SeqId>,
    next_seq: SeqId,
    next_request: RequestId,
    arrivals: u64,
    stats: EngineStats,
    /// Logits row copy the sampler edits.
    row: Vec<f32>,
}

/// What one step scheduled for a sequence.
struct Planned {
    seq: SeqId,
    tokens: usize,
}

impl<B: Backend> Engine<B> {
    /// An engine over `backend`.
    pub fn new(backend: B, mut config: EngineConfig) -> Result<Self, EngineError> {
        let geo = backend.geometry();
        config.max_running = config.max_running.clamp(1, geo.max_seqs);
        config.prefill_chunk = config.prefill_chunk.clamp(1, geo.max_batch_tokens);
        let blocks = BlockManager::new(geo.n_blocks, geo.block_size);
        Ok(Self {
            backend,
            geo,
            config,
            blocks,
            seqs: HashMap::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            next_seq: 0,
            next_request: 0,
            arrivals: 0,
            stats: EngineStats::default(),
            row: vec![0.0; geo.vocab_size],
        })
    }

    /// The backend's sizes.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Whether any sequence is waiting or running.
    pub fn has_work(&self) -> bool {
        !self.running.is_empty() || !self.waiting.is_empty()
    }

    /// Counters and gauges now.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            running: self.running.len(),
            waiting: self.waiting.len(),
            blocks_used: self.blocks.used(),
            blocks_total: self.blocks.total(),
            blocks_cached: self.blocks.cached(),
            prefix_hit_blocks: self.blocks.hits(),
            ..self.stats.clone()
        }
    }

    /// Check a request against the engine's limits without queueing it.
    pub fn validate(&self, req: &Request) -> Result<(), EngineError> {
        check(&self.geo, self.config.max_running, req)
    }

    /// Queue a request; its choices join the running batch at the next steps.
    pub fn add(&mut self, req: Request) -> Result<RequestId, EngineError> {
        self.validate(&req)?;
        let id = self.next_request;
        self.next_request += 1;
        let params = Arc::new(SeqParams {
            max_tokens: req.max_tokens,
            stop_tokens: req.stop_tokens,
            logprobs: req.logprobs,
            prompt_len: req.prompt.len(),
        });
        let sampler = Sampler::new(req.sampling, self.geo.vocab_size)
            .map_err(|e| EngineError::Sampling(e.to_string()))?;
        let seq = Seq {
            request: id,
            index: 0,
            tokens: req.prompt,
            computed: 0,
            blocks: Vec::new(),
            hashes: Vec::new(),
            sampler,
            params,
            forks: req.n - 1,
            arrival: 0,
            cached_tokens: 0,
            started: false,
            constraint: req.constraint,
        };
        let sid = self.next_seq;
        self.next_seq += 1;
        self.seqs.insert(sid, seq);
        self.waiting.push_back(sid);
        Ok(id)
    }

    /// End every choice of `request` (`finish_reason` cancelled) and free its blocks; returns
    /// the final events (none if the request is unknown or already finished).
    pub fn cancel(&mut self, request: RequestId) -> Vec<TokenEvent> {
        let ids: Vec<SeqId> = self
            .seqs
            .iter()
            .filter(|(_, s)| s.request == request)
            .map(|(&id, _)| id)
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(seq) = self.retire(id) {
                let forks = seq.forks;
                out.push(event(&seq, None, None, Some(FinishReason::Cancelled)));
                // Choices not forked yet end too.
                for i in 0..forks {
                    let mut e = event(&seq, None, None, Some(FinishReason::Cancelled));
                    e.index = seq.index + 1 + i;
                    out.push(e);
                }
            }
        }
        out
    }

    /// End choice `index` of `request` now (e.g. a stop string appeared in its text) and free
    /// its blocks; false if it is not running or waiting.
    pub fn stop_choice(&mut self, request: RequestId, index: usize) -> bool {
        let id = self
            .seqs
            .iter()
            .find(|(_, s)| s.request == request && s.index == index)
            .map(|(&id, _)| id);
        id.and_then(|id| self.retire(id)).is_some()
    }

    /// Remove a sequence from the queues and free its blocks.
    fn retire(&mut self, id: SeqId) -> Option<Seq> {
        let seq = self.seqs.remove(&id)?;
        self.running.retain(|&r| r != id);
        self.waiting.retain(|&w| w != id);
        for &b in &seq.blocks {
            self.blocks.release(b);
        }
        Some(seq)
    }

    /// Give back a running sequence's blocks; it waits at the front and is recomputed later
    /// (through the prefix cache where its blocks survive).
    fn preempt(&mut self, id: SeqId) {
        self.running.retain(|&r| r != id);
        self.drop_blocks(id);
        self.waiting.push_front(id);
        self.stats.preemptions += 1;
    }

    /// Release every block of `id`; nothing of it is computed any more.
    fn drop_blocks(&mut self, id: SeqId) {
        if let Some(seq) = self.seqs.get_mut(&id) {
            for &b in &seq.blocks {
                self.blocks.release(b);
            }
            seq.blocks.clear();
            seq.hashes.clear();
            seq.computed = 0;
        }
    }

    /// Make `seq`'s blocks cover `end` positions; false if the pool ran out (what was
    /// allocated stays with the sequence).
    fn grow(&mut self, id: SeqId, end: usize) -> bool {
        let bs = self.geo.block_size;
        let need = end.div_ceil(bs);
        let Some(seq) = self.seqs.get_mut(&id) else {
            return false;
        };
        while seq.blocks.len() < need {
            match self.blocks.allocate() {
                Some(b) => seq.blocks.push(b),
                None => return false,
            }
        }
        true
    }

    /// Take blocks of the prompt's prefix from the cache (at most all but the last token).
    fn match_prefix(&mut self, id: SeqId) {
        let bs = self.geo.block_size;
        let Some(seq) = self.seqs.get_mut(&id) else {
            return;
        };
        let full = (seq.tokens.len() - 1) / bs;
        while seq.blocks.len() < full {
            let i = seq.blocks.len();
            let parent = seq.hashes.last().copied();
            match self
                .blocks
                .lookup(parent, &seq.tokens[i * bs..(i + 1) * bs])
            {
                Some((b, h)) => {
                    seq.blocks.push(b);
                    seq.hashes.push(h);
                }
                None => break,
            }
        }
        seq.computed = seq.blocks.len() * bs;
        seq.cached_tokens = seq.computed;
    }

    /// Decide this step's batch. When nothing at all can run (running prefills hold every
    /// block between them), the newest running sequence is preempted until one can.
    fn schedule(&mut self) -> Vec<Planned> {
        loop {
            let plan = self.schedule_once();
            if !plan.is_empty() || self.running.len() <= 1 {
                return plan;
            }
            let newest = *self.running.last().expect("more than one running");
            self.preempt(newest);
        }
    }

    fn schedule_once(&mut self) -> Vec<Planned> {
        let mut plan: Vec<Planned> = Vec::new();
        let mut budget = self.geo.max_batch_tokens;
        let mut preempted = false;
        // 1. Decode tokens of running sequences, oldest first; when blocks run out the newest
        //    running sequence is preempted (recomputed later) rather than anything failing.
        let mut i = 0;
        while i < self.running.len() {
            let id = self.running[i];
            let (pending, end) = {
                let s = &self.seqs[&id];
                (s.pending(), s.tokens.len())
            };
            if pending != 1 || budget == 0 || plan.len() == self.geo.max_seqs {
                i += 1;
                continue;
            }
            loop {
                if self.grow(id, end) {
                    plan.push(Planned { seq: id, tokens: 1 });
                    budget -= 1;
                    i += 1;
                    break;
                }
                let victim = *self.running.last().expect("running holds id");
                plan.retain(|p| p.seq != victim);
                budget = self.geo.max_batch_tokens - plan.iter().map(|p| p.tokens).sum::<usize>();
                self.preempt(victim);
                preempted = true;
                if victim == id {
                    break;
                }
            }
        }
        // 2. Prefill chunks of running sequences, oldest first.
        for idx in 0..self.running.len() {
            if budget == 0 || plan.len() == self.geo.max_seqs {
                break;
            }
            let id = self.running[idx];
            let (pending, computed) = {
                let s = &self.seqs[&id];
                (s.pending(), s.computed)
            };
            if pending <= 1 {
                continue;
            }
            let want = pending.min(budget).min(self.config.prefill_chunk);
            let k = self.fit(id, computed, want);
            if k > 0 {
                plan.push(Planned { seq: id, tokens: k });
                budget -= k;
            }
        }
        // 3. Admit waiting sequences while sequences, tokens and blocks allow (not in a step
        //    that had to preempt: the pool is short).
        while !preempted
            && budget > 0
            && plan.len() < self.geo.max_seqs
            && self.running.len() < self.config.max_running
        {
            let Some(&id) = self.waiting.front() else {
                break;
            };
            if self.config.prefix_cache {
                self.match_prefix(id);
            }
            let (pending, computed) = {
                let s = &self.seqs[&id];
                (s.pending(), s.computed)
            };
            let want = pending.min(budget).min(self.config.prefill_chunk);
            let k = self.fit(id, computed, want);
            if k == 0 {
                // Not even one token fits: give the prefix blocks back and wait.
                self.drop_blocks(id);
                break;
            }
            self.waiting.pop_front();
            self.arrivals += 1;
            if let Some(s) = self.seqs.get_mut(&id) {
                s.arrival = self.arrivals;
            }
            self.running.push(id);
            plan.push(Planned { seq: id, tokens: k });
            budget -= k;
        }
        plan
    }

    /// The most of `want` tokens after `computed` that the pool has blocks for (blocks
    /// allocated for them stay with the sequence).
    fn fit(&mut self, id: SeqId, computed: usize, want: usize) -> usize {
        let bs = self.geo.block_size;
        let have = self.seqs[&id].blocks.len() * bs;
        let room = have + self.blocks.available() * bs;
        let k = want.min(room.saturating_sub(computed));
        if k > 0 && !self.grow(id, computed + k) {
            return 0;
        }
        k
    }

    /// Run one step: schedule, one forward pass, sampling. Returns the events of this step
    /// (one per sampled token, plus final events).
    pub fn step(&mut self) -> Result<Vec<TokenEvent>, EngineError> {
        let plan = self.schedule();
        let mut events = Vec::new();
        if plan.is_empty() {
            return Ok(events);
        }
        // Which planned sequences get logits: those whose every known token is computed.
        let wants: Vec<bool> = plan
            .iter()
            .map(|p| {
                let s = &self.seqs[&p.seq];
                s.computed + p.tokens == s.tokens.len()
            })
            .collect();
        let n_tokens: usize = plan.iter().map(|p| p.tokens).sum();
        let logits = {
            let segs: Vec<Segment<'_>> = plan
                .iter()
                .zip(&wants)
                .map(|(p, &w)| {
                    let s = &self.seqs[&p.seq];
                    Segment {
                        tokens: &s.tokens[s.computed..s.computed + p.tokens],
                        pos: s.computed,
                        blocks: &s.blocks,
                        logits: w,
                    }
                })
                .collect();
            self.backend.step(&segs)?.to_vec()
        };
        self.stats.steps += 1;
        self.stats.last_batch_tokens = n_tokens;
        let v = self.geo.vocab_size;
        let mut row_i = 0;
        for (p, &w) in plan.iter().zip(&wants) {
            let bs = self.geo.block_size;
            {
                let s = self.seqs.get_mut(&p.seq).expect("planned sequence");
                if s.computed < s.params.prompt_len {
                    self.stats.prompt_tokens_computed += (s.computed + p.tokens)
                        .min(s.params.prompt_len)
                        .saturating_sub(s.computed)
                        as u64;
                }
                s.computed += p.tokens;
                // Register newly filled blocks in the prefix cache.
                if self.config.prefix_cache {
                    while s.hashes.len() < s.computed / bs {
                        let i = s.hashes.len();
                        let parent = s.hashes.last().copied();
                        let h = self.blocks.register(
                            s.blocks[i],
                            parent,
                            &s.tokens[i * bs..(i + 1) * bs],
                        );
                        s.hashes.push(h);
                    }
                }
            }
            if !w {
                continue;
            }
            let row = &logits[row_i * v..(row_i + 1) * v];
            row_i += 1;
            let mut ids = vec![p.seq];
            if self.seqs[&p.seq].forks > 0 {
                ids.extend(self.fork(p.seq)?);
            }
            for id in ids {
                if let Some(e) = self.sample(id, row)? {
                    events.push(e);
                }
            }
        }
        Ok(events)
    }

    /// Make the pending choices of `id` (whose prompt is now computed) as sequences of their
    /// own sharing its blocks; a partly filled last block is copied for each.
    fn fork(&mut self, id: SeqId) -> Result<Vec<SeqId>, EngineError> {
        let bs = self.geo.block_size;
        let (n, template) = {
            let s = self.seqs.get_mut(&id).expect("forked sequence");
            let n = std::mem::take(&mut s.forks);
            (
                n,
                (
                    s.request,
                    s.index,
                    s.tokens.clone(),
                    s.computed,
                    s.blocks.clone(),
                    s.hashes.clone(),
                    s.sampler.config().clone(),
                    s.params.clone(),
                    s.cached_tokens,
                    s.constraint.as_ref().map(|c| c.fork()),
                ),
            )
        };
        let (request, index, tokens, computed, blocks, hashes, cfg, params, cached, constraint) =
            template;
        let mut out = Vec::new();
        for i in 1..=n {
            let mut cfg: SamplerConfig = cfg.clone();
            cfg.seed = cfg.seed.map(|s| s.wrapping_add(i as u64));
            let sampler = Sampler::new(cfg, self.geo.vocab_size)
                .map_err(|e| EngineError::Sampling(e.to_string()))?;
            for &b in &blocks {
                self.blocks.retain(b);
            }
            let mut my_blocks = blocks.clone();
            if computed % bs != 0 {
                let last = *my_blocks.last().expect("a computed prompt has blocks");
                match self.blocks.allocate() {
                    Some(nb) => {
                        self.backend.copy_block(last, nb)?;
                        self.blocks.release(last);
                        *my_blocks.last_mut().expect("non-empty") = nb;
                    }
                    None => {
                        // No block to copy into: this choice recomputes its prompt later.
                        for &b in &my_blocks {
                            self.blocks.release(b);
                        }
                        let sid = self.next_seq;
                        self.next_seq += 1;
                        self.seqs.insert(
                            sid,
                            Seq {
                                request,
                                index: index + i,
                                tokens: tokens.clone(),
                                computed: 0,
                                blocks: Vec::new(),
                                hashes: Vec::new(),
                                sampler,
                                params: params.clone(),
                                forks: 0,
                                arrival: 0,
                                cached_tokens: 0,
                                started: false,
                                constraint: constraint.as_ref().map(|c| c.fork()),
                            },
                        );
                        self.waiting.push_front(sid);
                        continue;
                    }
                }
            }
            let sid = self.next_seq;
            self.next_seq += 1;
            self.arrivals += 1;
            self.seqs.insert(
                sid,
                Seq {
                    request,
                    index: index + i,
                    tokens: tokens.clone(),
                    computed,
                    blocks: my_blocks,
                    hashes: hashes.clone(),
                    sampler,
                    params: params.clone(),
                    forks: 0,
                    arrival: self.arrivals,
                    cached_tokens: cached,
                    started: false,
                    constraint: constraint.as_ref().map(|c| c.fork()),
                },
            );
            self.running.push(sid);
            out.push(sid);
        }
        Ok(out)
    }

    /// Sample the next token of `id` from its logits `row`, or end it.
    fn sample(&mut self, id: SeqId, row: &[f32]) -> Result<Option<TokenEvent>, EngineError> {
        let ctx = self.geo.max_context;
        let s = self.seqs.get_mut(&id).expect("sampled sequence");
        // Limits checked before drawing, as the single-sequence loop does.
        let early = if s.params.max_tokens.is_some_and(|m| s.generated() >= m) {
            Some(FinishReason::Length)
        } else if s.tokens.len() >= ctx {
            Some(FinishReason::ContextFull)
        } else {
            None
        };
        if let Some(reason) = early {
            let s = self.retire(id).expect("present");
            return Ok(Some(event(&s, None, None, Some(reason))));
        }
        let logprob = s.params.logprobs.map(|k| logprob_of(row, k));
        self.row.copy_from_slice(row);
        // A grammar that cannot continue ends this choice only, never the batch.
        if let Some(c) = &mut s.constraint {
            if c.mask(&mut self.row).is_err() || self.row.iter().all(|&l| l == f32::NEG_INFINITY) {
                let s = self.retire(id).expect("present");
                return Ok(Some(event(
                    &s,
                    None,
                    None,
                    Some(FinishReason::Stop(StopReason::Grammar)),
                )));
            }
        }
        // A request whose settings leave no token to draw (every one banned by its logit bias)
        // ends that choice; it never fails the batch the other requests share.
        let Ok(token) = s.sampler.sample(&mut self.row, &s.tokens) else {
            let s = self.retire(id).expect("present");
            return Ok(Some(event(
                &s,
                None,
                None,
                Some(FinishReason::Stop(StopReason::NoToken)),
            )));
        };
        let grammar_done = match &mut s.constraint {
            Some(c) => c.consume(token).is_err() || c.is_stopped(),
            None => false,
        };
        let logprob = logprob.map(|(lse, top)| Logprob {
            logprob: row[token as usize] - lse,
            top,
        });
        s.tokens.push(token);
        self.stats.generated_tokens += 1;
        let finish = if s.params.stop_tokens.contains(&token) {
            Some(FinishReason::Stop(StopReason::Token(token)))
        } else if grammar_done {
            Some(FinishReason::Stop(StopReason::Grammar))
        } else if s.params.max_tokens.is_some_and(|m| s.generated() >= m) {
            Some(FinishReason::Length)
        } else if s.tokens.len() >= ctx {
            Some(FinishReason::ContextFull)
        } else {
            None
        };
        let e = event(s, Some(token), logprob, finish.clone());
        s.started = true;
        if finish.is_some() {
            self.retire(id);
        }
        Ok(Some(e))
    }
}

fn event(
    s: &Seq,
    token: Option<u32>,
    logprob: Option<Logprob>,
    finish: Option<FinishReason>,
) -> TokenEvent {
    TokenEvent {
        request: s.request,
        index: s.index,
        token,
        logprob,
        finish,
        prompt_tokens: s.params.prompt_len,
        cached_tokens: if s.started { 0 } else { s.cached_tokens },
    }
}

/// `(log Σ exp(row), top k (id, logprob))` of a logits row; the top list is sorted by
/// descending logit, ties by lower id.
fn logprob_of(row: &[f32], k: usize) -> (f32, Vec<(u32, f32)>) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let sum: f64 = row.iter().map(|&x| ((x - max) as f64).exp()).sum();
    let lse = max + sum.ln() as f32;
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    if k > 0 {
        for (i, &x) in row.iter().enumerate() {
            if top.len() < k || x > top[top.len() - 1].1 {
                let at = top.partition_point(|&(_, y)| y >= x);
                top.insert(at, (i as u32, x));
                top.truncate(k);
            }
        }
    }
    for t in &mut top {
        t.1 -= lse;
    }
    (lse, top)
}

/// The checks of [`Engine::validate`].
pub(crate) fn check(geo: &Geometry, max_running: usize, req: &Request) -> Result<(), EngineError> {
    if req.prompt.is_empty() {
        return Err(EngineError::EmptyPrompt);
    }
    if let Some(&t) = req.prompt.iter().find(|&&t| t as usize >= geo.vocab_size) {
        return Err(EngineError::TokenOutOfRange {
            token: t,
            vocab: geo.vocab_size,
        });
    }
    if req.prompt.len() > geo.max_context {
        return Err(EngineError::PromptTooLong {
            prompt: req.prompt.len(),
            context: geo.max_context,
        });
    }
    if req.n == 0 || req.n > max_running {
        return Err(EngineError::BadN {
            n: req.n,
            max: max_running,
        });
    }
    req.sampling
        .validate(geo.vocab_size)
        .map_err(|e| EngineError::Sampling(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn logprobs_hand_computed() {
        // logits [0, ln 3]: p = [1/4, 3/4].
        let (lse, top) = super::logprob_of(&[0.0, 3f32.ln(), 0.0], 2);
        assert!((lse - 5f32.ln()).abs() < 1e-6);
        assert_eq!(top[0].0, 1);
        assert!((top[0].1 - (0.6f32).ln()).abs() < 1e-6);
        // Tie between ids 0 and 2: the lower id first.
        assert_eq!(top[1].0, 0);
    }
}
