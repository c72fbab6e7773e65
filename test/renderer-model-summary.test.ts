// The new-run form's teacher summary as text (renderer/lib/modelSummaryText.ts): what each layout is called, and the
// estimate labelled as FLOPs at the measured matmul rate, or FLOPs and memory only when there is no rate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelSummary } from '../src/shared/api.ts';
import { fmtFlops, fmtStepTime, summaryText } from '../src/renderer/lib/modelSummaryText.ts';

const SUMMARY: ModelSummary = {
  path: '/ws/mdlm-owt',
  checkpoint: '/ws/mdlm-owt',
  layout: 'hf-mdlm',
  arch: 'mdlm',
  params: 169_626_706,
  vocabSize: 50258,
  seqLen: 1024,
  dModel: 768,
  nLayers: 12,
  nHeads: 12,
  tokenizer: 'gpt2',
  problems: [],
  estimate: {
    batchSize: 8,
    flops: 1.2387e13,
    peakBytes: 5.2e9,
    memory: { weights: 4.07e9, activations: 0.3e9, targets: 0.83e9 },
    gflops: 95,
    secondsPerStep: 130.4,
  },
};

test('the summary of an official HF model with a measured rate', () => {
  assert.deepEqual(summaryText(SUMMARY), {
    layout: 'layout: official HF MDLM',
    params: '169.6M parameters',
    vocabulary: 'vocabulary: 50,258 ids, GPT-2 tokenizer',
    sequence: 'sequence length 1024',
    shape: 'd 768 · 12 layers · 12 heads',
    time: "≈ 2 min 10 s per step at batch 8 (12.4 TFLOP at this machine's measured 95 GFLOP/s matmul rate; a rough guide: measured steps differ)",
    memory:
      'peak memory ≈ 5.20 GB (weights, gradients, AdamW state, EMA and the teacher 4.07 GB; activations 300.0 MB; teacher targets 830.0 MB)',
  });
});

test('without a measured rate: FLOPs and memory only; no tokenizer said as such', () => {
  const t = summaryText({
    ...SUMMARY,
    layout: 'sdtt-branch',
    tokenizer: null,
    vocabSize: 258,
    estimate: { ...SUMMARY.estimate, gflops: null, secondsPerStep: null },
  });
  assert.equal(t.layout, 'layout: SDTT branch');
  assert.equal(t.vocabulary, 'vocabulary: 258 ids, no tokenizer recorded');
  assert.equal(t.time, '12.4 TFLOP per step at batch 8 (no measured matmul rate on this host, so no time estimate)');
});

test('step times and FLOP counts as people read them', () => {
  assert.deepEqual([0.0004, 0.085, 2.34, 59.96, 130.4, 3 * 3600 + 5 * 60].map(fmtStepTime), [
    '0.4 ms',
    '85 ms',
    '2.3 s',
    '1 min 0 s',
    '2 min 10 s',
    '3 h 05 min',
  ]);
  assert.deepEqual([42.4e6, 1.825e11, 999].map(fmtFlops), ['42.4 MFLOP', '182.5 GFLOP', '999 FLOP']);
});
