import { useState } from 'react';
import type { ExportDtype, ExportFormat } from '../../shared/api.ts';
import { api, useApp } from '../store/appStore.ts';
import { RunModelSelect, useRunModelChoices } from './RunModelSelect.tsx';

/** Export of a distillation round's student, or of a pretraining run's latest checkpoint (round -1). */
export function ExportPanel({ id }: { id: string }) {
  const workspace = useApp((s) => s.info?.workspace);
  const { choices, pretrained } = useRunModelChoices(id, false);
  const [picked, setPicked] = useState<string>('');
  const [dtype, setDtype] = useState<ExportDtype>('f32');
  const [format, setFormat] = useState<ExportFormat>('workbench');
  // The official layout is float32 only (as mdlm-owt): choosing it takes float16 off the table.
  const weights: ExportDtype = format === 'official' ? 'f32' : dtype;
  const [folder, setFolder] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ folder: string; files: string[] } | null>(null);
  const [error, setError] = useState<string>();
  // The user's pick while it is offered, else the newest choice. (The panel remounts with its run view for each
  // run, App keys RunView by id, so nothing here needs resetting when the run changes.)
  const round = choices.some((c) => c.value === picked)
    ? picked
    : choices.length
      ? choices[choices.length - 1]!.value
      : '';
  // Named after what is exported, so exporting again after more training, or as f16 after f32, gets a new folder.
  const step = useApp((s) => s.runs[id]?.step ?? 0);
  const what = round === '' ? '' : pretrained ? `-step${step}` : `-round${round}`;
  const defaultFolder = workspace
    ? `${workspace.replace(/[\\/]+$/, '')}/runs/${id}/export${what}${format === 'official' ? '-official' : ''}${weights === 'f16' ? '-f16' : ''}`
    : '';

  async function submit() {
    setBusy(true);
    setError(undefined);
    setResult(null);
    try {
      setResult(
        await api().exportRound({
          id,
          round: Number(round),
          folder: folder.trim() || defaultFolder,
          dtype: weights,
          format,
        }),
      );
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
        <span className="muted">
          model.safetensors + config.json + model card of{' '}
          {pretrained ? 'the model as trained so far (EMA weights)' : "one round's student"}
        </span>
      </div>
      <div className="export-row">
        <RunModelSelect
          label={pretrained ? 'checkpoint' : 'round'}
          testId="export-round"
          choices={choices}
          value={round}
          empty={pretrained ? 'no checkpoint yet' : 'no finished round yet'}
          onChange={setPicked}
        />
        <label>
          layout
          <select
            data-testid="export-format"
            value={format}
            onChange={(e) => setFormat(e.target.value as ExportFormat)}
          >
            <option value="workbench">workbench</option>
            <option value="official">official MDLM (HF mdlm-owt names)</option>
          </select>
        </label>
        <label>
          weights
          <select
            data-testid="export-dtype"
            value={weights}
            disabled={format === 'official'}
            title={format === 'official' ? 'the official MDLM layout is float32 only' : undefined}
            onChange={(e) => setDtype(e.target.value as ExportDtype)}
          >
            <option value="f32">float32</option>
            <option value="f16">float16 (half the size)</option>
          </select>
        </label>
        <label className="grow">
          folder
          <input
            data-testid="export-folder"
            value={folder}
            placeholder={defaultFolder || '/path/to/export/folder'}
            onChange={(e) => setFolder(e.target.value)}
          />
        </label>
        <button
          type="button"
          className="primary"
          data-testid="export-submit"
          disabled={!canExport}
          onClick={() => void submit()}
        >
          {busy ? 'Exporting…' : 'Export'}
        </button>
      </div>
      {format === 'official' && (
        <div className="field-help" data-testid="export-format-help">
          Official MDLM layout: float32 only; an HF config.json and tensor names that the official MDLM / SDTT code
          loads (the workbench imports it back).
        </div>
      )}
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
