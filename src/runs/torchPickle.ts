// Reads PyTorch checkpoints (torch.save's zip format: Lightning .ckpt, .pt, .pth, pytorch_model.bin) without Python
// and without ever running code from the file. pickleMachine.ts interprets the pickle; the hooks here resolve only
// an allow-list of globals, each emulated in TypeScript: collections.OrderedDict, torch's tensor rebuild functions,
// the typed storage classes, and the constructors older protocols use to spell plain values (_codecs.encode for
// bytes, set, frozenset, bytearray). Anything else is refused, naming the global: a checkpoint that needs more than
// that is not one to open blindly.
//
// Layout of a torch.save archive: <root>/data.pkl (the pickle), <root>/data/<key> (raw little-endian storage bytes,
// referenced from the pickle by persistent ids ('storage', StorageClass, key, location, numel)), <root>/byteorder
// (torch >= 2.1). The root folder's name varies: 'archive', or the stem of the file name for torch < 2.

import { basename } from 'node:path';
import { describe, latin1, runPickle, type PickleObject, type PickleValue } from './pickleMachine.ts';
import { CheckpointError } from './safetensors.ts';
import { itemBytes, materialise, type LoadedStorage, type TorchDtype, type TorchTensor } from './torchTensor.ts';
import { ZipArchive, bufferSource, fileSource, type ByteSource } from './zipArchive.ts';

export { describe, type PickleValue } from './pickleMachine.ts';
export type { TorchDtype, TorchTensor, TorchTensorData } from './torchTensor.ts';

const STORAGE_DTYPES: Record<string, TorchDtype> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

type Callable = 'OrderedDict' | 'encode' | 'set' | 'bytearray' | 'tensor_v2' | 'tensor' | 'parameter';
// Protocols 2-4 spell bytes, sets and bytearrays as calls of their constructors (protocol 2 names builtins
// '__builtin__'); they are emulated like the rest, never looked up.
const CALLABLES: Record<string, Callable> = {
  'collections.OrderedDict': 'OrderedDict',
  '_codecs.encode': 'encode',
  'builtins.set': 'set',
  'builtins.frozenset': 'set',
  '__builtin__.set': 'set',
  '__builtin__.frozenset': 'set',
  'builtins.bytearray': 'bytearray',
  '__builtin__.bytearray': 'bytearray',
  'torch._utils._rebuild_tensor_v2': 'tensor_v2',
  'torch._utils._rebuild_tensor': 'tensor',
  'torch._utils._rebuild_parameter': 'parameter',
  'torch._utils._rebuild_parameter_with_state': 'parameter',
};

/** An allow-listed global: a storage class (dtype set) or one of the emulated callables. */
export class PickleGlobal implements PickleObject {
  constructor(
    readonly qualname: string,
    readonly dtype?: TorchDtype,
    readonly callable?: Callable,
  ) {}
  get pickleKind(): string {
    return this.qualname;
  }
}

/** One storage record of the archive, as a persistent id names it. Its bytes are read only when a tensor needs them. */
export class StorageRef implements PickleObject {
  readonly pickleKind = 'a storage';
  constructor(
    readonly key: string,
    readonly dtype: TorchDtype,
    readonly numel: number,
    readonly location: string,
  ) {}
}

/** A tensor view (offset, shape and strides in elements) onto a storage; materialised by TorchCheckpoint.tensors. */
export class TensorRef implements PickleObject {
  readonly pickleKind = 'a tensor';
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
  ) {}
  get dtype(): TorchDtype {
    return this.storage.dtype;
  }
}

export interface UnpickleOptions {
  /** Prefixes every error message (the checkpoint's file name). */
  source?: string;
  /** Resolves a persistent id; without it a persistent id is refused. */
  persistentLoad?: (pid: PickleValue) => PickleValue;
}

const NO_CODE =
  "only tensors, OrderedDict and torch's tensor rebuild functions are read (no code from a checkpoint ever runs)";
/** Modules whose only use in a pickle is to run code: no re-save hint for those, since loading the file is the attack. */
const HOSTILE = new Set(
  (
    'os posix nt subprocess builtins __builtin__ sys shutil socket importlib runpy pickle marshal types pty code ' +
    'codeop webbrowser ctypes asyncio multiprocessing operator functools'
  ).split(' '),
);

function refusal(source: string, what: string, f?: PickleValue | string): CheckpointError {
  const name = typeof f === 'string' ? f : f instanceof PickleGlobal ? f.qualname : undefined;
  const tail =
    name !== undefined && HOSTILE.has(name.split('.')[0])
      ? 'A checkpoint has no reason to reference it: the file may be malicious; do not open it with torch.load.'
      : 'If you trust the file, re-save just its weights with PyTorch and import that file instead: ' +
        `python -c 'import torch; ck = torch.load(${JSON.stringify(basename(source))}, map_location="cpu", ` +
        `weights_only=False); torch.save(ck.get("state_dict", ck), "weights.pt")'`;
  return new CheckpointError(`${source}: ${what}; ${NO_CODE}. ${tail}`);
}

const isInt = (v: PickleValue): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isIntTuple = (v: PickleValue): v is number[] => Array.isArray(v) && v.every(isInt);

/** Runs a pickle with torch's allow-list: any other global, and any call or BUILD not emulated, is refused. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): PickleValue {
  const source = opts.source ?? 'pickle';
  return runPickle(data, {
    source,
    persistentLoad: opts.persistentLoad,
    global(module, name) {
      const q = `${module}.${name}`;
      if (module === 'torch' && STORAGE_DTYPES[name]) return new PickleGlobal(q, STORAGE_DTYPES[name]);
      if (CALLABLES[q]) return new PickleGlobal(q, undefined, CALLABLES[q]);
      if (module === 'torch' && /Storage$/.test(name)) {
        const known = Object.keys(STORAGE_DTYPES).map((n) => `torch.${n}`);
        throw new CheckpointError(`${source}: tensors of type ${q} are not supported (supported: ${known.join(', ')})`);
      }
      throw refusal(source, `the pickle references the global ${q}`, q);
    },
    // An OrderedDict's instance dict (a state_dict's _metadata: per-module versions) is the one state accepted.
    build(obj, state) {
      if (!(obj instanceof Map) || !(state === null || state instanceof Map))
        throw refusal(source, `the pickle sets the state of ${describe(obj)} (BUILD)`);
    },
    call(f, args, how) {
      if (!(f instanceof PickleGlobal) || !f.callable)
        throw refusal(source, `the pickle calls ${describe(f)} (${how})`, f);
      if (how !== 'REDUCE' && f.callable !== 'OrderedDict')
        throw refusal(source, `the pickle instantiates ${f.qualname} (${how})`, f);
      const bad = (why: string): never => {
        throw new CheckpointError(`${source}: malformed call to ${f.qualname}: ${why}`);
      };
      switch (f.callable) {
        case 'OrderedDict': {
          const m = new Map<PickleValue, PickleValue>();
          if (args.length > 1 || (args.length === 1 && !Array.isArray(args[0])))
            bad('expected nothing or a list of pairs');
          for (const kv of (args[0] ?? []) as PickleValue[]) {
            if (!Array.isArray(kv) || kv.length !== 2) bad('an item is not a (key, value) pair');
            m.set((kv as PickleValue[])[0], (kv as PickleValue[])[1]);
          }
          return m;
        }
        case 'set':
          if (args.length > 1 || (args.length === 1 && !Array.isArray(args[0]))) bad('expected nothing or a list');
          return new Set((args[0] ?? []) as PickleValue[]);
        case 'encode':
        case 'bytearray': {
          const [s, enc] = args;
          if (f.callable === 'bytearray' && args.length <= 1) {
            if (args.length && !(s instanceof Uint8Array)) bad('expected bytes');
            return args.length ? (s as Uint8Array) : new Uint8Array(0);
          }
          if (args.length !== 2 || typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1'))
            return bad("only (str, 'latin1') arguments, protocol 2's spelling of bytes, are read");
          if ([...s].some((c) => c.charCodeAt(0) > 255)) bad('the string has characters outside latin-1');
          return new Uint8Array(Buffer.from(s, 'latin1'));
        }
        case 'parameter': {
          // _rebuild_parameter(data, requires_grad, backward_hooks[, state]): the tensor is all a state dict needs.
          const [t, requiresGrad] = args;
          if (!(t instanceof TensorRef)) return bad(`the first argument is ${describe(t)}, not a tensor`);
          return new TensorRef(t.storage, t.offset, t.shape, t.stride, requiresGrad === true);
        }
        default: {
          // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]); v1 has 4.
          const [storage, offset, shape, stride, requiresGrad] = args;
          if (!(storage instanceof StorageRef)) return bad(`the storage argument is ${describe(storage)}`);
          if (!isInt(offset)) return bad('the storage offset is not a non-negative integer');
          if (!isIntTuple(shape) || !isIntTuple(stride) || shape.length !== stride.length)
            return bad('size and stride must be tuples of non-negative integers of equal length');
          const numel = shape.reduce((a, b) => a * b, 1);
          const last = shape.reduce((a, d, i) => a + (d - 1) * stride[i], offset);
          if (numel > 0 && last >= storage.numel)
            bad(`the view reaches element ${last} of storage '${storage.key}', which holds ${storage.numel} elements`);
          return new TensorRef(storage, offset, [...shape], [...stride], requiresGrad === true);
        }
      }
    },
  });
}

// ------------------------------------------------------------------------------------------------------ archives

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface TorchCheckpoint {
  readonly source: string;
  /** The unpickled top-level object; tensors in it are TensorRefs, whose bytes are not read yet. */
  readonly root: PickleValue;
  /** Materialises tensors; a storage shared by several of them is read once. No two results share memory. */
  tensors(refs: TensorRef[]): TorchTensor[];
  close(): void;
}

/**
 * Opens a torch.save zip checkpoint (a path, or its bytes with `source` naming it in messages) and unpickles its
 * data.pkl. The file stays open, for TorchCheckpoint.tensors, until close().
 */
export function openTorchCheckpoint(
  file: string | Uint8Array,
  source = typeof file === 'string' ? file : 'checkpoint',
): TorchCheckpoint {
  const fail = (msg: string): never => {
    throw new CheckpointError(`${source}: ${msg}`);
  };
  if (!LITTLE_ENDIAN_HOST) fail('reading torch checkpoints needs a little-endian machine');
  let src: ByteSource;
  try {
    src = typeof file === 'string' ? fileSource(file) : bufferSource(file);
  } catch (e) {
    return fail(`cannot open (${(e as Error).message})`);
  }
  try {
    return openArchive(src, source, fail);
  } catch (e) {
    src.close();
    throw e;
  }
}

function openArchive(src: ByteSource, source: string, fail: (msg: string) => never): TorchCheckpoint {
  const head = new Uint8Array(Math.min(4, src.size));
  src.readInto(0, head);
  if (head[0] === 0x80)
    fail(
      'this is a legacy PyTorch file (written before torch 1.6, or with _use_new_zipfile_serialization=False), which ' +
        'keeps its tensors inside the pickle; only the zip format is read. Re-save it with torch >= 1.6: ' +
        `python -c 'import torch; torch.save(torch.load(${JSON.stringify(basename(source))}, ` +
        `map_location="cpu", weights_only=True), "weights.pt")'`,
    );
  if (head.length < 4 || head[0] !== 0x50 || head[1] !== 0x4b)
    fail(`not a torch.save checkpoint: it does not start with a zip signature (${src.size} bytes)`);
  const zip = ZipArchive.open(src, source);
  const roots = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n)).map((n) => n.slice(0, -9));
  if (roots.length !== 1) {
    const names = [...zip.entries.keys()];
    fail(
      roots.length
        ? `the zip holds several torch archives (${roots.join(', ')}); expected one <root>/data.pkl`
        : 'the zip archive has no <root>/data.pkl record, so it is not a torch.save checkpoint ' +
            `(entries: ${names.slice(0, 6).join(', ') || 'none'}${names.length > 6 ? ', …' : ''})`,
    );
  }
  const root = roots[0];
  if (zip.entries.has(`${root}/constants.pkl`) || [...zip.entries.keys()].some((n) => n.startsWith(`${root}/code/`)))
    fail(
      'this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; ' +
        'save the state_dict with torch.save',
    );
  if (zip.entries.has(`${root}/byteorder`)) {
    const order = latin1(zip.read(`${root}/byteorder`)).trim();
    if (order === 'big')
      fail(
        "the checkpoint stores big-endian tensors (its byteorder record says 'big'); " +
          're-save it on a little-endian machine',
      );
    if (order !== 'little') fail(`unknown byteorder record '${order.slice(0, 20)}'`);
  }

  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: PickleValue): PickleValue => {
    const [kind, cls, key, location, numel] = Array.isArray(pid) ? pid : [];
    if (!Array.isArray(pid) || pid.length !== 5 || kind !== 'storage')
      fail(
        `unsupported persistent id ${describe(pid)}: ` +
          "only ('storage', StorageClass, key, location, numel) tuples are read",
      );
    if (!(cls instanceof PickleGlobal) || !cls.dtype)
      return fail(`persistent id names ${describe(cls)}, not a storage class`);
    if (typeof key !== 'string' || typeof location !== 'string' || !isInt(numel))
      return fail(`malformed storage persistent id for key ${String(key)}`);
    const known = storages.get(key);
    if (known) {
      if (known.dtype !== cls.dtype || known.numel !== numel)
        fail(`storage '${key}' is declared twice with different types or sizes`);
      return known;
    }
    const entry = zip.entries.get(`${root}/data/${key}`);
    if (!entry)
      fail(
        `the pickle refers to tensor storage '${key}', but the archive has no record ${root}/data/${key} ` +
          '(incomplete or corrupt checkpoint)',
      );
    const bytes = numel * itemBytes(cls.dtype);
    if (entry!.size !== bytes)
      fail(
        `record ${root}/data/${key} holds ${entry!.size} bytes, ` +
          `but the pickle declares ${numel} ${cls.dtype} elements (${bytes} bytes)`,
      );
    const ref = new StorageRef(key, cls.dtype, numel, location);
    storages.set(key, ref);
    return ref;
  };
  const value = unpickle(zip.read(`${root}/data.pkl`), { source, persistentLoad });

  return {
    source,
    root: value,
    close: () => zip.close(),
    tensors(refs) {
      const uses = new Map<string, number>();
      refs.forEach((r) => uses.set(r.storage.key, (uses.get(r.storage.key) ?? 0) + 1));
      const cache = new Map<string, LoadedStorage>();
      return refs.map((r) => {
        const key = r.storage.key;
        let s = cache.get(key);
        if (!s) cache.set(key, (s = { bytes: zip.read(`${root}/data/${key}`), numel: r.storage.numel, lent: false }));
        const left = uses.get(key)! - 1;
        uses.set(key, left);
        if (left === 0) cache.delete(key); // the last view of this storage: let it go once its tensor is built
        return materialise(r, s);
      });
    },
  };
}

/**
 * The state dict of a torch zip checkpoint: its top-level dict of tensors, or, for a Lightning checkpoint, its
 * `state_dict` entry. Floating tensors come as Float32Array (F16 / BF16 / F64 converted), integer ones as they are.
 * Only the state dict's storages are read from disk (a Lightning file's optimizer moments are skipped).
 * Throws CheckpointError, naming the file and the problem, for anything it refuses.
 */
export function readTorchStateDict(file: string | Uint8Array, source?: string): Map<string, TorchTensor> {
  const ck = openTorchCheckpoint(file, source);
  try {
    const refs = stateDictRefs(ck.root, ck.source);
    const tensors = ck.tensors([...refs.values()]);
    return new Map([...refs.keys()].map((k, i) => [k, tensors[i]]));
  } finally {
    ck.close();
  }
}

/** The tensors of the state dict inside an unpickled checkpoint, by name, in file order. */
export function stateDictRefs(root: PickleValue, source: string): Map<string, TensorRef> {
  const expected = "expected a dict of tensors, or a Lightning checkpoint whose 'state_dict' entry is one";
  if (!(root instanceof Map))
    throw new CheckpointError(`${source}: the checkpoint holds ${describe(root)}; ${expected}`);
  const sd = root.has('state_dict') ? root.get('state_dict')! : root;
  if (!(sd instanceof Map))
    throw new CheckpointError(`${source}: its 'state_dict' entry is ${describe(sd)}; ${expected}`);
  const out = new Map<string, TensorRef>();
  for (const [k, v] of sd) {
    if (typeof k !== 'string') throw new CheckpointError(`${source}: state dict key ${describe(k)} is not a string`);
    if (!(v instanceof TensorRef))
      throw new CheckpointError(`${source}: state dict entry '${k}' is ${describe(v)}, not a tensor; ${expected}`);
    out.set(k, v);
  }
  return out;
}
