/** Reconnect delay for attempt 0, 1, 2...: base·2^attempt capped at max, with ±20% jitter (rand in [0,1)). */
export function backoffDelay(attempt: number, base = 500, max = 10_000, rand: () => number = Math.random): number {
  const raw = Math.min(max, base * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(raw * (0.8 + 0.4 * rand()));
}
