import { InvalidInput } from './errors.ts';

/**
 * Parses the Python dict literals the OpenStack clients put in query strings
 * (`metadata={'k1': 'v1'}`, `extra_specs={'snapshot_support': 'True'}`) into string maps. Only
 * flat dicts of strings, numbers, booleans and None are accepted; JSON objects work too.
 */
export function parseDictLiteral(text: string, what: string): Record<string, string> {
  const s = text.trim();
  let i = 0;
  const fail = (why: string): never => {
    throw new InvalidInput(
      `Invalid ${what} filter ${JSON.stringify(text)}: ${why}; expected {'key': 'value', …}.`,
    );
  };
  const ws = () => {
    while (i < s.length && /\s/.test(s[i] as string)) i++;
  };
  const scalar = (): string => {
    ws();
    const c = s[i];
    if (c === "'" || c === '"') {
      let out = '';
      i++;
      while (i < s.length && s[i] !== c) {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        out += s[i];
        i++;
      }
      if (s[i] !== c) fail('unterminated string');
      i++;
      return out;
    }
    const m = /^(True|False|None|true|false|null|-?\d+(?:\.\d+)?)/.exec(s.slice(i));
    if (!m) return fail(`unexpected ${c === undefined ? 'end' : `'${c}'`} at ${i}`);
    i += (m[1] as string).length;
    return m[1] === 'true'
      ? 'True'
      : m[1] === 'false'
        ? 'False'
        : m[1] === 'null'
          ? 'None'
          : (m[1] as string);
  };
  const out: Record<string, string> = {};
  ws();
  if (s[i] !== '{') fail('not a dict');
  i++;
  ws();
  if (s[i] === '}') i++;
  else {
    for (;;) {
      const key = scalar();
      ws();
      if (s[i] !== ':') fail(`expected ':' at ${i}`);
      i++;
      out[key] = scalar();
      ws();
      if (s[i] === ',') {
        i++;
        continue;
      }
      if (s[i] === '}') {
        i++;
        break;
      }
      fail(`expected ',' or '}' at ${i}`);
    }
  }
  ws();
  if (i !== s.length) fail('trailing characters');
  return out;
}
