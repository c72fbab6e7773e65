// Renderer bundle (React) for Electron (loaded from file://, hence base './') and for `sdtt serve` (browser mode).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('./src/renderer', import.meta.url)),
  base: './',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('./out/renderer', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
    // No inlined assets (data: URLs are fine for img-src, but keep the bundle plain files).
    assetsInlineLimit: 0,
  },
});
