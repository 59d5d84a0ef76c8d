//! Allocation-free selection helpers: top-k in one pass with a bounded heap, and the top-p
//! cut with progressively wider partial sorts.

use std::cmp::Ordering;

use super::sampler::Candidate;

/// Descending logit, ties towards the lower id: the order every filter uses.
pub(crate) fn by_logit_desc(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit
        .partial_cmp(&a.logit)
        .unwrap_or(Ordering::Equal)
        .then(a.id.cmp(&b.id))
}

/// A candidate for token `i`, or `None` for -inf/NaN logits. +inf is clamped to `f32::MAX`
/// so that the softmax stays finite.
fn candidate(i: usize, l: f32) -> Option<Candidate> {
    (l > f32::NEG_INFINITY).then_some(Candidate {
        id: i as u32,
        logit: l.min(f32::MAX),
        p: 0.0,
    })
}

/// Every token with a logit above -inf, in id order.
pub(crate) fn all_candidates(logits: &[f32], out: &mut Vec<Candidate>) {
    out.clear();
    out.extend(
        logits
            .iter()
            .enumerate()
            .filter_map(|(i, &l)| candidate(i, l)),
    );
}

/// The `k` (≥ 1) best candidates in [`by_logit_desc`] order (unsorted), in one pass over
/// `logits` with a binary heap whose root is the worst kept candidate. `out` needs capacity
/// `k`; it is not grown beyond that.
pub(crate) fn top_k_candidates(logits: &[f32], k: usize, out: &mut Vec<Candidate>) {
    out.clear();
    for (i, &l) in logits.iter().enumerate() {
        let Some(c) = candidate(i, l) else { continue };
        if out.len() < k {
            out.push(c);
            if out.len() == k {
                for j in (0..k / 2).rev() {
                    sift_down(out, j);
                }
            }
        } else if by_logit_desc(&c, &out[0]) == Ordering::Less {
            // Better than the worst kept one (ties keep the earlier, lower id).
            out[0] = c;
            sift_down(out, 0);
        }
    }
}

/// Restores the heap property below `j`: every parent is worse than (after) its children.
fn sift_down(h: &mut [Candidate], mut j: usize) {
    loop {
        let (l, r) = (2 * j + 1, 2 * j + 2);
        let mut worst = j;
        if l < h.len() && by_logit_desc(&h[l], &h[worst]) == Ordering::Greater {
            worst = l;
        }
        if r < h.len() && by_logit_desc(&h[r], &h[worst]) == Ordering::Greater {
            worst = r;
        }
        if worst == j {
            return;
        }
        h.swap(j, worst);
        j = worst;
    }
}

/// Sorts `cands` into [`by_logit_desc`] order far enough to cut it at the shortest prefix
/// whose mass `Σ exp(logit − max) / total` reaches `top_p`, and truncates it there (at least
/// one token is kept). Partial sorts of 64, 256, 1024, ... leading elements avoid sorting a
/// whole vocabulary when the distribution is peaked.
pub(crate) fn top_p_cut(cands: &mut Vec<Candidate>, max: f32, total: f64, top_p: f32) {
    let target = f64::from(top_p);
    let mut m = 64usize;
    loop {
        let n = cands.len();
        let full = m >= n;
        if full {
            cands.sort_unstable_by(by_logit_desc);
        } else {
            cands.select_nth_unstable_by(m - 1, by_logit_desc);
            cands[..m].sort_unstable_by(by_logit_desc);
        }
        let head = if full { n } else { m };
        let mut cum = 0.0f64;
        for i in 0..head {
            cum += f64::from((cands[i].logit - max).exp()) / total;
            if cum >= target {
                cands.truncate(i + 1);
                return;
            }
        }
        if full {
            // Rounding kept the sum just under top_p: keep everything.
            return;
        }
        m = m.saturating_mul(4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &[Candidate]) -> Vec<u32> {
        let mut v: Vec<Candidate> = c.to_vec();
        v.sort_unstable_by(by_logit_desc);
        v.iter().map(|c| c.id).collect()
    }

    #[test]
    fn heap_top_k_matches_a_full_sort() {
        // Many ties (values mod 13) and some banned tokens.
        let logits: Vec<f32> = (0..5000u32)
            .map(|i| {
                if i % 97 == 0 {
                    f32::NEG_INFINITY
                } else {
                    ((i * 7919) % 13) as f32
                }
            })
            .collect();
        let mut all = Vec::new();
        all_candidates(&logits, &mut all);
        all.sort_unstable_by(by_logit_desc);
        for k in [1, 2, 5, 40, 384, 4900, 4948, 5000] {
            let mut out = Vec::with_capacity(5000);
            top_k_candidates(&logits, k, &mut out);
            let expect: Vec<u32> = all.iter().take(k).map(|c| c.id).collect();
            assert_eq!(ids(&out), expect, "k = {k}");
        }
    }

    #[test]
    fn top_p_cut_matches_a_linear_scan_across_widths() {
        // A slowly decaying distribution so that the cut lands beyond several widths.
        let logits: Vec<f32> = (0..3000u32)
            .map(|i| -((i * 31 % 3000) as f32) / 700.0)
            .collect();
        let mut all = Vec::new();
        all_candidates(&logits, &mut all);
        let max = 0.0;
        let total: f64 = all.iter().map(|c| f64::from((c.logit - max).exp())).sum();
        let mut sorted = all.clone();
        sorted.sort_unstable_by(by_logit_desc);
        for p in [0.0f32, 0.01, 0.2, 0.5, 0.9, 0.99, 1.0] {
            let mut expect = sorted.len();
            let mut cum = 0.0f64;
            for (i, c) in sorted.iter().enumerate() {
                cum += f64::from((c.logit - max).exp()) / total;
                if cum >= f64::from(p) {
                    expect = i + 1;
                    break;
                }
            }
            let mut got = all.clone();
            top_p_cut(&mut got, max, total, p);
            let got_ids: Vec<u32> = got.iter().map(|c| c.id).collect();
            let exp_ids: Vec<u32> = sorted[..expect].iter().map(|c| c.id).collect();
            assert_eq!(got_ids, exp_ids, "top_p = {p}");
        }
    }
}
