// `sdtt backend`: what `--backend auto` trains on here (onnxruntime on a GPU adapter or its CPU kernels, or the tfjs
// backend it falls back to) and how fast it multiplies matrices, as one JSON line {"backend", "device", "adapter",
// "gflops"}. The app's main process asks this command in a child process (hostInfo.ts nodeBackendProbe) so that it
// never loads a compute runtime itself; the new-run form turns the rate into a time per step.
import { autoMatmulGflops } from '../engine/matmulRate.ts';
import { autoTrainingBackend } from '../engine/training/gradientEngine.ts';
import { parseFlags } from './args.ts';

export async function run(argv: string[]): Promise<number> {
  if (
    !parseFlags(
      argv,
      {},
      'usage: sdtt backend\n\nprints {"backend", "device", "adapter", "gflops"}: what --backend auto trains on here, and its measured float32 matmul rate in GFLOP/s',
    )
  )
    return 0;
  const info = await autoTrainingBackend();
  let gflops: number | undefined;
  try {
    gflops = Math.round((await autoMatmulGflops()) * 10) / 10;
  } catch (e) {
    // The backend answer still matters without a rate: the form then shows FLOPs and memory only.
    console.error(`sdtt backend: could not measure the matmul rate: ${(e as Error).message.split('\n')[0]}`);
  }
  console.log(JSON.stringify({ ...info, ...(gflops && Number.isFinite(gflops) ? { gflops } : {}) }));
  return 0;
}
