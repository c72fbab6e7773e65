// Data of the "quality against sampling steps" chart of a distillation (the picture SDTT is about: a student that
// samples in N/2 steps as well as its teacher did in N): one line per model, the original teacher and each round's
// student, through its evaluation rows.
import type { EvalSummaryRow, RoundSummary } from '../../shared/api.ts';

export type QualityMetric = 'gen_ppl' | 'entropy' | 'known_words';

export const QUALITY_METRICS: Record<QualityMetric, { label: string; better: string }> = {
  gen_ppl: { label: 'gen PPL', better: 'lower is better' },
  entropy: { label: 'entropy', better: 'too low = repetitive' },
  known_words: { label: 'known words', better: 'higher is better' },
};

export interface QualityPoint {
  /** Sampling steps. */
  n: number;
  y: number;
  /** ± one standard error (gen PPL only), 0 where unknown. */
  se: number;
}

export interface QualitySeries {
  key: string;
  label: string;
  teacher: boolean;
  /** Ascending in n; rows without a finite value for the metric are left out. */
  points: QualityPoint[];
}

function point(row: EvalSummaryRow, metric: QualityMetric): QualityPoint | null {
  const raw = metric === 'known_words' ? (row.known_words ?? null) : row[metric];
  if (raw === null || !Number.isFinite(raw) || !Number.isFinite(row.steps) || row.steps <= 0) return null;
  const se = metric === 'gen_ppl' && row.gen_ppl_se !== null && Number.isFinite(row.gen_ppl_se) ? row.gen_ppl_se : 0;
  return { n: row.steps, y: metric === 'known_words' ? 100 * raw : raw, se };
}

/** The teacher's line, then one per evaluated round (in round order); models without a value for `metric` are left out. */
export function qualitySeries(
  teacher: EvalSummaryRow[] | undefined,
  rounds: readonly RoundSummary[],
  metric: QualityMetric,
): QualitySeries[] {
  const models = [
    ...(teacher ? [{ key: 'teacher', label: 'teacher', teacher: true, rows: teacher }] : []),
    ...[...rounds]
      .sort((a, b) => a.round - b.round)
      .map((r) => ({
        key: `R${r.round}`,
        label: `R${r.round} student (${r.studentSteps})`,
        teacher: false,
        rows: r.eval ?? [],
      })),
  ];
  return models
    .map(({ rows, ...m }) => ({
      ...m,
      points: rows.flatMap((row) => point(row, metric) ?? []).sort((a, b) => a.n - b.n),
    }))
    .filter((s) => s.points.length > 0);
}

/** The metrics some model has a value for, in QUALITY_METRICS order (gen PPL needs a judge, known words a training text). */
export function availableMetrics(
  teacher: EvalSummaryRow[] | undefined,
  rounds: readonly RoundSummary[],
): QualityMetric[] {
  return (Object.keys(QUALITY_METRICS) as QualityMetric[]).filter((m) => qualitySeries(teacher, rounds, m).length > 0);
}
