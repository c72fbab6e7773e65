import { useEffect, useState } from 'react';
import { api, useApp } from '../store/appStore.ts';

export function ExportPanel({ id }: { id: string }) {
  const rounds = useApp((s) => s.rounds[id]) ?? [];
  const workspace = useApp((s) => s.info?.workspace);
  const done = rounds.filter((r) => r.status === 'done');
  const [round, setRound] = useState<string>('');
  const [folder, setFolder] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ folder: string; files: string[] } | null>(null);
  const [error, setError] = useState<string>();
  const lastDone = done.length ? String(done[done.length - 1]!.round) : '';

  useEffect(() => {
    if (round === '' && lastDone !== '') setRound(lastDone);
  }, [round, lastDone]);
  useEffect(() => {
    setResult(null);
    setError(undefined);
    setRound('');
    setFolder('');
  }, [id]);
  const defaultFolder = workspace ? `${workspace.replace(/[\\/]+$/, '')}/runs/${id}/export${round !== '' ? `-round${round}` : ''}` : '';

  async function run() {
    setBusy(true);
    setError(undefined);
    setResult(null);
    try {
      setResult(await api().exportRound({ id, round: Number(round), folder: folder.trim() || defaultFolder }));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }
  const canExport = round !== '' && (folder.trim() !== '' || defaultFolder !== '') && !busy;
  return (
    <section className="panel">
      <div className="panel-head">
        <h3>Export</h3>
        <span className="muted">model.safetensors + config.json + model card of one round's student</span>
      </div>
      <div className="export-row">
        <label>
          round
          <select data-testid="export-round" value={round} onChange={(e) => setRound(e.target.value)}>
            {done.length === 0 && <option value="">no finished round yet</option>}
            {done.map((r) => (
              <option key={r.round} value={String(r.round)}>
                R{r.round} · student {r.studentSteps} steps
              </option>
            ))}
          </select>
        </label>
        <label className="grow">
          folder
          <input data-testid="export-folder" value={folder} placeholder={defaultFolder || '/path/to/export/folder'} onChange={(e) => setFolder(e.target.value)} />
        </label>
        <button type="button" className="primary" data-testid="export-submit" disabled={!canExport} onClick={() => void run()}>
          {busy ? 'Exporting…' : 'Export'}
        </button>
      </div>
      {error && (
        <div className="error-line" data-testid="export-error" role="alert">
          {error}
        </div>
      )}
      {result && (
        <div className="export-result" data-testid="export-result">
          <div>
            written to <span className="mono">{result.folder}</span>
          </div>
          <ul>
            {result.files.map((f) => (
              <li key={f} className="mono">
                {f}
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
