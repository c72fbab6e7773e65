// `sdtt data build`: assembles the corpus from the npm-packaged texts, builds the compact tokenizer from the
// train split (or tokenises with a given one: --tokenizer gpt2 for official MDLM teachers) and writes token shards +
// manifest. Deterministic: the same command gives byte-identical output.
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildCorpus } from '../engine/data/corpus.ts';
import { sha256Hex } from '../engine/data/tokenizerFiles.ts';
import { intFlag, parseFlags, UsageError, type Flags } from './args.ts';
import { ProgressBar } from './progress.ts';

/** --tokenizer's default: build the compact tokenizer from the train split. */
const COMPACT = 'compact';

const FLAGS: Flags = {
  out: {
    type: 'string',
    help: 'output folder for shards, tokenizer and manifest (default: data/corpus, or data/corpus-<tokenizer> with --tokenizer)',
  },
  tokenizer: {
    type: 'string',
    help: 'compact (built from the train split) | gpt2 (full GPT-2 + MASK, 50258 ids: official MDLM teachers) | byte | compact-4096 | a tokenizer JSON file',
    default: COMPACT,
  },
  vocab: { type: 'string', help: 'compact vocabulary size incl. EOS and MASK (default 4096; compact only)' },
  fallback: {
    type: 'string',
    help: 'GPT-2 tokens outside the compact set: bpe (re-merged into compact pieces) | bytes (default bpe; compact only)',
  },
  seed: { type: 'string', help: 'split seed', default: '1234' },
  'update-assets': { type: 'boolean', help: 'also copy the tokenizer and manifest into assets/ (maintainers)' },
};

export async function run(argv: string[]): Promise<number> {
  const [what, ...rest] = argv;
  if (what !== 'build')
    throw new UsageError('usage: sdtt data build [--out DIR] [--tokenizer compact|gpt2] [--vocab N] [--seed N]');
  const f = parseFlags(rest, FLAGS, 'usage: sdtt data build [options]');
  if (!f) return 0;
  const tokenizer = String(f.tokenizer);
  const compact = tokenizer === COMPACT;
  if (tokenizer === 'auto') throw new UsageError('--tokenizer auto: name a tokenizer (compact, gpt2, byte or a file)');
  for (const flag of ['vocab', 'fallback', 'update-assets'])
    if (!compact && f[flag] !== undefined)
      throw new UsageError(`--${flag} applies to the compact tokenizer only, not --tokenizer ${tokenizer}`);
  const fallback = String(f.fallback ?? 'bpe');
  if (fallback !== 'bpe' && fallback !== 'bytes')
    throw new UsageError(`--fallback must be bpe or bytes, got ${JSON.stringify(fallback)}`);
  // Another tokenizer's shards go beside the compact ones, not over them.
  const out =
    f.out !== undefined ? String(f.out) : compact ? 'data/corpus' : `data/corpus-${basename(tokenizer, '.json')}`;
  const bar = new ProgressBar('data', 100);
  let stage = '';
  const t0 = Date.now();
  const manifest = await buildCorpus(out, {
    seed: intFlag(f, 'seed'),
    vocabSize: intFlag(f, 'vocab', 260),
    fallback,
    tokenizer: compact ? undefined : tokenizer,
    assetsDir: f['update-assets'] ? 'assets' : undefined,
    onProgress: (p) => {
      if (p.stage !== stage) {
        stage = p.stage;
        bar.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${p.stage}: ${p.message}`);
      }
      if (p.fraction !== undefined) bar.update(Math.round(p.fraction * 100), p.stage);
    },
  });
  bar.done();
  const s = manifest.splits;
  console.error(
    `train ${s.train.tokens} tokens (${s.train.documents} docs), validation ${s.validation.tokens}, test ${s.test.tokens}; tokenizer sha256 ${manifest.tokenizer.sha256}`,
  );
  console.log(
    JSON.stringify({
      data: 'build',
      out,
      manifest_sha256: manifestSha(out),
      splits: { train: s.train.tokens, validation: s.validation.tokens, test: s.test.tokens },
    }),
  );
  return 0;
}

function manifestSha(out: string): string {
  return sha256Hex(readFileSync(join(out, 'manifest.json')));
}
