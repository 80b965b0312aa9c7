//! The sampler on a scripted fake model: schedule, remasking rules, threshold, CFG, EOS early
//! stop, infilling, pins and seeds. Expected values are worked out by hand in each test.

use unmask::choice::{Choice, Noise};
use unmask::cpu::ops;
use unmask::sampler::{self, schedule, Canvas, Denoiser, Remasking, SamplerOptions, StepEvent};
use unmask::Result;

const M: u32 = 99; // mask id of the fake vocabulary (0..100)
const EOS: u32 = 98;

/// A fake model: for each position, a token and statistics computed by `f(pos, canvas)`.
/// It records every canvas it was shown.
struct Fake<F: FnMut(usize, &[u32]) -> Choice> {
    f: F,
    seen: Vec<Vec<u32>>,
}

impl<F: FnMut(usize, &[u32]) -> Choice> Denoiser for Fake<F> {
    async fn choose(&mut self, canvas: &[u32], _noise: Noise) -> Result<Vec<Choice>> {
        self.seen.push(canvas.to_vec());
        Ok((0..canvas.len()).map(|p| (self.f)(p, canvas)).collect())
    }
    async fn logits(&mut self, _canvas: &[u32]) -> Result<Vec<f32>> {
        unreachable!("no CFG in this fake")
    }
    fn vocab_size(&self) -> usize {
        100
    }
}

fn ch(token: u32, prob: f32) -> Choice {
    Choice { token, prob, entropy: 1.0 - prob, margin: prob }
}

fn opts(steps: usize, gen: usize, block: usize) -> SamplerOptions {
    SamplerOptions { steps, gen_length: gen, block_length: block, early_stop: false, ..Default::default() }
}

/// Runs and returns (generation, events).
fn go<D: Denoiser>(model: &mut D, canvas: Canvas, o: &SamplerOptions) -> (sampler::Generation, Vec<StepEvent>) {
    let mut events = Vec::new();
    let g = pollster::block_on(sampler::run(model, canvas, o, &mut |e| {
        events.push(e.clone());
        true
    }))
    .unwrap();
    (g, events)
}

fn positions(e: &StepEvent) -> Vec<usize> {
    e.committed.iter().map(|c| c.pos).collect()
}

#[test]
fn reference_schedule_counts() {
    // 10 masks over 4 steps: 10 // 4 = 2, remainder 2 → the first two steps take one more.
    assert_eq!(schedule::tokens_per_step(10, 4), vec![3, 3, 2, 2]);
    assert_eq!(schedule::tokens_per_step(3, 5), vec![1, 1, 1, 0, 0]);
    assert_eq!(schedule::tokens_per_step(8, 4), vec![2, 2, 2, 2]);
    assert_eq!(schedule::blocks(3, 11, 4), vec![(3, 7), (7, 11)]);
}

#[test]
fn blocks_fill_left_to_right_and_never_outside_the_current_block() {
    // Prompt of 2, gen 8 in blocks of 4, 4 steps → 2 steps a block, 2 tokens a step.
    // Probability rises with position, so block 2 always looks surer than block 1: still,
    // block 1 must be finished first, its most confident (rightmost) positions first.
    let mut fake = Fake { f: |p, _: &[u32]| ch(10 + p as u32, p as f32 / 100.0), seen: vec![] };
    let canvas = Canvas::after_prompt(&[1, 2], 8, M, None);
    let (g, ev) = go(&mut fake, canvas, &opts(4, 8, 4));
    let got: Vec<Vec<usize>> = ev.iter().map(positions).collect();
    assert_eq!(got, vec![vec![4, 5], vec![2, 3], vec![8, 9], vec![6, 7]]);
    assert_eq!(ev.iter().map(|e| e.block).collect::<Vec<_>>(), vec![0, 0, 1, 1]);
    assert_eq!(ev.iter().map(|e| e.masked_left).collect::<Vec<_>>(), vec![6, 4, 2, 0]);
    assert_eq!(g.tokens, vec![1, 2, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert_eq!((g.steps, g.model_passes), (4, 4));
}

#[test]
fn committed_tokens_never_change() {
    // The fake proposes a different token at every call, even for committed positions.
    let mut calls = 0u32;
    let mut fake = Fake {
        f: move |p, c: &[u32]| {
            calls += 1;
            let _ = c;
            ch(calls % 90, 0.5 + p as f32 / 100.0)
        },
        seen: vec![],
    };
    let (g, ev) = go(&mut fake, Canvas::after_prompt(&[1], 6, M, None), &opts(6, 6, 6));
    for (i, e) in ev.iter().enumerate() {
        for c in &e.committed {
            assert_eq!(g.tokens[c.pos], c.token, "position {} changed after step {}", c.pos, i + 1);
        }
    }
    // Each canvas shown to the model keeps every token committed before.
    for w in fake.seen.windows(2) {
        for (a, b) in w[0].iter().zip(&w[1]) {
            assert!(*a == M || a == b);
        }
    }
    assert!(!g.tokens.contains(&M));
}

#[test]
fn the_four_remasking_rules_rank_differently() {
    // One block of 3 positions after a 1-token prompt, 3 steps → one token a step.
    // Position:          1     2     3
    // prob:             0.6   0.5   0.4    → low_confidence commits 1 first
    // entropy:          0.9   0.1   0.5    → entropy (lower is surer) commits 2 first
    // margin:           0.1   0.2   0.7    → margin commits 3 first
    let table = [(0.6, 0.9, 0.1), (0.5, 0.1, 0.2), (0.4, 0.5, 0.7)];
    let f = move |p: usize, _: &[u32]| {
        if p == 0 {
            return ch(0, 1.0);
        }
        let (prob, entropy, margin) = table[p - 1];
        Choice { token: 50 + p as u32, prob, entropy, margin }
    };
    for (rule, first) in [(Remasking::LowConfidence, 1), (Remasking::Entropy, 2), (Remasking::Margin, 3)] {
        let mut fake = Fake { f, seen: vec![] };
        let o = SamplerOptions { remasking: rule, ..opts(3, 3, 3) };
        let (_, ev) = go(&mut fake, Canvas::after_prompt(&[7], 3, M, None), &o);
        assert_eq!(positions(&ev[0]), vec![first], "{rule:?}");
    }
    // random: reproducible for a seed, and some seed orders differently from another.
    let order = |seed| {
        let mut fake = Fake { f, seen: vec![] };
        let o = SamplerOptions { remasking: Remasking::Random, seed, ..opts(3, 3, 3) };
        go(&mut fake, Canvas::after_prompt(&[7], 3, M, None), &o).1.iter().map(|e| e.committed[0].pos).collect::<Vec<_>>()
    };
    assert_eq!(order(5), order(5));
    assert!((0..10).any(|s| order(s) != order(s + 1)), "random remasking ignores the seed");
}

#[test]
fn threshold_commits_all_sure_positions_and_at_least_one() {
    // Block of 4: probs 0.95, 0.5, 0.92, 0.3 at τ = 0.9 → step 1 commits positions 1 and 3.
    // Then nothing is ≥ 0.9: each step commits the single best (0.5 at 2, then 0.3 at 4).
    let probs = [1.0, 0.95, 0.5, 0.92, 0.3];
    let mut fake = Fake { f: move |p, _: &[u32]| ch(20 + p as u32, probs[p]), seen: vec![] };
    let o = SamplerOptions { threshold: Some(0.9), ..opts(4, 4, 4) };
    let (g, ev) = go(&mut fake, Canvas::after_prompt(&[7], 4, M, None), &o);
    assert_eq!(ev.iter().map(positions).collect::<Vec<_>>(), vec![vec![1, 3], vec![2], vec![4]]);
    assert_eq!(g.model_passes, 3);
}

#[test]
fn threshold_mode_ends_a_block_whose_masks_the_model_predicts_as_masks() {
    // Position 2 is always predicted as the mask token itself, as sure as can be: it is never
    // committed (that would change nothing and repeat the step forever); the others go one a
    // step, best first, and then the block ends with position 2 masked, after a step that
    // commits nothing.
    let probs = [1.0, 0.5, 1.0, 0.4, 0.6];
    let mut fake = Fake { f: move |p, _: &[u32]| ch(if p == 2 { M } else { 20 + p as u32 }, probs[p]), seen: vec![] };
    let o = SamplerOptions { threshold: Some(0.9), ..opts(4, 4, 4) };
    let (g, ev) = go(&mut fake, Canvas::after_prompt(&[7], 4, M, None), &o);
    assert_eq!(ev.iter().map(positions).collect::<Vec<_>>(), vec![vec![4], vec![1], vec![3], vec![]]);
    assert_eq!(g.tokens, vec![7, 21, M, 23, 24]);
    assert_eq!((g.model_passes, g.steps), (4, 4));
}

/// A fake with logits for CFG: position 1 has cond logits [1.0, 1.2, 0] and, when the prompt is
/// masked, [0, 1.1, 0] (plus a large vocabulary tail of -10 so that V = 100).
struct Cfg {
    uncond_seen: Vec<Vec<u32>>,
}

impl Denoiser for Cfg {
    async fn choose(&mut self, _: &[u32], _: Noise) -> Result<Vec<Choice>> {
        unreachable!("CFG runs on logits")
    }
    async fn logits(&mut self, canvas: &[u32]) -> Result<Vec<f32>> {
        let uncond = canvas[0] == M;
        if uncond {
            self.uncond_seen.push(canvas.to_vec());
        }
        let mut out = vec![-10.0f32; canvas.len() * 100];
        let row = if uncond { [0.0, 1.1, 0.0] } else { [1.0, 1.2, 0.0] };
        for p in 0..canvas.len() {
            out[p * 100..p * 100 + 3].copy_from_slice(&row);
        }
        Ok(out)
    }
    fn vocab_size(&self) -> usize {
        100
    }
}

#[test]
fn cfg_mixes_conditional_and_unconditional_logits() {
    // Without guidance the argmax of cond is token 1. With cfg 1: u + 2(c − u) = [2.0, 1.3, 0]
    // → token 0. The unconditional pass saw the prompt masked and the answer as it stands.
    let mut m = Cfg { uncond_seen: vec![] };
    let o = SamplerOptions { cfg_scale: 1.0, ..opts(1, 1, 1) };
    let (g, _) = go(&mut m, Canvas::after_prompt(&[5, 6], 1, M, None), &o);
    assert_eq!(g.tokens[2], 0);
    assert_eq!(m.uncond_seen, vec![vec![M, M, M]]);
    assert_eq!(g.model_passes, 2);
    // The same logits without guidance (cfg 0 would use `choose`; check the mixing maths):
    let plain = ops::select(&[1.0, 1.2, 0.0], 0, Noise::GREEDY);
    assert_eq!(plain.token, 1);
}

#[test]
fn a_block_of_padding_stops_early() {
    // gen 8 in blocks of 4, 2 steps a block. The model predicts EOS everywhere after the prompt:
    // block 1 becomes all EOS after 2 passes; block 2 is filled with EOS without the model.
    let mut fake = Fake { f: |_, _: &[u32]| ch(EOS, 0.9), seen: vec![] };
    let o = SamplerOptions { early_stop: true, ..opts(4, 8, 4) };
    let (g, ev) = go(&mut fake, Canvas::after_prompt(&[1], 8, M, Some(EOS)), &o);
    assert_eq!(g.model_passes, 2);
    assert!(g.early_stopped);
    assert_eq!(&g.tokens[1..], &[EOS; 8]);
    let last = ev.last().unwrap();
    assert!(last.early_stop && positions(last) == vec![5, 6, 7, 8]);
    // One real token in block 1: no early stop, all 4 passes run.
    let mut fake = Fake { f: |p, _: &[u32]| ch(if p == 2 { 3 } else { EOS }, 0.9), seen: vec![] };
    let (g, _) = go(&mut fake, Canvas::after_prompt(&[1], 8, M, Some(EOS)), &o);
    assert_eq!((g.model_passes, g.early_stopped), (4, false));
}

#[test]
fn infilling_fills_only_interior_masks() {
    // Canvas a M M b M c: three masks, one block over the whole canvas, 3 steps.
    let canvas = Canvas { tokens: vec![1, M, M, 2, M, 3], gen_start: 0, mask: M, eos: None };
    let mut fake = Fake { f: |p, _: &[u32]| ch(40 + p as u32, 1.0 - p as f32 / 10.0), seen: vec![] };
    let (g, ev) = go(&mut fake, canvas, &opts(3, 6, 6));
    assert_eq!(ev.iter().map(positions).collect::<Vec<_>>(), vec![vec![1], vec![2], vec![4]]);
    assert_eq!(g.tokens, vec![1, 41, 42, 2, 44, 3]);
}

#[test]
fn pinned_positions_stay_and_are_not_counted() {
    // gen 4 with position 2 of the answer pinned to 77: 3 masks, 3 steps, one each.
    let mut canvas = Canvas::after_prompt(&[1], 4, M, None);
    canvas.tokens[3] = 77;
    let mut fake = Fake { f: |p, _: &[u32]| ch(60 + p as u32, 0.5), seen: vec![] };
    let (g, ev) = go(&mut fake, canvas, &opts(3, 4, 4));
    assert_eq!(g.tokens, vec![1, 61, 62, 77, 64]);
    assert!(ev.iter().all(|e| e.committed.len() == 1 && e.committed[0].pos != 3));
}

/// A fake that samples its fixed logits with the sampler's noise (like the GPU does).
struct Noisy;

impl Denoiser for Noisy {
    async fn choose(&mut self, canvas: &[u32], noise: Noise) -> Result<Vec<Choice>> {
        let row: Vec<f32> = (0..100).map(|v| (v % 7) as f32 * 0.1).collect();
        Ok((0..canvas.len()).map(|p| ops::select(&row, p as u32, noise)).collect())
    }
    async fn logits(&mut self, _: &[u32]) -> Result<Vec<f32>> {
        unreachable!()
    }
    fn vocab_size(&self) -> usize {
        100
    }
}

#[test]
fn sampling_is_reproducible_for_a_seed() {
    let run = |seed, t| {
        let o = SamplerOptions { temperature: t, seed, ..opts(8, 8, 8) };
        go(&mut Noisy, Canvas::after_prompt(&[1], 8, M, None), &o).0.tokens
    };
    assert_eq!(run(1, 1.0), run(1, 1.0));
    assert_ne!(run(1, 1.0), run(2, 1.0));
    // At T = 0 the seed does not matter: every position takes the argmax (v % 7 == 6 first at v = 6).
    assert_eq!(run(1, 0.0), vec![1, 6, 6, 6, 6, 6, 6, 6, 6]);
    assert_eq!(run(1, 0.0), run(2, 0.0));
}

/// A fake whose logits never change: per position a fixed row (the prompt's: a one-hot),
/// chosen from by the CPU twin of `select.wgsl` under the step's noise and filters.
struct Fixed(Vec<Vec<f32>>);

impl Denoiser for Fixed {
    async fn choose(&mut self, canvas: &[u32], noise: Noise) -> Result<Vec<Choice>> {
        Ok((0..canvas.len()).map(|p| ops::select(&self.0[p], p as u32, noise)).collect())
    }
    async fn logits(&mut self, _: &[u32]) -> Result<Vec<f32>> {
        unreachable!()
    }
    fn vocab_size(&self) -> usize {
        10
    }
}

#[test]
fn top_k_and_top_p_change_what_greedy_commits_first() {
    // Position 1: probabilities 0.46, 0.07, then eight below 0.07 (sum 1); position 2: 0.47,
    // 0.10, then eight below 0.07. Unfiltered, position 2 is surer (0.47 > 0.46). With top_k 2
    // both keep their two best and renormalise: 0.46 / 0.53 = 0.868 > 0.47 / 0.57 = 0.825, so
    // position 1 goes first. top_p 0.5 keeps the same two (mass before the second 0.46 and 0.47
    // ≤ 0.5, before the third 0.53 and 0.57 > 0.5).
    let ln = |ps: [f32; 10]| ps.iter().map(|p| p.ln()).collect::<Vec<f32>>();
    let a = ln([0.46, 0.07, 0.066, 0.064, 0.062, 0.060, 0.058, 0.056, 0.054, 0.050]);
    let b = ln([0.10, 0.47, 0.064, 0.060, 0.056, 0.054, 0.052, 0.050, 0.048, 0.046]);
    let prompt = [0.0, -9.0, -9.0, -9.0, -9.0, -9.0, -9.0, -9.0, -9.0, -9.0].to_vec();
    let first = |o: SamplerOptions| {
        let (g, ev) = go(&mut Fixed(vec![prompt.clone(), a.clone(), b.clone()]), Canvas::after_prompt(&[0], 2, M, None), &o);
        assert_eq!(g.tokens, vec![0, 0, 1], "the filters never remove the argmax");
        ev[0].committed[0]
    };
    let plain = first(opts(2, 2, 2));
    assert_eq!(plain.pos, 2);
    assert!((plain.confidence - 0.47).abs() < 1e-5, "{plain:?}");
    for (top_k, top_p) in [(Some(2), None), (None, Some(0.5)), (Some(2), Some(0.5)), (Some(5), Some(0.5))] {
        let c = first(SamplerOptions { top_k, top_p, ..opts(2, 2, 2) });
        assert_eq!(c.pos, 1, "top_k {top_k:?}, top_p {top_p:?}");
        assert!((c.confidence - 0.46 / 0.53).abs() < 1e-5, "{c:?}");
    }
    // Filters that keep more than the two leave the order alone.
    assert_eq!(first(SamplerOptions { top_k: Some(10), top_p: Some(1.0), ..opts(2, 2, 2) }), plain);
}

#[test]
fn bad_settings_are_one_line_errors() {
    let err = |o: SamplerOptions| o.validate().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err(opts(5, 8, 4)).contains("multiple of the number of blocks (2)"));
    assert!(err(opts(4, 10, 4)).contains("not a multiple of --block-length"));
    assert!(err(SamplerOptions { temperature: -1.0, ..opts(4, 8, 4) }).contains("--temperature"));
    assert!(err(SamplerOptions { threshold: Some(0.0), ..opts(4, 8, 4) }).contains("(0, 1]"));
    assert!(err(SamplerOptions { threshold: Some(1.5), ..opts(4, 8, 4) }).contains("(0, 1]"));
    assert!(err(SamplerOptions { threshold: Some(0.9), alg_temp: 0.5, ..opts(4, 8, 4) }).contains("use one of them"));
    let block = SamplerOptions { threshold: Some(0.9), alg_temp: 0.5, schedule: sampler::Schedule::Block, ..opts(4, 8, 4) };
    assert_eq!(err(block), "", "the block schedule (LLaDA 2) runs a fixed number of steps a block: nothing to refuse");
    assert!(err(SamplerOptions { top_k: Some(0), ..opts(4, 8, 4) }).contains("--top-k must be at least 1"));
    for p in [0.0, -0.5, 1.5, f32::NAN] {
        assert!(err(SamplerOptions { top_p: Some(p), ..opts(4, 8, 4) }).contains("--top-p"), "{p}");
    }
    assert!(err(SamplerOptions { top_k: Some(1), top_p: Some(1.0), ..opts(4, 8, 4) }).is_empty());
    // Options saved before the filters existed still read (the filters off).
    let old: SamplerOptions = serde_json::from_str(r#"{"steps": 8, "temperature": 0.5}"#).unwrap();
    assert_eq!((old.steps, old.top_k, old.top_p), (8, None, None));
    assert!(Remasking::parse("confident").unwrap_err().to_string().contains("low_confidence"));
    use unmask::sampler::text::{parse_infill, parse_pin, Piece};
    assert_eq!(
        parse_infill("The [MASK] sat on <mask:2>.", 3).unwrap(),
        vec![Piece::Text("The ".into()), Piece::Masks(3), Piece::Text(" sat on ".into()), Piece::Masks(2), Piece::Text(".".into())]
    );
    for bad in ["no spans here", "a [MASK b", "a <mask:3 b", "a <mask:x> b", "a <mask:0> b"] {
        assert!(parse_infill(bad, 3).is_err(), "{bad}");
    }
    assert!(parse_pin("3").is_err() && parse_pin("x:word").is_err() && parse_pin("2:").is_err());
    assert_eq!(parse_pin("2:cat").unwrap(), (2, "cat".to_string()));
}

#[test]
fn a_stream_holds_back_only_a_tail_that_may_start_a_stop_string() {
    use unmask::sampler::final_text::partial_suffix;
    assert_eq!(partial_suffix("The answer", "answer is"), 6);
    assert_eq!(partial_suffix("The ans", "answer"), 3);
    assert_eq!(partial_suffix("The", "xyz"), 0);
    assert_eq!(partial_suffix("", "xyz"), 0);
    // Only whole characters: "é" is two bytes.
    assert_eq!(partial_suffix("aé", "éb"), 2);
    // A whole stop string is not a partial one (it is found, not held).
    assert_eq!(partial_suffix("stop", "stop"), 0);
}
