// ApiHost: the one implementation of SdttApi (shared/api.ts) over a RunManager + RunStore + workspace. Both hosts
// use it unchanged: Electron main (ipcMain.handle per method) and `sdtt serve` (WebSocket). Host-agnostic: nothing
// from Electron, and nothing that loads tfjs (checkpoints are read with the pure-Node safetensors/checkpoint code).
//
// Every entry point goes through `call(method, payload)`, which validates with parseApiRequest BEFORE anything else
// happens, so an invalid request (unknown method, malformed or oversized payload, hostile keys, a run id such as
// "../x") changes nothing and is answered with ApiError('invalid-request') naming the bad field.
//
// On-disk shapes read here (rounds, samples) are described in runs/runFiles.ts; the file names in runs/runFolder.ts.
// ManagerEvent -> RunEvent and error -> ApiError mapping: apiEvents.ts; version and backend probe: hostInfo.ts.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  API_METHODS,
  ApiError,
  parseApiRequest,
  type ApiMethod,
  type ApiRequest,
  type ApiResponses,
  type AppInfo,
  type ExportDtype,
  type ExportFormat,
  type ModelInfo,
  type ModelSummary,
  type RoundSummary,
  type RunEvent,
  type SampleCell,
  type SdttApi,
} from '../shared/api.ts';
import { PROTOCOL_LIMITS } from '../shared/messages.ts';
import type { RunRecord } from '../shared/runState.ts';
import { latestCheckpoint } from '../runs/checkpoint.ts';
import { SamplerBusyError } from './modelSampler.ts';
import { distillEvaluation, exportCheckpointFolder } from './exporter.ts';
import { checkRunConfigPaths, checkWritePath, userChoicePolicy, type PathPolicy } from './pathPolicy.ts';
import type { RunManager } from './runManager.ts';
import { toApiError, toApiEvents } from './apiEvents.ts';
import { inspectModel } from './modelInspector.ts';
import { browseFolder } from './folderBrowser.ts';
import { nodeBackendProbe, readVersion, REPO_ROOT, type BackendInfo } from './hostInfo.ts';
import {
  describeCheckpoint,
  normaliseRound,
  readSampleCells,
  teacherEvalRows,
  roundCheckpoint,
  toMetricPoint,
  trainingDataOf,
} from '../runs/runFiles.ts';
import { RunStoreError } from '../runs/runStore.ts';
import { runPaths } from '../runs/runFolder.ts';
export { describeCheckpoint, safetensorsParamCount } from '../runs/runFiles.ts';

/** Most metric points one getMetrics call returns; the renderer pages with `next`. */
export const METRICS_PAGE = 20_000;

export interface ApiHostOptions {
  manager: RunManager;
  /** Folder holding runs/ (the RunStore's workspace); relative export folders resolve against it. */
  workspace: string;
  host: AppInfo['host'];
  /** Shipped models: each subfolder a checkpoint folder (config.json + model.safetensors). Default: <repo>/assets/models. */
  assetsModelsDir?: string;
  /** Default: package.json's version. */
  version?: string;
  /**
   * How getInfo learns what 'auto' resolves to, asked once (lazily) and cached. Default: nodeBackendProbe(), a
   * short-lived child process (main never loads tfjs itself). null: no probe; getInfo reports the backend of the
   * most recent run that used 'auto', or "auto (resolved per job)".
   */
  probeBackend?: (() => Promise<BackendInfo>) | null;
  warn?: (line: string) => void;
  /**
   * Which paths a request may name (pathPolicy.ts): export folders (write) and a new run's data / teacher / judge /
   * tokenizer file (read). `sdtt serve` passes confinedPolicy (workspace + --allow folders, assets/ read-only).
   * Default: userChoicePolicy() (the user named the path: anywhere, but never into assets/ or a checkpoints folder).
   */
  paths?: PathPolicy;
}

type Handler = (req: never) => Promise<unknown> | unknown;

export class ApiHost implements SdttApi {
  readonly manager: RunManager;
  readonly workspace: string;
  private readonly host: AppInfo['host'];
  private readonly modelsDir: string;
  private readonly version: string;
  private readonly probe: (() => Promise<BackendInfo>) | null;
  private probed: Promise<BackendInfo | null> | null = null;
  private readonly warn: (line: string) => void;
  readonly paths: PathPolicy;
  private readonly handlers: {
    [M in ApiMethod]: (req: ReturnType<typeof parseApiRequest<M>>['req']) => Promise<ApiResponses[M]> | ApiResponses[M];
  };

  constructor(opts: ApiHostOptions) {
    this.manager = opts.manager;
    this.workspace = resolve(opts.workspace);
    this.host = opts.host;
    this.modelsDir = opts.assetsModelsDir ?? join(REPO_ROOT, 'assets', 'models');
    this.version = opts.version ?? readVersion();
    this.probe = opts.probeBackend === undefined ? nodeBackendProbe() : opts.probeBackend;
    this.warn = opts.warn ?? ((l) => console.warn(`api: ${l}`));
    this.paths = opts.paths ?? userChoicePolicy();
    this.handlers = {
      getInfo: () => this.doGetInfo(),
      listRuns: () => this.manager.list(),
      getRun: (r) => this.doGetRun(r.id),
      getMetrics: (r) => this.doGetMetrics(r.id, r.from),
      createRun: (r) => this.doCreateRun(r),
      controlRun: (r) => this.doControlRun(r.id, r.action),
      deleteRun: (r) => this.doDeleteRun(r.id),
      listModels: () => this.doListModels(),
      getSamples: (r) => this.doGetSamples(r.id),
      exportRound: (r) => this.doExportRound(r.id, r.round, r.folder, r.dtype, r.format),
      sampleModel: (r) => this.doSampleModel(r),
      inspectModel: async (r) =>
        inspectModel(r, {
          paths: this.paths,
          workspace: this.workspace,
          gflops: (await this.probedBackend())?.gflops ?? null,
        }),
      browseFolder: (r) => browseFolder(r, { paths: this.paths, workspace: this.workspace, modelsDir: this.modelsDir }),
    };
  }

  /**
   * The single entry point of both hosts: validates `payload` for `method` (parseApiRequest), then runs it. Always
   * rejects with an ApiError (code 'invalid-request' | 'not-found' | 'conflict' | 'internal').
   */
  async call(method: string, payload: unknown): Promise<unknown> {
    let parsed: { method: ApiMethod; req: unknown };
    try {
      parsed = parseApiRequest(method, payload);
    } catch (e) {
      if (e instanceof ApiError) throw e;
      // JSON.stringify inside parseApiRequest throws on cycles / BigInt: not a valid request either.
      throw new ApiError(
        `${String(method).slice(0, 64)}: request is not plain JSON data (${(e as Error).message})`,
        'invalid-request',
      );
    }
    try {
      return await (this.handlers[parsed.method] as Handler)(parsed.req as never);
    } catch (e) {
      throw toApiError(parsed.method, e);
    }
  }

  getInfo(req: ApiRequest<'getInfo'>) {
    return this.call('getInfo', req) as Promise<AppInfo>;
  }
  listRuns(req: ApiRequest<'listRuns'>) {
    return this.call('listRuns', req) as Promise<RunRecord[]>;
  }
  getRun(req: ApiRequest<'getRun'>) {
    return this.call('getRun', req) as Promise<ApiResponses['getRun']>;
  }
  getMetrics(req: ApiRequest<'getMetrics'>) {
    return this.call('getMetrics', req) as Promise<ApiResponses['getMetrics']>;
  }
  createRun(req: ApiRequest<'createRun'>) {
    return this.call('createRun', req) as Promise<RunRecord>;
  }
  controlRun(req: ApiRequest<'controlRun'>) {
    return this.call('controlRun', req) as Promise<RunRecord>;
  }
  deleteRun(req: ApiRequest<'deleteRun'>) {
    return this.call('deleteRun', req) as Promise<ApiResponses['deleteRun']>;
  }
  listModels(req: ApiRequest<'listModels'>) {
    return this.call('listModels', req) as Promise<ModelInfo[]>;
  }
  getSamples(req: ApiRequest<'getSamples'>) {
    return this.call('getSamples', req) as Promise<SampleCell[]>;
  }
  exportRound(req: ApiRequest<'exportRound'>) {
    return this.call('exportRound', req) as Promise<ApiResponses['exportRound']>;
  }
  sampleModel(req: ApiRequest<'sampleModel'>) {
    return this.call('sampleModel', req) as Promise<ApiResponses['sampleModel']>;
  }
  inspectModel(req: ApiRequest<'inspectModel'>) {
    return this.call('inspectModel', req) as Promise<ModelSummary>;
  }
  browseFolder(req: ApiRequest<'browseFolder'>) {
    return this.call('browseFolder', req) as Promise<ApiResponses['browseFolder']>;
  }

  /** RunManager events as API RunEvents; returns the unsubscribe function. */
  subscribe(listener: (e: RunEvent) => void): () => void {
    return this.manager.subscribe((e) => {
      for (const out of toApiEvents(e, (id) => this.manager.get(id))) listener(out);
    });
  }

  // ---- handlers ----------------------------------------------------------------------------------------------

  /** The probe's answer, asked once; null without a probe or when it failed. */
  private probedBackend(): Promise<BackendInfo | null> {
    if (!this.probe) return Promise.resolve(null);
    this.probed ??= this.probe().catch((e) => {
      this.warn(`backend probe failed: ${(e as Error).message.split('\n')[0]}`);
      return null;
    });
    return this.probed;
  }

  private async doGetInfo(): Promise<AppInfo> {
    const base = { version: this.version, workspace: this.workspace, host: this.host };
    const info = await this.probedBackend();
    if (info) return { ...base, backend: info.backend, device: info.device };
    // No probe (or it failed): the most recent run that asked for 'auto' and reported what it got.
    const last = this.manager
      .list()
      .filter((r) => r.backend && (r.config.backend ?? 'auto') === 'auto')
      .sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))[0];
    if (last)
      return { ...base, backend: last.backend!, device: `${last.device ?? 'unknown device'} (as of run ${last.id})` };
    return {
      ...base,
      backend: 'auto (resolved per job)',
      device:
        'chosen when a job starts: onnxruntime on a GPU (CUDA, WebGPU on a hardware adapter) -> tensorflow-gpu -> onnxruntime CPU -> tfjs',
    };
  }

  private requireRun(id: string): RunRecord {
    if (!this.manager.store.exists(id)) throw new ApiError(`no run "${id}" in ${this.manager.store.root}`, 'not-found');
    return this.manager.get(id);
  }

  private doGetRun(id: string): ApiResponses['getRun'] {
    const record = this.requireRun(id);
    const activity = this.manager.activity(id);
    const teacherEval = record.kind === 'distill' ? teacherEvalRows(this.manager.store.dir(id))?.rows : undefined;
    return {
      record,
      rounds: this.readRounds(id),
      ...(teacherEval ? { teacherEval } : {}),
      metricsCount: this.manager.store.readMetrics(id).length,
      ...(activity ? { activity } : {}),
    };
  }

  private doGetMetrics(id: string, from: number): ApiResponses['getMetrics'] {
    this.requireRun(id);
    const all = this.manager.store.readMetrics(id);
    const points = all.slice(from, from + METRICS_PAGE).map(toMetricPoint);
    return { points, next: Math.min(all.length, from + points.length) };
  }

  private doCreateRun(req: ReturnType<typeof parseApiRequest<'createRun'>>['req']): RunRecord {
    if (req.id && this.manager.store.exists(req.id))
      throw new ApiError(`run "${req.id}" already exists; pick another name`, 'conflict');
    const r = { ...req, config: checkRunConfigPaths(this.paths, req.config, this.workspace) } as typeof req;
    // 'pretrain' requests carry the MDLM or the AR config; the run kind is the config's. A job whose inputs cannot
    // work (runLifecycle.preflightJob: teacher, judge, data) is refused before anything is created.
    try {
      return this.manager.create(r.kind === 'distill' ? 'distill' : r.config.kind, r.config, r.id ? { id: r.id } : {});
    } catch (e) {
      if (e instanceof ApiError || e instanceof RunStoreError) throw e;
      throw new ApiError(
        `cannot create the ${r.kind === 'distill' ? 'distillation' : 'pretraining'} run: ${(e as Error).message}`,
        'conflict',
      );
    }
  }

  private doControlRun(id: string, action: 'start' | 'pause' | 'resume' | 'stop'): RunRecord {
    this.requireRun(id);
    try {
      switch (action) {
        case 'start':
          return this.manager.start(id);
        case 'pause':
          return this.manager.pause(id);
        case 'resume':
          return this.manager.resume(id);
        case 'stop':
          return this.manager.stop(id);
      }
    } catch (e) {
      if (e instanceof ApiError || e instanceof RunStoreError) throw e;
      throw new ApiError(`cannot ${action} run "${id}": ${(e as Error).message}`, 'conflict');
    }
  }

  /** Deletes the run's folder through the RunManager (refused while it runs: 'conflict'); clients get 'deleted'. */
  private doDeleteRun(id: string): ApiResponses['deleteRun'] {
    this.requireRun(id);
    const { dir, files, bytes } = this.manager.remove(id);
    return { id, folder: dir, files, bytes };
  }

  private doListModels(): ModelInfo[] {
    const out: ModelInfo[] = [];
    let shipped: string[] = [];
    try {
      shipped = existsSync(this.modelsDir) ? readdirSync(this.modelsDir).sort() : [];
    } catch (e) {
      this.warn(`cannot list ${this.modelsDir}: ${(e as Error).message}`);
    }
    for (const name of shipped) {
      const dir = join(this.modelsDir, name);
      try {
        if (!statSync(dir).isDirectory()) continue;
        const m = describeCheckpoint(dir);
        out.push({
          id: `shipped:${name}`,
          label: m.label ?? name,
          path: dir,
          arch: m.arch,
          params: m.params,
          source: 'shipped',
        });
      } catch (e) {
        this.warn(`skipping shipped model ${dir}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    for (const rec of this.manager.list()) {
      if (rec.status !== 'done' && rec.status !== 'stopped') continue;
      try {
        const latest = latestCheckpoint(this.manager.store.checkpointsDir(rec.id));
        if (!latest) continue;
        const m = describeCheckpoint(latest.dir);
        out.push({
          id: `run:${rec.id}`,
          label: `${rec.id} (step ${latest.step})`,
          path: latest.dir,
          arch: m.arch,
          params: m.params,
          source: 'run',
        });
      } catch (e) {
        this.warn(`skipping the checkpoint of run ${rec.id}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    return out;
  }

  private doGetSamples(id: string): SampleCell[] {
    this.requireRun(id);
    return readSampleCells(this.manager.store.samplesDir(id), this.warn);
  }

  private doExportRound(
    id: string,
    round: number,
    folderIn: string,
    dtype: ExportDtype = 'f32',
    format: ExportFormat = 'workbench',
  ): ApiResponses['exportRound'] {
    const rec = this.requireRun(id);
    // Inside what the policy allows, never inside assets/ or a run's checkpoints folder (where a model folder would
    // pass for its latest checkpoint, one it cannot resume from); checked on the real path.
    const folder = checkWritePath(this.paths, folderIn, {
      base: this.workspace,
      what: 'export folder',
      runsRoot: this.manager.store.root,
    });
    const src = this.roundCheckpoint(rec, round);
    return {
      folder,
      files: exportCheckpointFolder(rec, round, src, folder, {
        workspace: this.workspace,
        dtype,
        format,
        evaluation: distillEvaluation(
          rec,
          round,
          this.manager.store.dir(rec.id),
          this.manager.store.readRounds(rec.id),
        ),
      }),
    };
  }

  private async doSampleModel(r: ApiRequest<'sampleModel'>): Promise<ApiResponses['sampleModel']> {
    const rec = this.requireRun(r.id);
    const src = this.roundCheckpoint(rec, r.round);
    try {
      // A path the worker protocol cannot carry only costs the word check.
      const found = trainingDataOf(rec, src.dir, this.workspace);
      const data = found && found.length <= PROTOCOL_LIMITS.maxPath ? found : undefined;
      return await this.manager.sampler.sample({
        checkpoint: src.dir,
        steps: r.steps,
        samples: r.samples,
        seed: r.seed,
        ...(r.prefix ? { prefix: r.prefix } : {}),
        ...(r.topP !== undefined ? { topP: r.topP } : {}),
        ...(data ? { data } : {}),
      });
    } catch (e) {
      throw new ApiError((e as Error).message, e instanceof SamplerBusyError ? 'conflict' : 'internal');
    }
  }

  // ---- helpers -----------------------------------------------------------------------------------------------

  private readRounds(id: string): (RoundSummary & { checkpoint?: string })[] {
    const out: (RoundSummary & { checkpoint?: string })[] = [];
    for (const line of this.manager.store.readRounds(id)) {
      const r = normaliseRound(line);
      if (r) out.push(r);
      else
        this.warn(
          `run ${id}: skipping a line of ${runPaths.rounds(this.manager.store.dir(id))} without a numeric "round"`,
        );
    }
    return out;
  }

  private roundCheckpoint(rec: RunRecord, round: number): { dir: string; step: number } {
    return roundCheckpoint(rec, round, this.readRounds(rec.id), {
      runDir: this.manager.store.dir(rec.id),
      checkpointsDir: this.manager.store.checkpointsDir(rec.id),
      workspace: this.workspace,
    });
  }
}

/** Every API method name (the allow-list), re-exported for the hosts. */
export { API_METHODS };
