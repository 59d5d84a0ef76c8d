//! Accuracy metrics for comparing an approximate head (e.g. Q8) with a reference one.

/// KL(softmax(reference) ‖ softmax(test)) in nats, computed in f64, and whether the argmax
/// (top-1 token) agrees. Both slices are logits over the same vocabulary.
pub fn logit_divergence(reference: &[f32], test: &[f32]) -> (f64, bool) {
    assert_eq!(
        reference.len(),
        test.len(),
        "logit_divergence: lengths differ"
    );
    let lse = |v: &[f32]| {
        let m = v.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        m + v.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
    };
    let (lr, lt) = (lse(reference), lse(test));
    let kl = reference
        .iter()
        .zip(test)
        .map(|(&r, &t)| {
            let lp = r as f64 - lr;
            lp.exp() * (lp - (t as f64 - lt))
        })
        .sum::<f64>();
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
                if x > bv {
                    (i, x)
                } else {
                    (bi, bv)
                }
            })
            .0
    };
    (kl.max(0.0), argmax(reference) == argmax(test))
}
