import { useApp } from '../store/appStore.ts';

export function Header() {
  const info = useApp((s) => s.info);
  const infoError = useApp((s) => s.infoError);
  const conn = useApp((s) => s.conn);
  const host = useApp((s) => s.host);
  const connLabel =
    conn.state === 'open'
      ? host === 'electron'
        ? 'local'
        : 'connected'
      : conn.state === 'reconnecting'
        ? `reconnecting${conn.retryInMs !== undefined ? ` in ${Math.ceil(conn.retryInMs / 1000)}s` : '…'}`
        : conn.state === 'connecting'
          ? 'connecting…'
          : conn.state === 'failed'
            ? 'access denied: bad or missing token'
            : 'disconnected';
  return (
    <header className="header">
      <div className="brand">
        <span className="logo" aria-hidden="true">
          ◧
        </span>
        SDTT Workbench
        {info && <span className="version">v{info.version}</span>}
      </div>
      <div className="header-right">
        <span
          className={`backend-badge${info ? '' : ' backend-unknown'}`}
          data-testid="backend-badge"
          title={info ? `workspace: ${info.workspace}` : infoError}
        >
          {info ? (
            <>
              <b>{info.backend}</b> · {info.device}
            </>
          ) : infoError ? (
            <>backend unknown: {infoError}</>
          ) : (
            <>backend: asking the host…</>
          )}
        </span>
        <span
          className={`conn conn-${conn.state}`}
          data-testid="connection-state"
          data-state={conn.state}
          title={conn.detail}
        >
          <span className="dot" aria-hidden="true" />
          {connLabel}
          {conn.state !== 'open' && conn.detail && <span className="conn-detail">{conn.detail}</span>}
        </span>
      </div>
    </header>
  );
}
