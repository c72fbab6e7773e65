// Config diff for the compare view: flatten each run's config to dotted keys and mark the keys whose values differ.

export function flatten(obj: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (obj !== null && typeof obj === 'object' && !Array.isArray(obj)) {
    const entries = Object.entries(obj as Record<string, unknown>);
    if (entries.length === 0 && prefix) out[prefix] = '{}';
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = obj === undefined ? '' : JSON.stringify(obj);
  }
  return out;
}

export interface DiffRow {
  key: string;
  /** One value per config, '' where the key is absent. */
  values: string[];
  differs: boolean;
}

/** Rows for every key of any config, sorted with differing keys first (then alphabetically). */
export function configDiff(configs: readonly unknown[]): DiffRow[] {
  const flat = configs.map((c) => flatten(c));
  const keys = new Set<string>();
  for (const f of flat) for (const k of Object.keys(f)) keys.add(k);
  const rows: DiffRow[] = [...keys].map((key) => {
    const values = flat.map((f) => (key in f ? f[key]! : ''));
    return { key, values, differs: values.some((v) => v !== values[0]) };
  });
  rows.sort((a, b) => (a.differs === b.differs ? a.key.localeCompare(b.key) : a.differs ? -1 : 1));
  return rows;
}
