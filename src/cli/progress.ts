// A terminal progress bar with rate and ETA. On a TTY it redraws one line; elsewhere (CI, pipes, log files) it
// prints a plain line every few percent so logs stay readable.

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class ProgressBar {
  private startedAt = Date.now();
  private startValue: number;
  private lastPlainPct = -1;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    startValue = 0,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.startValue = startValue;
    this.tty = Boolean(stream.isTTY) && !process.env.CI;
  }

  /** Seconds remaining, from the rate since this bar started (resumed work does not inflate the rate). */
  eta(value: number): number {
    const done = value - this.startValue;
    if (done <= 0) return NaN;
    const elapsed = (Date.now() - this.startedAt) / 1000;
    return ((this.total - value) * elapsed) / done;
  }

  update(value: number, extra = ''): void {
    const frac = this.total > 0 ? Math.min(1, value / this.total) : 1;
    const pct = Math.floor(frac * 100);
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const text = `${this.label} ${String(pct).padStart(3)}% ${value}/${this.total} elapsed ${formatDuration(elapsed)} eta ${formatDuration(this.eta(value))}${extra ? ' ' + extra : ''}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      this.stream.write(`\r\x1b[2K${bar} ${text}`);
    } else if (pct >= this.lastPlainPct + 5 || value === this.total) {
      this.lastPlainPct = pct;
      this.stream.write(text + '\n');
    }
  }

  /** Prints a line above the bar without garbling it. */
  log(line: string): void {
    if (this.tty) this.stream.write('\r\x1b[2K');
    this.stream.write(line + '\n');
  }

  done(): void {
    if (this.tty) this.stream.write('\n');
  }
}
