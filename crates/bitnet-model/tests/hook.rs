//! The quantization hook: margins tracked per token, and a forced rounding that changes the
//! numbers from its position on and nowhere before.

use bitnet_model::hook::{Flip, ForceRounding, QuantSite};
use bitnet_model::{Logits, Model, State};

#[test]
fn a_forced_rounding_changes_logits_from_its_position_on() {
    let Some(dir) = bitnet_testdata::shared_file("data/real-models/bitllama2c-tinystories-3m")
    else {
        return;
    };
    let m = Model::load(&dir).unwrap();
    let ids = [1u32, 403, 407, 261, 378, 432, 383];
    let v = m.config.vocab_size;
    let run = |hook: Option<ForceRounding>| -> (Vec<f32>, usize) {
        let mut st = State::new(&m.config, 16, 16).unwrap();
        let had = hook.is_some();
        if let Some(h) = hook {
            st.set_quant_hook(Some(Box::new(h)));
        }
        let out = m.forward(&mut st, &ids, 0, Logits::All).unwrap().to_vec();
        let applied = if had {
            st.quant_hook()
                .unwrap()
                .as_any()
                .downcast_ref::<ForceRounding>()
                .unwrap()
                .applied
        } else {
            0
        };
        (out, applied)
    };
    let (base, _) = run(None);
    let flip = Flip {
        position: 3,
        layer: 2,
        site: QuantSite::GateUp,
        element: 17,
    };
    let (flipped, applied) = run(Some(ForceRounding {
        flips: vec![flip],
        applied: 0,
    }));
    // TinyStories' linears have their own input norm, so gate and up each quantize their
    // own input and the flip applies to both.
    assert_eq!(applied, 2);
    for p in 0..ids.len() {
        let (a, b) = (&base[p * v..(p + 1) * v], &flipped[p * v..(p + 1) * v]);
        if p < 3 {
            assert_eq!(a, b, "position {p} is before the flip");
        } else if p == 3 {
            assert_ne!(a, b, "the flipped position must change");
        }
    }
    // Margins: one per token of the pass, all in [0, 0.5].
    let mut st = State::new(&m.config, 16, 16).unwrap();
    st.track_rounding_margin(true);
    m.forward(&mut st, &ids, 0, Logits::Last).unwrap();
    let mg = st.rounding_margin().unwrap();
    assert_eq!(mg.len(), ids.len());
    assert!(mg.iter().all(|&x| (0.0..=1.0).contains(&x)), "{mg:?}");
}
