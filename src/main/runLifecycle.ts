// Opening a run: validate its job config, then create the run, or reopen an existing one for resumption after
// checking that its config computes the same thing (only steps and execution settings may change) and that no live
// process is running it. Shared by the RunManager and the CLI so that a run started headless and resumed from the
// GUI (or the other way round) follows one rule. A new distillation is checked first (preflightJob: teacher, data,
// judge), so a refused one creates no run folder. Deleting a run follows the same liveness rule (assertRemovable).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PretrainConfig, describeConfigError } from '../shared/config.ts';
import { DistillConfig, distillTotalSteps } from '../shared/distillConfig.ts';
import type { RunRecord, RunStatus } from '../shared/runState.ts';
import type { RunStore } from '../runs/runStore.ts';
import { latestCheckpoint } from '../runs/checkpoint.ts';
import { checkDataReadable, preflightDistill } from '../engine/sdtt/distillPreflight.ts';

export class RunConflictError extends Error {}

/** Config keys that may change between a run and its resumption without changing what is computed
 * (distill: `rounds` may grow like `steps`; rounds tile the steps, so earlier rounds are unchanged; pretrain:
 * `decaySteps` adds a cooldown at the end, the usual way to finish a run trained at a constant rate). */
export const RESUMABLE_KEYS = [
  'steps',
  'rounds',
  'decaySteps',
  'backend',
  'threads',
  'logEvery',
  'evalEvery',
  'checkpointEvery',
  'keepCheckpoints',
] as const;

/** The validated config of a job the RunManager runs (pretrain, pretrain-ar or distill); throws with the offending key. */
export function parseJobConfig(kind: RunRecord['kind'], config: unknown): PretrainConfig | DistillConfig {
  if (kind === 'distill') {
    const d = DistillConfig.safeParse(config);
    if (!d.success) throw new Error(describeConfigError(d.error));
    return d.data;
  }
  if (kind !== 'pretrain' && kind !== 'pretrain-ar')
    throw new Error(`run kind '${kind}' is not supported by the RunManager yet`);
  const parsed = PretrainConfig.safeParse(config);
  if (!parsed.success) throw new Error(describeConfigError(parsed.error));
  if (parsed.data.kind !== kind)
    throw new Error(`config.kind '${parsed.data.kind}' does not match the run kind '${kind}'`);
  return parsed.data;
}

/** Total optimiser steps of a job config (distill: exact with startSteps, else an upper bound until the worker says). */
export function jobTotalSteps(cfg: PretrainConfig | DistillConfig): number {
  return cfg.kind === 'distill' ? distillTotalSteps(cfg) : cfg.steps;
}

export function comparableConfig(c: Record<string, unknown>): Record<string, unknown> {
  const rest = { ...c };
  for (const k of RESUMABLE_KEYS) delete rest[k];
  return rest;
}

/** Differences between two configs as "path: old -> new" lines (nested objects compared key by key). */
export function diffConfigs(a: Record<string, unknown>, b: Record<string, unknown>, prefix = ''): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const out: string[] = [];
  for (const k of keys) {
    const va = a[k];
    const vb = b[k];
    if (va && vb && typeof va === 'object' && typeof vb === 'object' && !Array.isArray(va) && !Array.isArray(vb)) {
      out.push(...diffConfigs(va as Record<string, unknown>, vb as Record<string, unknown>, `${prefix}${k}.`));
    } else if (JSON.stringify(va) !== JSON.stringify(vb))
      out.push(`${prefix}${k}: ${JSON.stringify(va)} -> ${JSON.stringify(vb)}`);
  }
  return out;
}

/** The CLI's deterministic id: the same command names the same run, so re-running it resumes. */
export function defaultRunId(kind: string, cfg: Pick<PretrainConfig, 'data' | 'seed'>): string {
  return `${kind}-${basename(cfg.data).replace(/[^A-Za-z0-9._-]/g, '_')}-seed${cfg.seed}`.slice(0, 128);
}

/** A fresh unique id for runs created from the UI. */
export function newRunId(kind: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `${kind}-${stamp}-${randomBytes(3).toString('hex')}`;
}

/**
 * Whether `pid` is a live process that can be running a job: it exists, and where /proc tells its command line
 * (Linux), that line is a Node or Electron one, so a pid reused by an unrelated program after a crash or a restart
 * does not hold a run forever (nor get named in a "kill -TERM" hint).
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else; still alive.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return true; // no /proc (macOS, Windows) or not readable: existence is all we know
  }
  // Empty: a zombie (exited, not yet reaped) or a kernel thread, neither of which runs a job.
  return /node|electron|sdtt|--type=utility/i.test(cmdline);
}

/**
 * The record as it stands: run.json says running or paused, but the process it names is gone (killed with SIGKILL,
 * crashed without a word, the machine restarted), so nobody will ever update it: shown as stopped, with why. run.json
 * itself is left as it is (its owner may be a process this one cannot see); starting the run again rewrites it.
 */
export function withLiveness(rec: RunRecord): RunRecord {
  if (
    (rec.status !== 'running' && rec.status !== 'paused') ||
    rec.pid === undefined ||
    rec.pid === process.pid ||
    isAlive(rec.pid)
  )
    return rec;
  return {
    ...rec,
    status: 'stopped',
    reason: `interrupted: its process (pid ${rec.pid}) ended while the run was ${rec.status} (killed, crashed or the machine restarted); starting it again resumes from the last checkpoint`,
    pid: undefined,
  };
}

/**
 * Refuses a job whose inputs cannot work, before its run folder exists: a distillation's teacher (an MDLM checkpoint),
 * data (exists, readable, a shard folder's tokenizer the teacher's) and named judge (an AR checkpoint that fits); a
 * pretraining's data (exists and can be read).
 * Pure Node (engine/distillPreflight.ts: checkpoint files only, no tfjs). Throws the first problem; writes nothing.
 */
export function preflightJob(cfg: PretrainConfig | DistillConfig): void {
  if (cfg.kind === 'distill') preflightDistill(cfg);
  else checkDataReadable(cfg.data, 'pretrain');
}

/** The step a run would resume from: its newest complete checkpoint's, or null when it has none (it starts over). */
export function resumeStep(store: RunStore, id: string): number | null {
  return latestCheckpoint(store.checkpointsDir(id))?.step ?? null;
}

export interface OpenOptions {
  /** Status the opened run gets: 'running' for the in-process CLI, 'queued' for the RunManager. */
  status: RunStatus;
  /** pid stored in run.json (the CLI's own); the RunManager stores the worker's when it spawns one. */
  pid?: number;
  /** A pid that is "us" and so not a conflict (the CLI passes process.pid). */
  ownPid?: number;
}

/**
 * Creates the run (after preflightJob), or checks that an existing run has the same config (steps may grow) and is
 * not live; a reopened run's step is the one it resumes from (its latest checkpoint, 0 without one), whatever the
 * last attempt reached (a NaN or a crash after the last checkpoint).
 */
export function openOrResume(
  store: RunStore,
  id: string,
  kind: RunRecord['kind'],
  cfg: PretrainConfig | DistillConfig,
  opts: OpenOptions,
): RunRecord {
  const config = cfg as unknown as Record<string, unknown>;
  const now = new Date().toISOString();
  const totalSteps = jobTotalSteps(cfg);
  if (!store.exists(id)) {
    preflightJob(cfg);
    return store.create({
      id,
      kind,
      config,
      status: opts.status,
      step: 0,
      totalSteps,
      pid: opts.pid,
      createdAt: now,
      updatedAt: now,
    });
  }
  const prev = store.read(id);
  assertNotLive(prev, opts.ownPid);
  if (prev.kind !== kind)
    throw new RunConflictError(`run "${id}" is a ${prev.kind} run, not ${kind}; pick another run name`);
  const differing = diffConfigs(comparableConfig(prev.config), comparableConfig(config));
  if (differing.length) {
    throw new RunConflictError(
      `run "${id}" exists with a different config (${differing.join(', ')}); pass --run NEW_NAME to start another run, or the same options to resume it`,
    );
  }
  return store.update(id, {
    config,
    totalSteps,
    status: opts.status,
    reason: undefined,
    pid: opts.pid,
    step: resumeStep(store, id) ?? 0,
  });
}

/** Whether run.json names another live process (a CLI, another app) that is running or holding the run. */
function heldElsewhere(rec: RunRecord, ownPid?: number): rec is RunRecord & { pid: number } {
  return (rec.status === 'running' || rec.status === 'paused') && !!rec.pid && rec.pid !== ownPid && isAlive(rec.pid);
}

/** Throws when run.json names a live process (another CLI or app) that is running or holding the run. */
export function assertNotLive(rec: RunRecord, ownPid?: number): void {
  if (heldElsewhere(rec, ownPid))
    throw new RunConflictError(`run "${rec.id}" is already ${rec.status} in another process (pid ${rec.pid})`);
}

/** A run may be deleted unless run.json names a live process (a CLI, an app's worker) that is running or holding it. */
export function assertRemovable(rec: RunRecord, ownPid?: number): void {
  if (!heldElsewhere(rec, ownPid)) return;
  throw new RunConflictError(
    `run "${rec.id}" is ${rec.status} in process ${rec.pid}: stop it first (Ctrl-C in its terminal, kill -TERM ${rec.pid}, or Stop in the app), then remove it`,
  );
}

/** Pause and stop act on the process that runs a job: for a run held by another one, say where it is and how. */
export function assertControllableHere(rec: RunRecord, action: 'pause' | 'stop'): void {
  if (!heldElsewhere(rec, process.pid)) return;
  const how =
    action === 'stop'
      ? `Ctrl-C in its terminal, or kill -TERM ${rec.pid}: it saves a checkpoint first`
      : `kill -STOP ${rec.pid} holds it, kill -CONT ${rec.pid} lets it go on`;
  throw new RunConflictError(
    `it is ${rec.status} in another process (pid ${rec.pid}), not in this one: ${action} it there (${how})`,
  );
}
