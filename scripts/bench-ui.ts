// What the live chart does per repaint with a long run logged: min/max downsampling and EMA smoothing of the
// loss series (src/renderer/lib/downsample.ts), on 10k / 100k / 1M points. Replaces the wall-clock asserts that
// used to sit in the renderer tests (speed is measured here, not in tests).
//   node --import tsx scripts/bench-ui.ts [--iters 20]
// Prints one JSON line: median milliseconds per call for each size.
import { parseArgs } from 'node:util';
import { emaSmooth, minMaxDownsample } from '../src/renderer/lib/downsample.ts';

const { values } = parseArgs({ options: { iters: { type: 'string', default: '20' } } });
const iters = Math.max(1, Number(values.iters));

function median(fn: () => unknown): number {
  fn(); // warm-up (JIT)
  const ms: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return +ms[Math.floor(ms.length / 2)].toFixed(3);
}

const result: Record<string, { downsample_ms: number; ema_ms: number }> = {};
for (const n of [10_000, 100_000, 1_000_000]) {
  const x = Float64Array.from({ length: n }, (_, i) => i);
  let seed = 7;
  const y = Float64Array.from(
    { length: n },
    (_, i) => 3 * Math.exp(-i / n) + ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.2,
  );
  result[String(n)] = {
    downsample_ms: median(() => minMaxDownsample(x, y, n, 1000)),
    ema_ms: median(() => emaSmooth(y, 0.9)),
  };
}
console.log(JSON.stringify({ bench: 'ui', iters, points: result }));
