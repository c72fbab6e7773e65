import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { createApiHandle } from './api/client.ts';
import { initStore } from './store/appStore.ts';

initStore(createApiHandle());
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
