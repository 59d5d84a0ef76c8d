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

/// One int8 rounding to take the other way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flip {
    pub position: usize,
    pub layer: usize,
    pub site: QuantSite,
    pub element: usize,
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
            if f.layer != call.layer || f.site != call.site || f.element >= call.cols {
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
        // Another layer or position is left alone.
        let mut xq2 = [2i8, 3, -2];
        f.quantized(&QuantCall { layer: 0, ..call }, &mut xq2);
        assert_eq!(xq2, [2, 3, -2]);
    }
}
