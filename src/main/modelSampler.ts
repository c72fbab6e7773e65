// One-shot sampling from a checkpoint for the app's "try it" panel. Main never loads the engine, so a worker process
// does it: spawn, wait for 'ready', send 'sample', keep the 'sampled' answer, settle when the worker exits (it exits
// after answering). Nothing is written to disk. One job at a time: sampling takes both cores, as training does.
import { SampleRequest, classifyExit, lastLine, parseWorkerToMain, type SampleResult } from '../shared/messages.ts';
import type { ChildLike, Spawner } from './workerSpawner.ts';

export class SamplerBusyError extends Error {}

export class ModelSampler {
  private running = false;
  private child: ChildLike | null = null;

  constructor(
    private readonly spawn: Spawner,
    private readonly entry: string,
    /** Longest a job may take (sampling 16 x 128 tokens at 128 steps takes well under a minute on 2 cores). */
    private readonly timeoutMs = 10 * 60_000,
  ) {}

  get busy(): boolean {
    return this.running;
  }

  /** Kills a running job (the host is shutting down): its promise rejects, nothing was written. */
  dispose(): void {
    this.child?.kill('SIGKILL');
  }

  /** Rejects with SamplerBusyError while another job runs, with the worker's error text when sampling fails. */
  sample(request: SampleRequest): Promise<SampleResult> {
    if (this.running)
      return Promise.reject(new SamplerBusyError('another sampling job is running; try again when it has finished'));
    const req = SampleRequest.parse(request);
    this.running = true;
    return new Promise<SampleResult>((resolve, reject) => {
      let result: SampleResult | null = null;
      let failure: string | null = null;
      let settled = false;
      let ready = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = (code: number | null, signal: string | null, tail: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.running = false;
        this.child = null;
        if (result) return resolve(result);
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        const why = lastLine(tail);
        reject(
          new Error(
            failure ??
              `${classifyExit(code, signal, tail, { launched: ready })}: the sampling worker ended without samples (${how})${why ? `; last output: ${why}` : ''}`,
          ),
        );
      };
      let child: ChildLike;
      try {
        child = this.spawn(this.entry, []);
      } catch (e) {
        failure = `the sampling worker did not start: ${(e as Error).message}`;
        return settle(null, null, '');
      }
      timer = setTimeout(() => {
        failure = `sampling did not finish within ${Math.round(this.timeoutMs / 1000)} s`;
        child.kill('SIGKILL');
      }, this.timeoutMs);
      this.child = child;
      child.on('message', (raw) => {
        const parsed = parseWorkerToMain(raw);
        if (!parsed.ok) {
          failure = `protocol error: ${parsed.error}`;
          return child.kill('SIGKILL');
        }
        const msg = parsed.message;
        if (msg.type === 'ready') {
          ready = true;
          child.send({ type: 'sample', request: req });
        } else if (msg.type === 'sampled') result = msg.result;
        else if (msg.type === 'error') failure = msg.message;
      });
      // A launch error may come without an exit; after 'ready', the exit tells.
      child.on('error', (err) => {
        if (ready) return;
        failure ??= `the sampling worker did not start: ${err.message}`;
        settle(null, null, child.stderrTail());
      });
      child.on('exit', (code, signal) => settle(code, signal, child.stderrTail()));
    });
  }
}
