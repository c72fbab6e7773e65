// Sample-grid helpers: MASK rendering and the unmasking replay of a SampleCell trajectory.
import type { SampleCell } from '../../shared/api.ts';

export const MASK_GLYPH = '░';
const MASK_PATTERN = /\[MASK\]|<mask>|<\|mask\|>|<MASK>/g;

/** The text with MASK tokens (as any of the usual spellings) shown as ░. */
export function showMasks(text: string): string {
  return text.replace(MASK_PATTERN, MASK_GLYPH);
}

export interface TextSegment {
  text: string;
  /** A word found nowhere in the training text. */
  invented: boolean;
}

/**
 * `text` cut into plain and invented-word segments by `spans` ([start, end) offsets, as SampleCell.inventedWords).
 * Spans come from a file on disk: out-of-range, empty, unsorted or overlapping ones are clipped or skipped, never
 * trusted, and the segments always join back to `text`.
 */
export function inventedSegments(
  text: string,
  spans: readonly (readonly [number, number])[] | undefined,
): TextSegment[] {
  const out: TextSegment[] = [];
  let at = 0;
  const sorted = [...(spans ?? [])]
    .filter(([a, b]) => Number.isInteger(a) && Number.isInteger(b))
    .sort((x, y) => x[0] - y[0]);
  for (const [a0, b0] of sorted) {
    const a = Math.max(a0, at);
    const b = Math.min(b0, text.length);
    if (a >= b) continue;
    if (a > at) out.push({ text: text.slice(at, a), invented: false });
    out.push({ text: text.slice(a, b), invented: true });
    at = b;
  }
  if (at < text.length || out.length === 0) out.push({ text: text.slice(at), invented: false });
  return out;
}

export interface ReplayToken {
  text: string;
  masked: boolean;
  /** Revealed at exactly this step (highlighted). */
  fresh: boolean;
}

/**
 * Tokens of `cell` after sampling step `s` (0 = all masked start, trajectory.length-1 = final). A position counts
 * as masked while its id differs from the final id (ancestral sampling with SUBS never changes a revealed token),
 * or when it equals `maskId` if given. Token text: tokenTexts[position] when tokenTexts has one entry per position
 * (the decoded final sequence), else tokenTexts[id] (a vocabulary table), else the id.
 */
export function replayTokens(cell: SampleCell, s: number, maskId?: number): ReplayToken[] {
  const traj = cell.trajectory;
  if (!traj || traj.length === 0) return [];
  const step = Math.min(Math.max(0, Math.round(s)), traj.length - 1);
  const final = traj[traj.length - 1]!;
  const cur = traj[step]!;
  const prev = step > 0 ? traj[step - 1]! : undefined;
  const texts = cell.tokenTexts;
  const perPosition = texts !== undefined && texts.length === final.length;
  const isMasked = (row: number[] | undefined, i: number) =>
    row === undefined ? true : maskId !== undefined ? row[i] === maskId : row[i] !== final[i];
  const out: ReplayToken[] = [];
  for (let i = 0; i < cur.length; i++) {
    const masked = isMasked(cur, i);
    const id = cur[i]!;
    const text = masked ? MASK_GLYPH : perPosition ? texts[i]! : (texts?.[id] ?? `⟨${id}⟩`);
    out.push({ text, masked, fresh: !masked && (step === 0 ? false : isMasked(prev, i)) });
  }
  return out;
}

/** Rows (teacher -1 first, then rounds ascending) and columns (step counts descending) of a samples grid. */
export function gridAxes(cells: readonly SampleCell[]): { rounds: number[]; steps: number[] } {
  const rounds = [...new Set(cells.map((c) => c.round))].sort((a, b) => a - b);
  const steps = [...new Set(cells.map((c) => c.steps))].sort((a, b) => b - a);
  return { rounds, steps };
}
