// `sdtt import SRC --out DIR`: an official MDLM / SDTT checkpoint (HF folder like kuleshov-group/mdlm-owt, a
// jdeschena/sdtt branch, or a PyTorch .ckpt/.pt/.bin with its config.json) becomes a workbench checkpoint folder
// (engine/io/officialImport.ts): adaLN folded exactly, every tensor checked, source files' sha256 recorded.
import { paramCount } from '../engine/model/paramLayout.ts';
import { importOfficialCheckpoint } from '../engine/io/officialImport.ts';
import { parseFlags, UsageError, type Flags } from './args.ts';

const FLAGS: Flags = {
  out: { type: 'string', help: 'new or empty folder for the workbench checkpoint' },
  tokenizer: {
    type: 'string',
    help: 'gpt2, byte, compact-4096 or a tokenizer JSON (default: gpt2 for a 50258-id vocabulary)',
  },
  config: { type: 'string', help: "the model's config.json, for a PyTorch file that has none next to it" },
};

const SYNOPSIS = 'usage: sdtt import SRC --out DIR [--tokenizer NAME] [--config FILE]';

export async function run(argv: string[]): Promise<number> {
  const src = argv[0] && !argv[0].startsWith('-') ? argv[0] : undefined;
  const f = parseFlags(src ? argv.slice(1) : argv, FLAGS, SYNOPSIS);
  if (!f) return 0;
  if (!src) throw new UsageError(`SRC (an official checkpoint folder or file) is required\n\n${SYNOPSIS}`);
  if (!f.out) throw new UsageError('--out DIR is required');
  const t0 = Date.now();
  const m = importOfficialCheckpoint(src, String(f.out), {
    tokenizer: f.tokenizer as string | undefined,
    config: f.config as string | undefined,
  });
  const c = m.config;
  console.error(
    `imported ${m.source.format} ${src}: ${(paramCount(c) / 1e6).toFixed(2)}M params, vocab ${c.vocabSize} (${m.tokenizer.kind}), L ${c.seqLen}, d ${c.dModel}, ${c.nLayers} layers, ${c.nHeads} heads, adaLN folded at sigma 0 (cond_dim ${m.source.dims.condDim}) in ${((Date.now() - t0) / 1000).toFixed(1)} s -> ${f.out}`,
  );
  console.log(
    JSON.stringify({
      import: String(f.out),
      format: m.source.format,
      params: paramCount(c),
      vocabSize: c.vocabSize,
      seqLen: c.seqLen,
      tokenizer: m.tokenizer.kind,
      sha256: Object.fromEntries(m.source.files.map((x) => [x.path, x.sha256])),
    }),
  );
  return 0;
}
