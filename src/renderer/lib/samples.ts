// Sample-grid helpers: MASK rendering and the unmasking replay of a SampleCell trajectory.
import type { SampleCell } from '../../shared/api.ts';

export const MASK_GLYPH = '░';
const MASK_PATTERN = /\[MASK\]|<mask>|<\|mask\|>|<MASK>/g;

/** The text with MASK tokens (as any of the usual spellings) shown as ░. */
export function showMasks(text: string): string {
  return text.replace(MASK_PATTERN, MASK_GLYPH);
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
    const text = masked ? MASK_GLYPH : perPosition ? texts[i]! : texts?.[id] ?? `⟨${id}⟩`;
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
