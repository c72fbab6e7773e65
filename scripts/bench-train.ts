// Prints one JSON line: training throughput of bench-5m. usage:
//   node --import tsx scripts/bench-train.ts [--backend wasm] [--threads 2] [--steps 5] [--warmup 1]
import { parseArgs } from 'node:util';
import { BackendName } from '../src/shared/config.ts';
import { benchTrain } from '../src/engine/training/benchTrain.ts';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
  },
});
const r = await benchTrain({
  backend: BackendName.parse(values.backend),
  threads: Number(values.threads),
  steps: Number(values.steps),
  warmup: Number(values.warmup),
});
console.log(JSON.stringify(r));
