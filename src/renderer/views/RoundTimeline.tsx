import { StatusBadge } from '../components/StatusBadge.tsx';
import { fmtNum, roundLabel } from '../lib/format.ts';
import { useApp } from '../store/appStore.ts';

export function RoundTimeline({ id }: { id: string }) {
  const rounds = useApp((s) => s.rounds[id]) ?? [];
  return (
    <section className="panel">
      <div className="panel-head">
        <h3>Rounds</h3>
        <span className="muted">
          gen PPL ± s.e. (— without a judge), entropy, known words and held-out NELBO at the student's step count
        </span>
      </div>
      <ol className="timeline" data-testid="round-timeline">
        {rounds.length === 0 && <li className="muted pad">Rounds appear when the run starts.</li>}
        {rounds.map((r) => {
          const ev = r.eval?.find((e) => e.steps === r.studentSteps) ?? r.eval?.[0];
          return (
            <li
              key={r.round}
              className={`round round-${r.status}`}
              data-testid={`round-${r.round}`}
              data-status={r.status}
            >
              <div className="round-top">
                <span className="round-no">R{r.round}</span>
                <StatusBadge status={r.status} />
              </div>
              <div className="round-label">{roundLabel(r.teacherSteps, r.studentSteps)}</div>
              <div className="round-steps mono">
                {r.status === 'pending'
                  ? 'not started'
                  : `steps ${r.firstStep.toLocaleString()}–${r.lastStep.toLocaleString()}`}
              </div>
              {ev ? (
                <div className="round-eval">
                  <span
                    title={
                      ev.gen_ppl === null
                        ? 'no generative perplexity: the run has no judge'
                        : `generative perplexity at ${ev.steps} steps`
                    }
                    data-testid={`round-${r.round}-ppl`}
                  >
                    PPL <b>{fmtNum(ev.gen_ppl)}</b>
                    {ev.gen_ppl !== null && <> ± {fmtNum(ev.gen_ppl_se, 3)}</>}
                  </span>
                  <span title="unigram entropy of the samples">H {fmtNum(ev.entropy, 3)}</span>
                  {typeof ev.known_words === 'number' && (
                    <span
                      title="share of the samples' words found in the training text"
                      data-testid={`round-${r.round}-words`}
                    >
                      words {fmtNum(100 * ev.known_words, 3)} %
                    </span>
                  )}
                  <span className="muted">@{ev.steps}</span>
                  {r.heldoutNelbo !== undefined && (
                    <span
                      title="held-out NELBO of the student after the round (nats/token)"
                      data-testid={`round-${r.round}-nelbo`}
                    >
                      NELBO {fmtNum(r.heldoutNelbo, 4)}
                    </span>
                  )}
                </div>
              ) : (
                <div className="round-eval muted">{r.status === 'done' ? 'no evaluation' : 'eval after the round'}</div>
              )}
            </li>
          );
        })}
      </ol>
    </section>
  );
}
