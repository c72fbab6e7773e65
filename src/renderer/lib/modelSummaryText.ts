// The new-run form's teacher summary (inspectModel's ModelSummary) as the sentences it shows. Kept apart from the
// view so the wording, and the honesty of the estimate's label, can be tested without a browser.
import type { ModelLayout, ModelSummary } from '../../shared/api.ts';
import { formatBytes } from '../../shared/units.ts';
import { fmtParams } from './format.ts';

export const LAYOUT_LABEL: Record<ModelLayout, string> = {
  workbench: 'workbench checkpoint',
  'hf-mdlm': 'official HF MDLM',
  'sdtt-branch': 'SDTT branch',
  'torch-file': 'PyTorch file (official)',
};

const TOKENIZER_LABEL: Record<string, string> = {
  byte: 'byte tokenizer',
  'compact-gpt2': 'compact GPT-2 tokenizer',
  gpt2: 'GPT-2 tokenizer',
};

/** 4.2e10 -> "42.0 GFLOP" */
export function fmtFlops(n: number): string {
  for (const [scale, unit] of [
    [1e15, 'PFLOP'],
    [1e12, 'TFLOP'],
    [1e9, 'GFLOP'],
    [1e6, 'MFLOP'],
    [1e3, 'kFLOP'],
  ] as const)
    if (n >= scale) return `${(n / scale).toFixed(1)} ${unit}`;
  return `${Math.round(n)} FLOP`;
}

/** Seconds as "0.4 ms", "85 ms", "2.3 s", "2 min 10 s", "3 h 05 min". */
export function fmtStepTime(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '—';
  if (s < 0.01) return `${(s * 1000).toFixed(1)} ms`;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 59.95) return `${s.toFixed(1)} s`;
  const total = Math.round(s);
  if (total < 3600) return `${Math.floor(total / 60)} min ${total % 60} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function fmtRate(gflops: number): string {
  return `${gflops >= 10 ? gflops.toFixed(0) : gflops.toFixed(1)} GFLOP/s`;
}

export interface SummaryText {
  layout: string;
  params: string;
  vocabulary: string;
  sequence: string;
  shape: string;
  time: string;
  memory: string;
}

export function summaryText(s: ModelSummary): SummaryText {
  const e = s.estimate;
  const tokenizer = s.tokenizer
    ? (TOKENIZER_LABEL[s.tokenizer] ?? `${s.tokenizer} tokenizer`)
    : 'no tokenizer recorded';
  return {
    layout: `layout: ${LAYOUT_LABEL[s.layout]}${s.arch === 'ar' ? ' (autoregressive)' : ''}`,
    params: `${fmtParams(s.params)} parameters`,
    vocabulary: `vocabulary: ${s.vocabSize.toLocaleString('en-US')} ids, ${tokenizer}`,
    sequence: `sequence length ${s.seqLen}`,
    shape: `d ${s.dModel} · ${s.nLayers} layers · ${s.nHeads} heads`,
    time:
      e.secondsPerStep !== null && e.gflops !== null
        ? `≈ ${fmtStepTime(e.secondsPerStep)} per step at batch ${e.batchSize} (${fmtFlops(e.flops)} at this machine's measured ${fmtRate(e.gflops)} matmul rate; a rough guide: measured steps differ)`
        : `${fmtFlops(e.flops)} per step at batch ${e.batchSize} (no measured matmul rate on this host, so no time estimate)`,
    memory: `peak memory ≈ ${formatBytes(e.peakBytes)} (weights, gradients, AdamW state, EMA and the teacher ${formatBytes(e.memory.weights)}; activations ${formatBytes(e.memory.activations)}; teacher targets ${formatBytes(e.memory.targets)})`,
  };
}
