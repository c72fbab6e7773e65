// `sdtt backend`: what `--backend auto` trains on here (onnxruntime on a GPU adapter or its CPU kernels, or the tfjs
// backend it falls back to), as one JSON line {"backend", "device", "adapter"}. The app's main process asks this command in a child process
// (hostInfo.ts nodeBackendProbe) so that it never loads a compute runtime itself.
import { autoTrainingBackend } from '../engine/training/gradientEngine.ts';
import { parseFlags } from './args.ts';

export async function run(argv: string[]): Promise<number> {
  if (
    !parseFlags(
      argv,
      {},
      'usage: sdtt backend\n\nprints {"backend", "device", "adapter"}: what --backend auto trains on here',
    )
  )
    return 0;
  console.log(JSON.stringify(await autoTrainingBackend()));
  return 0;
}
