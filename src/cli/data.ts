// `sdtt data build`: assembles the corpus from the npm-packaged texts, builds the compact tokenizer from the
// train split and writes token shards + manifest. Deterministic: the same command gives byte-identical output.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCorpus } from '../engine/data/corpus.ts';
import { sha256Hex } from '../engine/data/tokenizerFiles.ts';
import { intFlag, parseFlags, UsageError, type Flags } from './args.ts';
import { ProgressBar } from './progress.ts';

const FLAGS: Flags = {
  out: { type: 'string', help: 'output folder for shards, tokenizer and manifest', default: 'data/corpus' },
  vocab: { type: 'string', help: 'compact vocabulary size incl. EOS and MASK', default: '4096' },
  fallback: {
    type: 'string',
    help: 'GPT-2 tokens outside the compact set: bpe (re-merged into compact pieces) | bytes',
    default: 'bpe',
  },
  seed: { type: 'string', help: 'split seed', default: '1234' },
  'update-assets': { type: 'boolean', help: 'also copy the tokenizer and manifest into assets/ (maintainers)' },
};

export async function run(argv: string[]): Promise<number> {
  const [what, ...rest] = argv;
  if (what !== 'build') throw new UsageError('usage: sdtt data build [--out DIR] [--vocab N] [--seed N]');
  const f = parseFlags(rest, FLAGS, 'usage: sdtt data build [options]');
  if (!f) return 0;
  const fallback = String(f.fallback);
  if (fallback !== 'bpe' && fallback !== 'bytes')
    throw new UsageError(`--fallback must be bpe or bytes, got ${JSON.stringify(fallback)}`);
  const bar = new ProgressBar('data', 100);
  let stage = '';
  const t0 = Date.now();
  const manifest = await buildCorpus(String(f.out), {
    seed: intFlag(f, 'seed'),
    vocabSize: intFlag(f, 'vocab', 260),
    fallback,
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
      out: String(f.out),
      manifest_sha256: manifestSha(String(f.out)),
      splits: { train: s.train.tokens, validation: s.validation.tokens, test: s.test.tokens },
    }),
  );
  return 0;
}

function manifestSha(out: string): string {
  return sha256Hex(readFileSync(join(out, 'manifest.json')));
}
