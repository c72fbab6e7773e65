// How an evaluation row reads in text (the CLI tables, `sdtt report`, exported model cards): one format everywhere.
import type { EvalSummaryRow } from './api.ts';

function pplDecimals(x: number): number {
  return x >= 1000 ? 0 : x >= 100 ? 1 : 2;
}

export function fmtPpl(x: number): string {
  return x.toFixed(pplDecimals(x));
}

/** "187.6 ± 26.7": the s.e. with the decimals of the value it qualifies. */
export function fmtPplSe(ppl: number, se: number | null | undefined): string {
  return se == null || !Number.isFinite(se) ? fmtPpl(ppl) : `${fmtPpl(ppl)} ± ${se.toFixed(pplDecimals(ppl))}`;
}

/** "86.1 %"; "" when the known-word rate was not computed. */
export function fmtKnownWords(row: Pick<EvalSummaryRow, 'known_words'>): string {
  return typeof row.known_words === 'number' && Number.isFinite(row.known_words)
    ? `${(100 * row.known_words).toFixed(1)} %`
    : '';
}

/** "187.6 ± 26.7 / 3.867", "/ 88.9 %" added when the known-word rate was computed; "– / 3.867" without a judge;
 * "" when the cell was not evaluated. Rows come from files, so a missing or non-finite number reads as "–". */
export function evalCell(row: EvalSummaryRow | undefined): string {
  if (!row) return '';
  const ppl = row.gen_ppl == null || !Number.isFinite(row.gen_ppl) ? '–' : fmtPplSe(row.gen_ppl, row.gen_ppl_se);
  const entropy = typeof row.entropy === 'number' && Number.isFinite(row.entropy) ? row.entropy.toFixed(3) : '–';
  const known = fmtKnownWords(row);
  return `${ppl} / ${entropy}${known ? ` / ${known}` : ''}`;
}
