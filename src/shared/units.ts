// Sizes as people read them, the same in the CLI and the app.

/** 1234 -> "1.2 kB", 5.3e9 -> "5.30 GB" (decimal units, as file managers and `du -h --si` show them). */
export function formatBytes(n: number): string {
  return n >= 1e9
    ? `${(n / 1e9).toFixed(2)} GB`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(1)} MB`
      : n >= 1e3
        ? `${(n / 1e3).toFixed(1)} kB`
        : `${n} bytes`;
}
