// Runs a CLI command in-process and captures what it prints: console.log (stdout) and everything written to stderr
// (console.error, progress bars).
export async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const log = console.log;
  const write = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
  try {
    return { code: await fn(), out, err };
  } finally {
    console.log = log;
    process.stderr.write = write;
  }
}
