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

/// Records, per position, the roundings closest to a tie (at most `keep` per position,
/// nearest first) — the candidates [`ForceRounding`] can try — while applying `force` (the
/// flips accepted so far).
#[derive(Clone, Debug, Default)]
pub struct TieCandidates {
    pub keep: usize,
    pub force: ForceRounding,
    /// `by_position[p]`: `(relative margin, flip)`, nearest first.
    pub by_position: Vec<Vec<(f32, Flip)>>,
}

impl QuantHook for TieCandidates {
    fn begin_pass(&mut self, _rows: usize) {}

    fn quantized(&mut self, call: &QuantCall<'_>, xq: &mut [i8]) {
        for (row, &p) in call.positions.iter().enumerate() {
            if self.by_position.len() <= p {
                self.by_position.resize(p + 1, Vec::new());
            }
            let s = call.scales[row];
            let list = &mut self.by_position[p];
            let mut row_min = f32::INFINITY;
            for (e, &x) in call.src[row * call.cols..(row + 1) * call.cols]
                .iter()
                .enumerate()
            {
                let y = x * s;
                if y.abs() >= 127.0 {
                    continue;
                }
                let m = ((y - y.floor()) - 0.5).abs() / y.abs().max(0.5);
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
        self.force.quantized(call, xq);
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
