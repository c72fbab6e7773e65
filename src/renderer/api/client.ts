// Picks the API implementation: the Electron preload's `window.sdtt` when present, otherwise the WebSocket client
// of browser mode (`sdtt serve`), with the token taken from the page URL.
import { WS_PATH, type SdttApi } from '../../shared/api.ts';
import { WsApiClient, wsUrlFor, type ConnectionStatus } from './wsClient.ts';

declare global {
  interface Window {
    sdtt?: SdttApi;
  }
}

export interface ApiHandle {
  api: SdttApi;
  host: 'electron' | 'browser';
  onStatus(l: (s: ConnectionStatus) => void): () => void;
  onReconnect(l: () => void): () => void;
}

export function createApiHandle(): ApiHandle {
  if (typeof window !== 'undefined' && window.sdtt) {
    const api = window.sdtt;
    return {
      api,
      host: 'electron',
      onStatus: (l) => {
        l({ state: 'open', attempt: 0, detail: 'Electron IPC' });
        return () => {};
      },
      onReconnect: () => () => {},
    };
  }
  const { url, token } = wsUrlFor(window.location, WS_PATH);
  const client = new WsApiClient(url);
  if (!token) {
    // Still try (a server may run without a token in dev), but say why it will most likely fail.
    client.onStatus((s) => {
      if (s.state !== 'open' && !s.detail?.startsWith('no ?token'))
        s.detail = `no ?token= in the page URL: open the URL printed by \`sdtt serve\`${s.detail ? ` (${s.detail})` : ''}`;
    });
  }
  return {
    api: client.api,
    host: 'browser',
    onStatus: (l) => client.onStatus(l),
    onReconnect: (l) => client.onReconnect(l),
  };
}
