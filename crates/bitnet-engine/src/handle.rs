//! The engine on its own thread: callers (an async server, a CLI) submit requests and read
//! per-choice events from a channel; text is detokenized and stop strings are applied on the
//! engine thread, so a stop frees the sequence's blocks at once. A dropped receiver (a
//! client that went away) cancels its request.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bitnet_generate::{FinishReason, StopMatcher, StopReason};
use bitnet_tokenizer::{StreamDecoder, Tokenizer};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::backend::{Backend, Geometry};
use crate::engine::{Engine, EngineConfig, EngineStats};
use crate::request::{Logprob, Request, RequestId};
use crate::EngineError;

/// A request plus what the text side needs.
#[derive(Clone, Debug)]
pub struct Submission {
    pub request: Request,
    /// Strings that end a choice when they appear in its text (not emitted).
    pub stop_strings: Vec<String>,
}

/// What a caller reads for one choice of its request.
#[derive(Clone, Debug, PartialEq)]
pub struct ChoiceEvent {
    pub index: usize,
    /// The generated token (`None` on a final event without one).
    pub token: Option<u32>,
    /// Text that became final with this token (UTF-8 held back until complete; a stop
    /// token's text and anything from a stop string on are never emitted).
    pub text: String,
    pub logprob: Option<Logprob>,
    /// Set on the last event of the choice.
    pub finish: Option<FinishReason>,
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
}

/// Sent to a request's channel.
pub type EventResult = Result<ChoiceEvent, String>;

enum Command {
    Submit {
        id: u64,
        sub: Box<Submission>,
        events: UnboundedSender<EventResult>,
    },
    Cancel(u64),
    Shutdown,
}

/// A handle to an engine running on its own thread; cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    stats: Arc<Mutex<EngineStats>>,
    next: Arc<AtomicU64>,
    geo: Geometry,
    max_running: usize,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

struct Active {
    engine_id: RequestId,
    events: UnboundedSender<EventResult>,
    choices: HashMap<usize, TextState>,
    stop_strings: Vec<String>,
    open: usize,
}

struct TextState {
    decoder: StreamDecoder,
    stops: StopMatcher,
}

impl EngineHandle {
    /// Start `engine` on a new thread. With a tokenizer, events carry text and stop strings
    /// apply; without one, text is empty.
    pub fn spawn<B: Backend + 'static>(
        engine: Engine<B>,
        config: &EngineConfig,
        tokenizer: Option<Arc<dyn Tokenizer>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Mutex::new(engine.stats()));
        let geo = engine.geometry();
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name("bitnet-engine".into())
            .spawn(move || run(engine, rx, st, tokenizer))
            .expect("spawning the engine thread");
        Self {
            tx,
            stats,
            next: Arc::new(AtomicU64::new(1)),
            geo,
            max_running: config.max_running.clamp(1, geo.max_seqs),
            thread: Arc::new(Mutex::new(Some(thread))),
        }
    }

    /// The backend's sizes.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// Most sequences running at once.
    pub fn max_running(&self) -> usize {
        self.max_running
    }

    /// Counters and gauges as of the last step.
    pub fn stats(&self) -> EngineStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Check a submission against the engine's limits (what [`EngineHandle::submit`] would
    /// refuse).
    pub fn validate(&self, sub: &Submission) -> Result<(), EngineError> {
        crate::engine::check(&self.geo, self.max_running, &sub.request)?;
        if sub.stop_strings.iter().any(|s| s.is_empty()) {
            return Err(EngineError::EmptyStopString);
        }
        Ok(())
    }

    /// Queue a submission; returns its id (for [`EngineHandle::cancel`]) and the channel of
    /// its events. Every choice ends with an event whose `finish` is set; an engine failure
    /// arrives as `Err` and ends the channel.
    pub fn submit(
        &self,
        sub: Submission,
    ) -> Result<(u64, UnboundedReceiver<EventResult>), EngineError> {
        self.validate(&sub)?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (etx, erx) = unbounded_channel();
        self.tx
            .send(Command::Submit {
                id,
                sub: Box::new(sub),
                events: etx,
            })
            .map_err(|_| EngineError::Stopped)?;
        Ok((id, erx))
    }

    /// End a submitted request (its choices finish as cancelled, blocks are freed).
    pub fn cancel(&self, id: u64) {
        let _ = self.tx.send(Command::Cancel(id));
    }

    /// Finish every queued and running request, then stop the thread (blocks until done).
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

/// What the engine thread holds besides the engine.
struct Worker<B: Backend> {
    engine: Engine<B>,
    tokenizer: Option<Arc<dyn Tokenizer>>,
    active: HashMap<u64, Active>,
    by_engine: HashMap<RequestId, u64>,
    /// Events are sent after the stats snapshot is updated, so a client that reads its last
    /// event sees gauges that already count its sequence as gone.
    outbox: Vec<(UnboundedSender<EventResult>, EventResult)>,
}

fn run<B: Backend>(
    engine: Engine<B>,
    rx: mpsc::Receiver<Command>,
    stats: Arc<Mutex<EngineStats>>,
    tokenizer: Option<Arc<dyn Tokenizer>>,
) {
    let mut w = Worker {
        engine,
        tokenizer,
        active: HashMap::new(),
        by_engine: HashMap::new(),
        outbox: Vec::new(),
    };
    let mut draining = false;
    loop {
        // Wait for work when idle; otherwise take what has arrived and step.
        let mut cmds = Vec::new();
        if !w.engine.has_work() {
            if draining {
                break;
            }
            match rx.recv() {
                Ok(c) => cmds.push(c),
                Err(_) => break,
            }
        }
        while let Ok(c) = rx.try_recv() {
            cmds.push(c);
        }
        for c in cmds {
            match c {
                Command::Submit { id, sub, events } => {
                    if draining {
                        let _ = events.send(Err("the server is shutting down".into()));
                        continue;
                    }
                    w.submit(id, *sub, events);
                }
                Command::Cancel(id) => {
                    if let Some(eid) = w.active.get(&id).map(|a| a.engine_id) {
                        w.cancel(eid);
                    }
                }
                Command::Shutdown => draining = true,
            }
        }
        // Clients that went away: cancel their requests (frees their blocks).
        let gone: Vec<RequestId> = w
            .active
            .values()
            .filter(|a| a.events.is_closed())
            .map(|a| a.engine_id)
            .collect();
        for eid in gone {
            w.cancel(eid);
        }
        if w.engine.has_work() {
            match catch_unwind(AssertUnwindSafe(|| w.engine.step())) {
                Ok(Ok(evs)) => w.deliver(evs),
                Ok(Err(e)) => w.fail_all(&e.to_string()),
                Err(_) => w.fail_all("internal error in the engine step"),
            }
        }
        if let Ok(mut s) = stats.lock() {
            *s = w.engine.stats();
        }
        for (tx, ev) in w.outbox.drain(..) {
            let _ = tx.send(ev);
        }
    }
}

impl<B: Backend> Worker<B> {
    fn submit(&mut self, id: u64, sub: Submission, events: UnboundedSender<EventResult>) {
        let n = sub.request.n;
        match self.engine.add(sub.request) {
            Ok(eid) => {
                self.by_engine.insert(eid, id);
                self.active.insert(
                    id,
                    Active {
                        engine_id: eid,
                        events,
                        choices: HashMap::new(),
                        stop_strings: sub.stop_strings,
                        open: n,
                    },
                );
            }
            Err(e) => {
                let _ = events.send(Err(e.to_string()));
            }
        }
    }

    fn cancel(&mut self, engine_id: RequestId) {
        let evs = self.engine.cancel(engine_id);
        self.deliver(evs);
    }

    /// End every request with an error and free the engine.
    fn fail_all(&mut self, msg: &str) {
        for (_, a) in self.active.drain() {
            self.engine.cancel(a.engine_id);
            let _ = a.events.send(Err(msg.to_string()));
        }
        self.by_engine.clear();
    }

    fn deliver(&mut self, evs: Vec<crate::request::TokenEvent>) {
        deliver(
            &mut self.engine,
            &mut self.active,
            &mut self.by_engine,
            &self.tokenizer,
            evs,
            &mut self.outbox,
        );
    }
}

/// Turn engine events into text events on each request's channel.
fn deliver<B: Backend>(
    engine: &mut Engine<B>,
    active: &mut HashMap<u64, Active>,
    by_engine: &mut HashMap<RequestId, u64>,
    tokenizer: &Option<Arc<dyn Tokenizer>>,
    evs: Vec<crate::request::TokenEvent>,
    outbox: &mut Vec<(UnboundedSender<EventResult>, EventResult)>,
) {
    for ev in evs {
        let Some(&hid) = by_engine.get(&ev.request) else {
            continue;
        };
        let Some(a) = active.get_mut(&hid) else {
            continue;
        };
        let stops = a.stop_strings.clone();
        let ts = a.choices.entry(ev.index).or_insert_with(|| TextState {
            decoder: StreamDecoder::new(false, false),
            stops: StopMatcher::new(&stops),
        });
        let mut text = String::new();
        let mut finish = ev.finish.clone();
        if let (Some(tok), Some(t)) = (ev.token, tokenizer) {
            let is_stop_token = matches!(&finish, Some(FinishReason::Stop(StopReason::Token(_))));
            if !is_stop_token {
                let scan = ts.stops.push(&ts.decoder.push(t.as_ref(), tok));
                text.push_str(&scan.emit);
                if let Some(i) = scan.stopped {
                    finish = Some(FinishReason::Stop(StopReason::String(stops[i].clone())));
                    engine.stop_choice(ev.request, ev.index);
                }
            }
        }
        // Flush held-back text at the end unless a stop string cut it.
        if finish.is_some() && !matches!(&finish, Some(FinishReason::Stop(StopReason::String(_)))) {
            let scan = ts.stops.push(&ts.decoder.finish());
            text.push_str(&scan.emit);
            match scan.stopped {
                Some(i) => finish = Some(FinishReason::Stop(StopReason::String(stops[i].clone()))),
                None => text.push_str(&ts.stops.flush()),
            }
        }
        let done = finish.is_some();
        outbox.push((
            a.events.clone(),
            Ok(ChoiceEvent {
                index: ev.index,
                token: ev.token,
                text,
                logprob: ev.logprob,
                finish,
                prompt_tokens: ev.prompt_tokens,
                cached_tokens: ev.cached_tokens,
            }),
        ));
        if done {
            a.open = a.open.saturating_sub(1);
            if a.open == 0 {
                by_engine.remove(&ev.request);
                active.remove(&hid);
            }
        }
    }
}
