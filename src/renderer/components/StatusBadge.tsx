import type { RunStatus } from '../../shared/runState.ts';

export function StatusBadge({ status, title }: { status: RunStatus | 'pending' | 'done'; title?: string }) {
  return (
    <span className={`badge badge-${status}`} data-status={status} title={title ?? status}>
      {status === 'running' && <span className="pulse" aria-hidden="true" />}
      {status}
    </span>
  );
}
