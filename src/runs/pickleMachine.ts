// A pickle interpreter that cannot run code. A pickle is a program for a stack machine: its data opcodes build
// values, and GLOBAL / REDUCE / BUILD / NEWOBJ import and call arbitrary Python callables. This machine runs the
// data opcodes itself and hands every import, call and state-setting to hooks, so whoever uses it decides, by an
// explicit allow-list, what a global may stand for; the machine itself resolves nothing. Protocols 0-5 are read
// (torch.save writes protocol 2); out-of-band buffers and the copyreg extension registry are refused.

import { CheckpointError } from './safetensors.ts';

/** A value built by a hook (a resolved global, a tensor, ...); `pickleKind` describes it in messages. */
export interface PickleObject {
  readonly pickleKind: string;
}

/** Python values: tuples are frozen arrays, lists plain ones; dicts are Maps (insertion order kept); ints that a
 * double cannot hold exactly are bigints; bytes and bytearray are Uint8Arrays. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | Set<PickleValue>
  | PickleObject;

export interface PickleHooks {
  /** Prefixes every error message (the file name). */
  source: string;
  /** GLOBAL / STACK_GLOBAL / INST: the value a global stands for, or a throw. */
  global(module: string, name: string): PickleValue;
  /** REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ: `how` names the opcode. */
  call(f: PickleValue, args: PickleValue[], how: string): PickleValue;
  /** BUILD: sets the state of `obj` (Python's __setstate__ or __dict__.update). */
  build(obj: PickleValue, state: PickleValue): void;
  /** BINPERSID / PERSID: a reference to data kept outside the pickle; refused when absent. */
  persistentLoad?(pid: PickleValue): PickleValue;
}

export function isPickleObject(v: PickleValue): v is PickleObject {
  return typeof v === 'object' && v !== null && 'pickleKind' in v;
}

export function describe(v: PickleValue): string {
  if (v === null) return 'None';
  if (isPickleObject(v)) return v.pickleKind;
  if (v instanceof Uint8Array) return 'a bytes value';
  if (v instanceof Map) return 'a dict';
  if (v instanceof Set) return 'a set';
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'a tuple' : 'a list';
  return `a ${typeof v === 'bigint' ? 'number' : typeof v} (${String(v).slice(0, 40)})`;
}

// Every opcode of protocols 0-5 (CPython's pickletools table), by its byte.
// prettier-ignore
const OPCODES = {
  MARK: '(', STOP: '.', POP: '0', POP_MARK: '1', DUP: '2', FLOAT: 'F', INT: 'I', BININT: 'J', BININT1: 'K', LONG: 'L',
  BININT2: 'M', NONE: 'N', PERSID: 'P', BINPERSID: 'Q', REDUCE: 'R', STRING: 'S', BINSTRING: 'T', SHORT_BINSTRING: 'U',
  UNICODE: 'V', BINUNICODE: 'X', APPEND: 'a', BUILD: 'b', GLOBAL: 'c', DICT: 'd', EMPTY_DICT: '}', APPENDS: 'e',
  GET: 'g', BINGET: 'h', INST: 'i', LONG_BINGET: 'j', LIST: 'l', EMPTY_LIST: ']', OBJ: 'o', PUT: 'p', BINPUT: 'q',
  LONG_BINPUT: 'r', SETITEM: 's', TUPLE: 't', EMPTY_TUPLE: ')', SETITEMS: 'u', BINFLOAT: 'G', BINBYTES: 'B',
  SHORT_BINBYTES: 'C', PROTO: '\x80', NEWOBJ: '\x81', EXT1: '\x82', EXT2: '\x83', EXT4: '\x84', TUPLE1: '\x85',
  TUPLE2: '\x86', TUPLE3: '\x87', NEWTRUE: '\x88', NEWFALSE: '\x89', LONG1: '\x8a', LONG4: '\x8b',
  SHORT_BINUNICODE: '\x8c', BINUNICODE8: '\x8d', BINBYTES8: '\x8e', EMPTY_SET: '\x8f', ADDITEMS: '\x90',
  FROZENSET: '\x91', NEWOBJ_EX: '\x92', STACK_GLOBAL: '\x93', MEMOIZE: '\x94', FRAME: '\x95', BYTEARRAY8: '\x96',
  NEXT_BUFFER: '\x97', READONLY_BUFFER: '\x98',
} as const;
type OpName = keyof typeof OPCODES;
const OP_BY_BYTE = new Map<number, OpName>(
  Object.entries(OPCODES).map(([name, ch]) => [ch.charCodeAt(0), name as OpName]),
);
const hex = (b: number) => `0x${b.toString(16).padStart(2, '0')}`;

const utf8 = new TextDecoder('utf-8');
export const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const tuple = (items: PickleValue[]): PickleValue[] => Object.freeze(items) as PickleValue[];
const narrow = (v: bigint): number | bigint =>
  v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;

/** LONG1 / LONG4: little-endian two's complement. */
function intFromBytes(b: Uint8Array): number | bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b.length && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return narrow(v);
}

/** Runs the pickle in `data` and returns the value it leaves on the stack. */
export function runPickle(data: Uint8Array, hooks: PickleHooks): PickleValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let at = 0; // where the running opcode starts, for messages
  const fail = (msg: string): never => {
    throw new CheckpointError(`${hooks.source}: ${msg} (pickle byte ${at})`);
  };
  const need = (n: number) => {
    if (pos + n > data.length) fail(`pickle data ends unexpectedly (${n} more bytes needed): truncated`);
    pos += n;
    return pos - n;
  };
  const u8 = () => data[need(1)];
  const u32 = () => view.getUint32(need(4), true);
  const u64 = () => {
    const n = view.getBigUint64(need(8), true);
    return n > BigInt(data.length) ? fail(`a length of ${n} bytes exceeds the pickle's size: corrupt`) : Number(n);
  };
  const take = (n: number) => data.subarray(need(n), pos);
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('pickle data ends inside a text argument: truncated');
    const s = latin1(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const intText = (s: string) =>
    /^[-+]?\d+L?$/.test(s) ? narrow(BigInt(s.replace(/L$/, ''))) : fail(`bad int '${s}'`);
  const floatText = (s: string) => {
    const v = /^[-+]?nan$/i.test(s) ? NaN : /^[-+]?inf$/i.test(s) ? (s[0] === '-' ? -1 : 1) * Infinity : Number(s);
    return Number.isNaN(v) && !/nan/i.test(s) ? fail(`bad float '${s}'`) : v;
  };
  // As in CPython, MARK starts a fresh stack: nothing below it can be popped until the mark is consumed.
  const floor = () => (marks.length ? marks[marks.length - 1] : 0);
  const pop = () => (stack.length > floor() ? stack.pop()! : fail('stack underflow: corrupt pickle'));
  const top = () => (stack.length > floor() ? stack[stack.length - 1] : fail('stack underflow: corrupt pickle'));
  const push = (v: PickleValue) => void stack.push(v);
  const popMark = () => (marks.length ? stack.splice(marks.pop()!) : fail('no MARK on the stack: corrupt pickle'));
  // Python would call the target's methods here; this reader only fills its own containers.
  const setItems = (items: PickleValue[]) => {
    const d = top();
    if (!(d instanceof Map)) fail(`the pickle sets items on ${describe(d)}, which is not a dict`);
    for (let i = 0; i + 1 < items.length; i += 2) (d as Map<PickleValue, PickleValue>).set(items[i], items[i + 1]);
  };
  const append = (items: PickleValue[]) => {
    const l = top();
    if (!Array.isArray(l) || Object.isFrozen(l)) fail(`the pickle appends to ${describe(l)}, which is not a list`);
    (l as PickleValue[]).push(...items);
  };
  const getMemo = (i: number) => (memo.has(i) ? memo.get(i)! : fail(`memo entry ${i} is read before it is written`));
  const persistent = (pid: PickleValue) =>
    hooks.persistentLoad
      ? hooks.persistentLoad(pid)
      : fail('the pickle holds a persistent id, but nothing resolves it');
  const call = (how: string) => {
    const args = pop();
    const f = pop();
    if (!Array.isArray(args)) fail(`${how} with ${describe(args)} as its arguments: corrupt pickle`);
    push(hooks.call(f, args as PickleValue[], how));
  };

  const ops: Partial<Record<OpName, () => void>> = {
    PROTO: () => void (u8() > 5 && fail(`pickle protocol ${data[pos - 1]} is newer than 5`)),
    // Framing groups opcodes for buffered readers; the whole pickle is in memory anyway.
    FRAME: () => void u64(),
    MARK: () => void marks.push(stack.length),
    POP: () => void pop(),
    POP_MARK: () => void popMark(),
    DUP: () => push(top()),
    NONE: () => push(null),
    NEWTRUE: () => push(true),
    NEWFALSE: () => push(false),
    BININT: () => push(view.getInt32(need(4), true)),
    BININT1: () => push(u8()),
    BININT2: () => push(view.getUint16(need(2), true)),
    LONG1: () => push(intFromBytes(take(u8()))),
    LONG4: () => push(intFromBytes(take(u32()))),
    INT: () => {
      const s = line(); // protocol 0 spells True and False as INT 01 / 00
      push(s === '01' ? true : s === '00' ? false : intText(s));
    },
    LONG: () => push(intText(line())),
    FLOAT: () => push(floatText(line())),
    BINFLOAT: () => push(view.getFloat64(need(8), false)),
    BINUNICODE: () => push(utf8.decode(take(u32()))),
    SHORT_BINUNICODE: () => push(utf8.decode(take(u8()))),
    BINUNICODE8: () => push(utf8.decode(take(u64()))),
    UNICODE: () =>
      push(
        line().replace(/\\u([0-9a-f]{4})|\\U([0-9a-f]{8})/gi, (_, a, b) => String.fromCodePoint(parseInt(a ?? b, 16))),
      ),
    // Python 2 str: read as latin-1, which keeps every byte.
    BINSTRING: () => push(latin1(take(u32()))),
    SHORT_BINSTRING: () => push(latin1(take(u8()))),
    BINBYTES: () => push(take(u32()).slice()),
    SHORT_BINBYTES: () => push(take(u8()).slice()),
    BINBYTES8: () => push(take(u64()).slice()),
    BYTEARRAY8: () => push(take(u64()).slice()),
    EMPTY_LIST: () => push([]),
    LIST: () => push(popMark()),
    APPEND: () => {
      const v = pop();
      append([v]);
    },
    APPENDS: () => append(popMark()),
    EMPTY_TUPLE: () => push(tuple([])),
    TUPLE: () => push(tuple(popMark())),
    TUPLE1: () => push(tuple([pop()])),
    TUPLE2: () => {
      const b = pop();
      push(tuple([pop(), b]));
    },
    TUPLE3: () => {
      const c = pop();
      const b = pop();
      push(tuple([pop(), b, c]));
    },
    EMPTY_DICT: () => push(new Map()),
    DICT: () => {
      const items = popMark();
      push(new Map());
      setItems(items);
    },
    SETITEM: () => {
      const v = pop();
      setItems([pop(), v]);
    },
    SETITEMS: () => setItems(popMark()),
    EMPTY_SET: () => push(new Set()),
    FROZENSET: () => push(new Set(popMark())),
    ADDITEMS: () => {
      const items = popMark();
      const s = top();
      if (!(s instanceof Set)) fail(`the pickle adds set items to ${describe(s)}, which is not a set`);
      items.forEach((x) => (s as Set<PickleValue>).add(x));
    },
    PUT: () => void memo.set(Number(line()), top()),
    BINPUT: () => void memo.set(u8(), top()),
    LONG_BINPUT: () => void memo.set(u32(), top()),
    MEMOIZE: () => void memo.set(memo.size, top()),
    GET: () => push(getMemo(Number(line()))),
    BINGET: () => push(getMemo(u8())),
    LONG_BINGET: () => push(getMemo(u32())),
    GLOBAL: () => {
      const module = line();
      push(hooks.global(module, line()));
    },
    STACK_GLOBAL: () => {
      const name = pop();
      const module = pop();
      if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
      push(hooks.global(module as string, name as string));
    },
    REDUCE: () => call('REDUCE'),
    NEWOBJ: () => call('NEWOBJ'),
    NEWOBJ_EX: () => {
      const kwargs = pop();
      if (!(kwargs instanceof Map) || kwargs.size) fail('NEWOBJ_EX with keyword arguments is not supported');
      call('NEWOBJ_EX');
    },
    INST: () => {
      const module = line();
      const cls = hooks.global(module, line());
      push(hooks.call(cls, popMark(), 'INST'));
    },
    OBJ: () => {
      const [cls, ...args] = popMark();
      push(hooks.call(cls, args, 'OBJ'));
    },
    BUILD: () => {
      const state = pop();
      hooks.build(top(), state);
    },
    BINPERSID: () => push(persistent(pop())),
    PERSID: () => push(persistent(line())),
  };
  if (data.length === 0) fail('the pickle is empty');
  for (;;) {
    at = pos;
    const byte = u8();
    const name = OP_BY_BYTE.get(byte);
    if (name === 'STOP') {
      if (stack.length !== 1 || marks.length) fail(`the pickle stops with ${stack.length} values on the stack`);
      return stack[0];
    }
    const op = name && ops[name];
    if (!op)
      fail(
        name
          ? `pickle opcode ${name} (${hex(byte)}) is not supported by this reader (torch.save never writes it)`
          : `unknown pickle opcode ${hex(byte)}: the data is corrupt or not a pickle`,
      );
    op!();
  }
}
