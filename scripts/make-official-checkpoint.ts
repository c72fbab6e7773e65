// Writes a random-initialised checkpoint in the Hugging Face layout of kuleshov-group/mdlm-owt (config.json with
// model_type "mdlm" + model.safetensors, `backbone.` names), by default the official size: 169 M parameters,
// GPT-2 vocabulary + MASK (50258), L = 1024, d 768, 12 blocks, 12 heads, cond_dim 128. The test subject of the
// official-size benchmarks (docs/benchmarks.md) and of `sdtt import` at scale; 676 MB, never committed.
//   node --import tsx scripts/make-official-checkpoint.ts --out /tmp/mdlm-random-169m [--seed 0]
//        [--vocab 50258 --dmodel 768 --layers 12 --heads 12 --seq 1024 --cond 128]
// adaLN and sigma_map get random weights too, so an import really folds them (an all-zero adaLN would not test it).
import { mkdirSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng } from '../src/engine/rng.ts';
import {
  officialHfConfig,
  officialTensorShapes,
  rotaryInvFreq,
  type OfficialDims,
} from '../src/engine/io/officialLayout.ts';
import { encodeSafetensors, type SafetensorInput } from '../src/runs/safetensors.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    seed: { type: 'string', default: '0' },
    vocab: { type: 'string', default: '50258' },
    dmodel: { type: 'string', default: '768' },
    layers: { type: 'string', default: '12' },
    heads: { type: 'string', default: '12' },
    seq: { type: 'string', default: '1024' },
    cond: { type: 'string', default: '128' },
  },
});
if (!values.out) throw new Error('--out DIR is required');
if (existsSync(values.out) && readdirSync(values.out).length) throw new Error(`${values.out} is not empty`);

const dims: OfficialDims = {
  vocabSize: Number(values.vocab),
  hiddenDim: Number(values.dmodel),
  condDim: Number(values.cond),
  nBlocks: Number(values.layers),
  nHeads: Number(values.heads),
  modelLength: Number(values.seq),
  dropout: 0.1,
};
const rng = new Rng(Number(values.seed));
const tensors = new Map<string, SafetensorInput>();
let count = 0;
for (const [name, shape] of officialTensorShapes(dims)) {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  if (name === 'rotary_emb.inv_freq') data.set(rotaryInvFreq(dims.hiddenDim / dims.nHeads));
  else if (/norm1|norm2|norm_final/.test(name)) for (let i = 0; i < n; i++) data[i] = 1 + 0.05 * rng.normal();
  // The modulation is a gate on each residual branch: small, so 12 random blocks stay a sane network.
  else if (name.includes('adaLN_modulation')) for (let i = 0; i < n; i++) data[i] = 0.02 * rng.normal();
  else for (let i = 0; i < n; i++) data[i] = 0.02 * rng.normal();
  if (name !== 'rotary_emb.inv_freq') count += n;
  tensors.set(`backbone.${name}`, { dtype: 'F32', shape, data });
}
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
writeFileSync(join(values.out, 'config.json'), JSON.stringify(officialHfConfig(dims), null, 2) + '\n');
console.log(`wrote ${values.out}: ${(count / 1e6).toFixed(2)}M parameters (official layout, seed ${values.seed})`);
