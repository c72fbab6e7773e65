// Duplicate-key scan of raw JSON text. JSON.parse silently keeps the last of two equal keys, so a safetensors header
// with a repeated tensor name would hide a tensor; safetensors.ts runs this over every header it reads. A pure text
// walk with no knowledge of the format, kept apart from the reader so it can be tested (and reused) on its own.

/**
 * Walks the raw JSON text (already known to be valid) and returns the first key that occurs twice in one object,
 * at any depth. Needed because JSON.parse silently keeps the last duplicate.
 */
export function findDuplicateKey(text: string): { key: string; path: string } | null {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  const readString = (): string => {
    const start = i; // at the opening quote
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string; // decodes escapes, so "a" and "\u0061" compare equal
  };
  const value = (path: string): { key: string; path: string } | null => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return null;
      }
      for (;;) {
        ws();
        const key = readString();
        if (seen.has(key)) return { key, path };
        seen.add(key);
        ws();
        i++; // ':'
        const found = value(path ? `${path}.${key}` : key);
        if (found) return found;
        ws();
        if (text[i++] === '}') return null; // else ','
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return null;
      }
      for (let k = 0; ; k++) {
        const found = value(`${path}[${k}]`);
        if (found) return found;
        ws();
        if (text[i++] === ']') return null;
      }
    }
    if (c === '"') {
      readString();
      return null;
    }
    while (i < text.length && !',}] \n\r\t'.includes(text[i])) i++; // number, true, false, null
    return null;
  };
  return value('');
}
