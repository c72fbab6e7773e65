// The new-run form's "Browse…" panel for the teacher path: folders listed by the host (browseFolder), so it works the
// same in Electron and in a browser tab, where a native dialog could not hand back a path. Plain buttons throughout,
// so Tab / Enter / Space drive it; Escape closes it. Opening a folder keeps the last listing up until the next one
// arrives, and an error (a refused or vanished folder) is shown inline above it.
import { useEffect, useRef, useState } from 'react';
import type { FolderEntryKind, FolderListing } from '../../shared/api.ts';
import { api } from '../store/appStore.ts';

const KIND_LABEL: Record<FolderEntryKind, string> = {
  model: 'workbench model',
  official: 'official MDLM / SDTT',
  folder: '',
};

export interface FolderBrowserProps {
  /** The folder to open first; undefined = the workspace. */
  start?: string;
  /** A model or official entry was chosen; `folder` is where it was listed (to reopen there next time). */
  onPick(path: string, folder: string): void;
  onClose(): void;
}

export function FolderBrowser({ start, onPick, onClose }: FolderBrowserProps) {
  const [listing, setListing] = useState<FolderListing | null>(null);
  const [error, setError] = useState<string>();
  const [loading, setLoading] = useState(false);
  // Only the latest request's answer counts: a slow listing must not replace a folder opened after it.
  const latest = useRef(0);

  /** Lists `path` (undefined = the workspace); `orWorkspace`: a remembered folder that has gone falls back to it. */
  function open(path: string | undefined, orWorkspace = false) {
    const ticket = ++latest.current;
    const list = (p?: string) => api().browseFolder(p === undefined ? {} : { path: p });
    setLoading(true);
    (orWorkspace && path !== undefined ? list(path).catch(() => list()) : list(path))
      .then(
        (l) => {
          if (ticket !== latest.current) return;
          setListing(l);
          setError(undefined);
        },
        (e: unknown) => ticket === latest.current && setError((e as Error).message),
      )
      .finally(() => ticket === latest.current && setLoading(false));
  }

  // Once per start folder (`open` is a fresh function each render, not a reason to list again).
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(() => open(start, true), [start]);

  return (
    <div
      className="folder-browser"
      data-testid="folder-browser"
      role="group"
      aria-label="Browse for a teacher model"
      aria-busy={loading}
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.stopPropagation();
          onClose();
        }
      }}
    >
      <div className="row folder-browser-roots">
        {listing?.roots.map((r) => (
          <button
            key={r.path}
            type="button"
            data-testid="folder-root"
            data-path={r.path}
            title={r.path}
            aria-pressed={listing.path === r.path}
            onClick={() => open(r.path)}
          >
            {r.label}
          </button>
        ))}
        <span className="spacer" />
        <button type="button" data-testid="folder-browser-close" onClick={onClose}>
          Close
        </button>
      </div>
      <div className="row">
        <button
          type="button"
          data-testid="folder-up"
          aria-label="up to the parent folder"
          disabled={!listing?.parent}
          onClick={() => listing?.parent && open(listing.parent)}
        >
          ↑ Up
        </button>
        <code className="grow folder-browser-path" data-testid="folder-path">
          {listing?.path ?? 'listing…'}
        </code>
      </div>
      {error && (
        <div className="field-error" data-testid="folder-browser-error" role="alert">
          {error}
        </div>
      )}
      {listing && (
        <ul className="folder-entries" data-testid="folder-entries">
          {listing.entries.map((e) => (
            <li key={e.path}>
              <button
                type="button"
                data-testid="folder-entry"
                data-name={e.name}
                data-kind={e.kind}
                title={e.kind === 'folder' ? `open ${e.path}` : `use ${e.path} as the teacher`}
                onClick={() => (e.kind === 'folder' ? open(e.path) : onPick(e.path, listing.path))}
              >
                <span aria-hidden="true">{e.kind === 'folder' ? '📁' : '◆'}</span> {e.name}
                {KIND_LABEL[e.kind] && <span className="muted"> · {KIND_LABEL[e.kind]}</span>}
              </button>
            </li>
          ))}
          {listing.entries.length === 0 && (
            <li className="muted" data-testid="folder-empty">
              no folders or models here
            </li>
          )}
        </ul>
      )}
      {listing?.truncated && (
        <div className="muted" data-testid="folder-truncated">
          only the first {listing.entries.length} entries by name are shown; type the path for the others
        </div>
      )}
    </div>
  );
}
