// `sdtt` command dispatcher. Each command lives in its own file and returns an exit code; usage errors exit 2.

import { UsageError } from './args.ts';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  pretrain: {
    summary: 'train a masked diffusion LM (MDLM) on a text file or token shards',
    load: () => import('./pretrain.ts'),
  },
  'pretrain-ar': {
    summary: 'train the causal AR baseline / judge the same way',
    load: () => import('./pretrain.ts').then((m) => ({ run: (a: string[]) => m.run(a, 'pretrain-ar') })),
  },
  distill: {
    summary: 'SDTT: distil an MDLM teacher into few-step students, round by round (`--teacher DIR --data PATH`)',
    load: () => import('./distill.ts'),
  },
  demo: {
    summary: 'distil the shipped teacher on the shipped corpus (~30 min on 2 cores)',
    load: () => import('./distill.ts').then((m) => ({ run: (a: string[]) => m.runDemo(a) })),
  },
  sample: {
    summary: 'sample from a checkpoint: --steps N for MDLM, nucleus sampling for AR',
    load: () => import('./sample.ts'),
  },
  eval: {
    summary: 'held-out perplexity (--data) and the generative-perplexity table (--steps LIST --judge DIR)',
    load: () => import('./evaluate.ts'),
  },
  report: {
    summary:
      'write docs/results.md (tables + PNG plots of gen PPL and entropy vs N) from distill runs (`--run DIR ...`)',
    load: () => import('./report.ts'),
  },
  import: {
    summary: 'convert an official MDLM / SDTT checkpoint (HF mdlm-owt, an sdtt branch, a .ckpt) into a workbench one',
    load: () => import('./import.ts'),
  },
  export: {
    summary: "write a run's checkpoint (`--round R`) as model.safetensors + config.json + model card",
    load: () => import('./export.ts'),
  },
  bench: {
    summary: 'benchmarks: `bench train --model bench-5m`, `bench sample --model bench-5m`',
    load: () => import('./bench.ts'),
  },
  data: { summary: '`data build`: assemble the corpus, tokenizer and token shards', load: () => import('./data.ts') },
  serve: {
    summary:
      'browser mode: serve the UI + API on 127.0.0.1 with a token (`--host`, `--port`, `--workspace`, `--token`)',
    load: () => import('./serve.ts'),
  },
  backend: { summary: 'print what `--backend auto` trains on here, as JSON', load: () => import('./backend.ts') },
  runs: {
    summary: 'list runs in the workspace with status and progress; `runs rm ID` deletes one',
    load: () => import('./runs.ts'),
  },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return `usage: sdtt <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun \`sdtt <command> --help\` for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`sdtt: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await cmd.load()).run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`sdtt ${name}: ${e.message}`);
      return 2;
    }
    console.error(`sdtt ${name}: error: ${(e as Error).message}`);
    if (process.env.SDTT_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}
