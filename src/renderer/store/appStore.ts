// App state (zustand, one store built from slices): connection + host info, runs, the open run's rounds and
// samples, models, the compare selection, "try it" results. Metric points live in metricsStore, not here.
import { create, type StateCreator } from 'zustand';
import type {
  ApiRequest,
  AppInfo,
  EvalSummaryRow,
  ModelInfo,
  RoundSummary,
  RunEvent,
  SampleCell,
  SdttApi,
} from '../../shared/api.ts';
import type { SampleResult } from '../../shared/messages.ts';
import type { RunRecord } from '../../shared/runState.ts';
import type { ApiHandle } from '../api/client.ts';
import type { ConnectionStatus } from '../api/wsClient.ts';
import { dropMetrics, ingestMetrics, loadMetrics, metricsRestarted, reloadAll } from './metricsStore.ts';
import { formatBytes } from '../../shared/units.ts';

export type View = 'run' | 'new' | 'compare';

interface ConnectionSlice {
  host: 'electron' | 'browser';
  conn: ConnectionStatus;
  info?: AppInfo;
  infoError?: string;
}
interface RunsSlice {
  runs: Record<string, RunRecord>;
  runsError?: string;
  selectedId?: string;
  view: View;
  select(id: string): void;
  setView(v: View): void;
}
interface DetailSlice {
  rounds: Record<string, RoundSummary[]>;
  /** A distillation's original teacher, evaluated like its students (absent until the run has computed it). */
  teacherEval: Record<string, EvalSummaryRow[]>;
  samples: Record<string, SampleCell[]>;
  samplesError: Record<string, string>;
  detailError: Record<string, string>;
  /** A running distillation's current evaluation step, per run (absent while it trains). Changes a few times per
   * round, never per metric point, so views may subscribe to it freely. */
  activity: Record<string, string>;
  models: ModelInfo[];
  modelsError?: string;
}
interface CompareSlice {
  compareIds: string[];
  toggleCompare(id: string): void;
}
/** One "try it" result: the model's label, the prefix asked for, the host's answer. */
export interface TryDrawn {
  key: number;
  model: string;
  prefix: string;
  result: SampleResult;
}
interface TrySlice {
  /** The host samples one job at a time: the run whose panel asked, and since when (panels remount per run). */
  tryBusy: { runId: string; since: number } | null;
  /** Per run, its latest results, newest first, and its last error. */
  tryResults: Record<string, TryDrawn[]>;
  tryErrors: Record<string, string | undefined>;
}
interface NoticeSlice {
  notices: { id: number; text: string; kind: 'error' | 'info' }[];
  notify(text: string, kind?: 'error' | 'info'): void;
  dismiss(id: number): void;
}
export type AppState = ConnectionSlice & RunsSlice & DetailSlice & CompareSlice & TrySlice & NoticeSlice;

let handle: ApiHandle | null = null;
export function api(): SdttApi {
  if (!handle) throw new Error('API not initialised');
  return handle.api;
}

const connectionSlice: StateCreator<AppState, [], [], ConnectionSlice> = () => ({
  host: 'browser',
  conn: { state: 'connecting', attempt: 0 },
});
const runsSlice: StateCreator<AppState, [], [], RunsSlice> = (set) => ({
  runs: {},
  view: 'run',
  select: (id) => {
    set({ selectedId: id, view: 'run' });
    void openRun(id);
  },
  setView: (view) => set({ view }),
});
const detailSlice: StateCreator<AppState, [], [], DetailSlice> = () => ({
  rounds: {},
  teacherEval: {},
  samples: {},
  samplesError: {},
  detailError: {},
  activity: {},
  models: [],
});
const compareSlice: StateCreator<AppState, [], [], CompareSlice> = (set, get) => ({
  compareIds: [],
  toggleCompare: (id) => {
    const cur = get().compareIds;
    const next = cur.includes(id) ? cur.filter((x) => x !== id) : [...cur, id];
    set({ compareIds: next });
    if (!cur.includes(id)) void loadMetrics(api(), id);
  },
});
const trySlice: StateCreator<AppState, [], [], TrySlice> = () => ({ tryBusy: null, tryResults: {}, tryErrors: {} });
let noticeId = 1;
const noticeSlice: StateCreator<AppState, [], [], NoticeSlice> = (set, get) => ({
  notices: [],
  notify: (text, kind = 'error') => {
    const id = noticeId++;
    set({ notices: [...get().notices.slice(-4), { id, text, kind }] });
    if (kind === 'info') setTimeout(() => get().dismiss(id), 5000);
  },
  dismiss: (id) => set({ notices: get().notices.filter((n) => n.id !== id) }),
});

export const useApp = create<AppState>()((...a) => ({
  ...connectionSlice(...a),
  ...runsSlice(...a),
  ...detailSlice(...a),
  ...compareSlice(...a),
  ...trySlice(...a),
  ...noticeSlice(...a),
}));

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

function upsertRun(r: RunRecord): void {
  useApp.setState((s) => ({ runs: { ...s.runs, [r.id]: r } }));
}

/** Sets or (text undefined / null) drops a run's activity; no state change, so no re-render, when nothing changes. */
function setActivity(runId: string, text: string | null | undefined): void {
  const cur = useApp.getState().activity;
  if ((cur[runId] ?? null) === (text || null)) return;
  const { [runId]: _drop, ...rest } = cur;
  useApp.setState({ activity: text ? { ...rest, [runId]: text } : rest });
}

/** `m` without key `id`. */
function omit<T>(m: Record<string, T>, id: string): Record<string, T> {
  const { [id]: _gone, ...rest } = m;
  return rest;
}

/** Forgets a deleted run: its record, details, compare slot and metric series; a run view showing it moves to the
 * newest remaining run (or the new-run form when none is left). */
function dropRun(id: string): void {
  const s = useApp.getState();
  const wasSelected = s.selectedId === id;
  const runs = omit(s.runs, id);
  const next = wasSelected
    ? Object.values(runs).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0]?.id
    : s.selectedId;
  useApp.setState({
    runs,
    rounds: omit(s.rounds, id),
    teacherEval: omit(s.teacherEval, id),
    samples: omit(s.samples, id),
    samplesError: omit(s.samplesError, id),
    detailError: omit(s.detailError, id),
    activity: omit(s.activity, id),
    tryResults: omit(s.tryResults, id),
    tryErrors: omit(s.tryErrors, id),
    compareIds: s.compareIds.filter((x) => x !== id),
    selectedId: next,
    ...(wasSelected && !next && s.view === 'run' ? { view: 'new' as View } : {}),
  });
  teacherEvalFetched.delete(id);
  dropMetrics(id);
  if (wasSelected && next) void openRun(next);
}

/** Runs whose teacher rows were fetched after a samples event (see handleEvent). */
const teacherEvalFetched = new Set<string>();

function upsertRound(runId: string, round: RoundSummary): void {
  useApp.setState((s) => {
    const list = [...(s.rounds[runId] ?? [])];
    const i = list.findIndex((x) => x.round === round.round);
    if (i >= 0) list[i] = round;
    else list.push(round);
    list.sort((a, b) => a.round - b.round);
    return { rounds: { ...s.rounds, [runId]: list } };
  });
}

export function handleEvent(e: RunEvent): void {
  switch (e.type) {
    case 'status':
      upsertRun(e.record);
      // Only a running worker evaluates: a stopped, failed, paused or finished run has no current activity.
      if (e.record.status !== 'running') setActivity(e.record.id, null);
      break;
    case 'metrics':
      ingestMetrics(e.runId, e.points);
      break;
    case 'round':
      upsertRound(e.runId, e.round);
      break;
    case 'samples': {
      const s = useApp.getState();
      if (s.selectedId === e.runId || s.samples[e.runId]) void refreshSamples(e.runId);
      // The teacher's samples (the first samples event of a run) come with its evaluation rows, written just before:
      // fetch them, once per run, so a run whose teacher evaluation file is unreadable does not refetch on every round.
      if (s.selectedId === e.runId && !s.teacherEval[e.runId] && !teacherEvalFetched.has(e.runId)) {
        teacherEvalFetched.add(e.runId);
        void refreshDetail(e.runId);
      }
      break;
    }
    case 'activity':
      setActivity(e.runId, e.text);
      break;
    case 'restarted':
      void metricsRestarted(api(), e.runId);
      break;
    case 'deleted':
      dropRun(e.runId);
      break;
  }
}

export async function refreshInfo(): Promise<void> {
  try {
    const info = await api().getInfo({});
    useApp.setState({ info, infoError: undefined });
  } catch (e) {
    useApp.setState({ infoError: msg(e) });
  }
}

export async function refreshRuns(): Promise<void> {
  try {
    const list = await api().listRuns({});
    useApp.setState({ runs: Object.fromEntries(list.map((r) => [r.id, r])), runsError: undefined });
  } catch (e) {
    useApp.setState({ runsError: msg(e) });
  }
}

export async function refreshModels(): Promise<void> {
  try {
    const models = await api().listModels({});
    useApp.setState({ models, modelsError: undefined });
  } catch (e) {
    useApp.setState({ modelsError: msg(e) });
  }
}

export async function refreshSamples(id: string): Promise<void> {
  try {
    const cells = await api().getSamples({ id });
    useApp.setState((s) => ({ samples: { ...s.samples, [id]: cells }, samplesError: { ...s.samplesError, [id]: '' } }));
  } catch (e) {
    useApp.setState((s) => ({ samplesError: { ...s.samplesError, [id]: msg(e) } }));
  }
}

/** The run's record, rounds, teacher evaluation and current activity. */
export async function refreshDetail(id: string): Promise<void> {
  try {
    const d = await api().getRun({ id });
    upsertRun(d.record);
    setActivity(id, d.activity); // events sent while this client was away (reload, reconnect) are not replayed
    useApp.setState((s) => {
      const { [id]: _old, ...teacherEval } = s.teacherEval;
      return {
        rounds: { ...s.rounds, [id]: [...d.rounds].sort((a, b) => a.round - b.round) },
        teacherEval: d.teacherEval ? { ...teacherEval, [id]: d.teacherEval } : teacherEval,
        detailError: { ...s.detailError, [id]: '' },
      };
    });
  } catch (e) {
    useApp.setState((s) => ({ detailError: { ...s.detailError, [id]: msg(e) } }));
  }
}

export async function openRun(id: string): Promise<void> {
  await refreshDetail(id);
  await Promise.all([loadMetrics(api(), id), refreshSamples(id)]);
}

/** Fresh samples from run `runId`'s model (labelled `model`); keeps the last `keep` results of that run. */
export async function trySample(
  runId: string,
  model: string,
  req: Omit<ApiRequest<'sampleModel'>, 'id'>,
  keep = 6,
): Promise<void> {
  const since = Date.now();
  useApp.setState((s) => ({ tryBusy: { runId, since }, tryErrors: { ...s.tryErrors, [runId]: undefined } }));
  try {
    const result = await api().sampleModel({ id: runId, ...req });
    const entry = { key: since, model, prefix: req.prefix ?? '', result };
    useApp.setState((s) => ({
      tryResults: { ...s.tryResults, [runId]: [entry, ...(s.tryResults[runId] ?? [])].slice(0, keep) },
    }));
  } catch (e) {
    useApp.setState((s) => ({ tryErrors: { ...s.tryErrors, [runId]: msg(e) } }));
  } finally {
    useApp.setState({ tryBusy: null });
  }
}

export async function control(id: string, action: 'start' | 'pause' | 'resume' | 'stop'): Promise<void> {
  try {
    upsertRun(await api().controlRun({ id, action }));
  } catch (e) {
    useApp.getState().notify(`${action} ${id}: ${msg(e)}`);
  }
}

/** Deletes a run (the caller has asked the user to confirm); on success the run and its metrics leave the store
 * at once, here and (through the 'deleted' event) in every other connected client. */
export async function deleteRun(id: string): Promise<boolean> {
  try {
    const r = await api().deleteRun({ id });
    dropRun(id);
    useApp
      .getState()
      .notify(`deleted run ${id} (${r.files} file${r.files === 1 ? '' : 's'}, ${formatBytes(r.bytes)})`, 'info');
    return true;
  } catch (e) {
    useApp.getState().notify(`delete ${id}: ${msg(e)}`);
    return false;
  }
}

/** Connects the store to an API handle: events, connection status, first load, refetch after reconnects. */
export function initStore(h: ApiHandle): () => void {
  handle = h;
  useApp.setState({ host: h.host });
  const offs = [
    h.api.subscribe(handleEvent),
    h.onStatus((conn) => useApp.setState({ conn: { ...conn } })),
    h.onReconnect(() => {
      void refreshInfo();
      void refreshRuns();
      void refreshModels();
      const sel = useApp.getState().selectedId;
      if (sel) void openRun(sel);
      void reloadAll(h.api);
    }),
  ];
  void refreshInfo();
  void refreshRuns().then(() => {
    const s = useApp.getState();
    if (!s.selectedId) {
      const latest = Object.values(s.runs).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
      if (latest) s.select(latest.id);
      else s.setView('new');
    }
  });
  void refreshModels();
  return () => offs.forEach((f) => f());
}
