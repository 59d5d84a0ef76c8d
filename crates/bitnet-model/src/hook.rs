//! Test instrumentation behind one hook, outside the forward pass: after each int8
//! quantization of activations (the input of a ternary linear layer), a [`QuantHook`] sees
//! the inputs, the scales and the int8 values of every row, and may change the int8 values.
//! [`MarginTracker`] measures how close each token came to a rounding tie;
//! [`ForceRounding`] flips chosen roundings the other way (to prove that a divergence from a
//! reference is a tie, not a bug).

use std::any::Any;

/// Which quantization of a layer. Where the linears of a group have their own input norm
/// (`use_rms_norm` models), each linear of the group quantizes its own input, and the hook
/// is called once per linear with the same site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantSite {
    /// The input of q, k and v (one quantization shared by the three).
    Qkv,
    /// The input of the attention output projection.
    AttnOut,
    /// The input of gate and up.
    GateUp,
    /// The input of down.
    Down,
}

/// One quantization call: `rows` tokens of `cols` values each.
pub struct QuantCall<'a> {
    pub layer: usize,
    pub site: QuantSite,
    /// Position of each row in its sequence.
    pub positions: &'a [usize],
    pub cols: usize,
    /// The float inputs, `[rows × cols]`.
    pub src: &'a [f32],
    /// Per-row scales: `q = round(x·s)`.
    pub scales: &'a [f32],
}

/// Sees (and may edit) every activation quantization of a forward pass.
pub trait QuantHook: Send {
    /// A pass of `rows` tokens begins.
    fn begin_pass(&mut self, rows: usize);
    /// After `call` was quantized into `xq` (`[rows × cols]`, editable).
    fn quantized(&mut self, call: &QuantCall<'_>, xq: &mut [i8]);
    /// The keys and values of `layer` before RoPE (`[rows × cols]` each, row i at
    /// `positions[i]`).
    fn kv(&mut self, _layer: usize, _positions: &[usize], _cols: usize, _k: &[f32], _v: &[f32]) {}
    /// Run passes only through this layer: later layers and the head are skipped (the
    /// logits and the later layers' cache rows of the pass's positions are left stale). For
    /// searches that judge a point inside the network.
    fn last_layer(&self) -> Option<usize> {
        None
    }
    /// For reading results back (`downcast_ref`).
    fn as_any(&self) -> &dyn Any;
}

/// Per token of the last pass, the smallest relative distance `|y − b| / |y|` between any of
/// its quantized activations `y = x·s` and a rounding boundary `b` (values clamped to ±127
/// excluded).
#[derive(Clone, Debug, Default)]
pub struct MarginTracker {
    pub margins: Vec<f32>,
}

impl QuantHook for MarginTracker {
    fn begin_pass(&mut self, rows: usize) {
        self.margins.clear();
        self.margins.resize(rows, f32::INFINITY);
    }

    fn quantized(&mut self, call: &QuantCall<'_>, _xq: &mut [i8]) {
        for ((x, &s), m) in call
            .src
            .chunks_exact(call.cols)
            .zip(call.scales)
            .zip(self.margins.iter_mut())
        {
            *m = m.min(rounding_margin(x, s));
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Smallest relative distance `|y − b| / |y|` of any `y = x·s` to a rounding boundary
/// `b = k + 0.5` (values clamped to ±127 excluded).
pub fn rounding_margin(x: &[f32], s: f32) -> f32 {
    x.iter()
        .map(|&v| v * s)
        .filter(|y| y.abs() < 127.0)
        .map(|y| ((y - y.floor()) - 0.5).abs() / y.abs().max(0.5))
        .fold(f32::INFINITY, f32::min)
}

/// One int8 rounding to take the other way — or, with `element` [`Flip::SCALE_UP`] /
/// [`Flip::SCALE_DOWN`], the whole row requantized with its scale one f32 ulp higher / lower
/// (what a last-bit difference in `127 / max|x|` does: every near-tie of the row moves the
/// same way at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flip {
    pub position: usize,
    pub layer: usize,
    pub site: QuantSite,
    pub element: usize,
}

impl Flip {
    pub const SCALE_UP: usize = usize::MAX;
    pub const SCALE_DOWN: usize = usize::MAX - 1;
}

/// Rounds the chosen activations the other way: `y = x·s` becomes `floor(y)` where it was
/// rounded up, `floor(y) + 1` where it was rounded down (clamped to ±127 as usual).
#[derive(Clone, Debug, Default)]
pub struct ForceRounding {
    pub flips: Vec<Flip>,
    /// How many of `flips` were applied so far.
    pub applied: usize,
}

impl QuantHook for ForceRounding {
    fn begin_pass(&mut self, _rows: usize) {}

    fn quantized(&mut self, call: &QuantCall<'_>, xq: &mut [i8]) {
        for f in &self.flips {
            if f.layer != call.layer || f.site != call.site {
                continue;
            }
            if f.element == Flip::SCALE_UP || f.element == Flip::SCALE_DOWN {
                for (row, &p) in call.positions.iter().enumerate() {
                    if p != f.position {
                        continue;
                    }
                    let s = call.scales[row];
                    let s2 = if f.element == Flip::SCALE_UP {
                        s.next_up()
                    } else {
                        s.next_down()
                    };
                    let cols = call.cols;
                    for (q, &x) in xq[row * cols..(row + 1) * cols]
                        .iter_mut()
                        .zip(&call.src[row * cols..(row + 1) * cols])
                    {
                        *q = (x * s2).round_ties_even().clamp(-128.0, 127.0) as i8;
                    }
                    self.applied += 1;
                }
                continue;
            }
            if f.element >= call.cols {
                continue;
            }
            for (row, &p) in call.positions.iter().enumerate() {
                if p != f.position {
                    continue;
                }
                let y = call.src[row * call.cols + f.element] * call.scales[row];
                let q = &mut xq[row * call.cols + f.element];
                let other = if f32::from(*q) > y {
                    y.floor()
                } else {
                    y.floor() + 1.0
                };
                *q = other.clamp(-128.0, 127.0) as i8;
                self.applied += 1;
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Records, per position and layer, the roundings closest to a tie (at most `keep` per
/// layer, nearest first; distance `|x·s − b| / 127`, in units of the row's largest value) — the candidates [`ForceRounding`] can try — while applying `force`
/// (the flips accepted so far); and, with `probe_count` > 0, that many evenly spaced values
/// (element `i · (width / probe_count)`) of six points of every layer (see [`PROBE_SLOTS`]), to
/// find the first point where a run departs from a reference: the roundings just before it
/// are the ones to search.
#[derive(Clone, Debug, Default)]
pub struct TieCandidates {
    pub keep: usize,
    pub force: ForceRounding,
    /// `by_position[p][layer]`: `(margin, flip)`, nearest first.
    pub by_position: Vec<Vec<Vec<(f32, Flip)>>>,
    pub probe_count: usize,
    /// `probes[p]`: position `p`'s probed values, `[layers × PROBE_SLOTS × probe_count]`.
    pub probes: Vec<Vec<f32>>,
    /// See [`QuantHook::last_layer`].
    pub last_layer: Option<usize>,
}

/// The probe points of a layer, in the order of the forward pass: the input of q/k/v (before
/// quantization), the keys and the values (before RoPE), the input of the attention output
/// projection, of gate/up, and of down.
pub const PROBE_SLOTS: usize = 6;

impl TieCandidates {
    fn probe(&mut self, layer: usize, slot: usize, positions: &[usize], cols: usize, x: &[f32]) {
        let k = self.probe_count;
        if k == 0 {
            return;
        }
        let step = (cols / k).max(1);
        for (row, &p) in positions.iter().enumerate() {
            if self.probes.len() <= p {
                self.probes.resize(p + 1, Vec::new());
            }
            let v = &mut self.probes[p];
            let at = (layer * PROBE_SLOTS + slot) * k;
            if v.len() < at + k {
                v.resize(at + k, f32::NAN);
            }
            for (o, &x) in v[at..at + k]
                .iter_mut()
                .zip(x[row * cols..(row + 1) * cols].iter().step_by(step))
            {
                *o = x;
            }
        }
    }
}

impl QuantHook for TieCandidates {
    fn begin_pass(&mut self, _rows: usize) {}

    fn quantized(&mut self, call: &QuantCall<'_>, xq: &mut [i8]) {
        for (row, &p) in call.positions.iter().enumerate() {
            if self.by_position.len() <= p {
                self.by_position.resize(p + 1, Vec::new());
            }
            let layers = &mut self.by_position[p];
            if layers.len() <= call.layer {
                layers.resize(call.layer + 1, Vec::new());
            }
            let s = call.scales[row];
            let list = &mut layers[call.layer];
            let mut row_min = f32::INFINITY;
            for (e, &x) in call.src[row * call.cols..(row + 1) * call.cols]
                .iter()
                .enumerate()
            {
                let y = x * s;
                if y.abs() >= 127.0 {
                    continue;
                }
                // Distance to the boundary in units of the row's largest value (127 after
                // scaling): float noise in a row is relative to its norm, not to each element,
                // so small values near a boundary are as likely to flip as large ones.
                let m = ((y - y.floor()) - 0.5).abs() / 127.0;
                row_min = row_min.min(m);
                if list.len() == self.keep && list.last().is_some_and(|l| l.0 <= m) {
                    continue;
                }
                let flip = Flip {
                    position: p,
                    layer: call.layer,
                    site: call.site,
                    element: e,
                };
                let at = list.partition_point(|l| l.0 <= m);
                list.insert(at, (m, flip));
                list.truncate(self.keep);
            }
            // The whole row one scale ulp either way, ranked by its nearest tie.
            for element in [Flip::SCALE_UP, Flip::SCALE_DOWN] {
                let flip = Flip {
                    position: p,
                    layer: call.layer,
                    site: call.site,
                    element,
                };
                let at = list.partition_point(|l| l.0 <= row_min);
                if at < self.keep {
                    list.insert(at, (row_min, flip));
                    list.truncate(self.keep);
                }
            }
        }
        let slot = match call.site {
            QuantSite::Qkv => 0,
            QuantSite::AttnOut => 3,
            QuantSite::GateUp => 4,
            QuantSite::Down => 5,
        };
        self.probe(call.layer, slot, call.positions, call.cols, call.src);
        self.force.quantized(call, xq);
    }

    fn kv(&mut self, layer: usize, positions: &[usize], cols: usize, k: &[f32], v: &[f32]) {
        self.probe(layer, 1, positions, cols, k);
        self.probe(layer, 2, positions, cols, v);
    }

    fn last_layer(&self) -> Option<usize> {
        self.last_layer
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_margin_hand_computed() {
        // 1.0·2.5 = 2.5 is exactly a tie; 0.25·2.5 = 0.625 is 0.125/0.625 = 0.2 away.
        assert_eq!(rounding_margin(&[1.0, 0.25], 2.5), 0.0);
        assert_eq!(rounding_margin(&[0.25], 2.5), 0.2);
        // |y| < 0.5 is measured against 0.5: 0.3 → 0.2 / 0.5; clamped values are ignored.
        assert!((rounding_margin(&[0.3, 200.5], 1.0) - 0.4).abs() < 1e-7);
    }

    #[test]
    fn forced_roundings_go_the_other_way() {
        // y = x·s = [2.4, 2.6, -1.5]: rounded 2, 3, -2 (ties to even); flipped 3, 2, -1.
        let src = [1.2f32, 1.3, -0.75];
        let mut xq = [2i8, 3, -2];
        let mut f = ForceRounding {
            flips: (0..3)
                .map(|e| Flip {
                    position: 7,
                    layer: 1,
                    site: QuantSite::Down,
                    element: e,
                })
                .collect(),
            applied: 0,
        };
        let call = QuantCall {
            layer: 1,
            site: QuantSite::Down,
            positions: &[7],
            cols: 3,
            src: &src,
            scales: &[2.0],
        };
        f.quantized(&call, &mut xq);
        assert_eq!(xq, [3, 2, -1]);
        assert_eq!(f.applied, 3);
        // A scale one ulp up requantizes the whole row: 1.25·(2 + ε) rounds to 3 where
        // 1.25·2 = 2.5 rounded (half to even) to 2.
        let mut f2 = ForceRounding {
            flips: vec![Flip {
                position: 7,
                layer: 1,
                site: QuantSite::Down,
                element: Flip::SCALE_UP,
            }],
            applied: 0,
        };
        let mut xq3 = [2i8];
        f2.quantized(
            &QuantCall {
                cols: 1,
                src: &[1.25],
                ..call
            },
            &mut xq3,
        );
        assert_eq!(xq3, [3]);
        // Another layer or position is left alone.
        let mut xq2 = [2i8, 3, -2];
        f.quantized(&QuantCall { layer: 0, ..call }, &mut xq2);
        assert_eq!(xq2, [2, 3, -2]);
    }
}
