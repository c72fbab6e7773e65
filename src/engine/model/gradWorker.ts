// Worker-thread entry of the data-parallel TfjsGradientEngine: owns one tfjs backend instance (one core), reads the
// step's parameters from the shared buffer, writes its shard's gradient into its own shared buffer.
import { parentPort, workerData } from 'node:worker_threads';
import type { BackendName, ModelConfig } from '../../shared/config.ts';
import { initBackend } from './backend.ts';
import type { WorkerReply, WorkerRequest } from './gradients.ts';
import { shardLossAndGrads } from './shardLoss.ts';

const { cfg, backend, params, grads } = workerData as {
  cfg: ModelConfig;
  backend: BackendName;
  index: number;
  params: Float32Array;
  grads: Float32Array;
};
const port = parentPort!;
const reply = (m: WorkerReply) => port.postMessage(m);

try {
  const info = await initBackend(backend);
  port.on('message', (m: WorkerRequest) => {
    if (m.type === 'close') {
      port.close();
      return;
    }
    try {
      const t0 = performance.now();
      if (m.wantGrads) grads.fill(0);
      const loss = shardLossAndGrads(cfg, params, m.shard, m.dropoutSeed, m.wantGrads ? grads : null);
      reply({ type: 'done', id: m.id, loss, ms: performance.now() - t0 });
    } catch (e) {
      reply({ type: 'error', id: m.id, message: e instanceof Error ? e.message : String(e) });
    }
  });
  reply({ type: 'ready', backend: info.backend, device: info.device });
} catch (e) {
  reply({ type: 'error', message: e instanceof Error ? e.message : String(e) });
}
