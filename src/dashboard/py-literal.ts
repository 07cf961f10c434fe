/**
 * Reads back what Python's repr() wrote for JSON-like values (events carry args and kwargs as
 * `argsrepr`/`kwargsrepr`): lists, tuples, dicts, str, int, float, True/False/None. Anything else
 * (an object's repr, a repr cut short with `...`) is refused with the position it stopped at.
 */
export function parsePyLiteral(text: string): unknown {
  const p = new Parser(text);
  const v = p.value();
  p.ws();
  if (p.i !== text.length) p.fail('unexpected text after the value');
  return v;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0', a: '\x07', b: '\b', f: '\f', v: '\v' };

class Parser {
  i = 0;
  constructor(private readonly s: string) {}

  fail(why: string): never {
    throw new SyntaxError(`not a Python literal (${why} at ${this.i}): ${this.s.slice(0, 80)}`);
  }

  ws(): void {
    while (/\s/.test(this.s[this.i] ?? '')) this.i++;
  }

  value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === '[' || c === '(') return this.seq(c === '[' ? ']' : ')');
    if (c === '{') return this.dict();
    if (c === "'" || c === '"') return this.str(c);
    for (const [word, v] of [['True', true], ['False', false], ['None', null]] as const) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    const m = /^-?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+|inf|nan)/.exec(this.s.slice(this.i));
    if (!m) this.fail('unexpected character');
    this.i += m[0].length;
    return Number(m[0].replace('inf', 'Infinity').replace('nan', 'NaN'));
  }

  private seq(close: string): unknown[] {
    this.i++;
    const out: unknown[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.i] === close) break;
      out.push(this.value());
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== close) this.fail(`expected , or ${close}`);
    }
    this.i++;
    return out;
  }

  private dict(): Record<string, unknown> {
    this.i++;
    const out: Record<string, unknown> = {};
    for (;;) {
      this.ws();
      if (this.s[this.i] === '}') break;
      const k = this.value();
      if (typeof k !== 'string') this.fail('a key that is not a string');
      this.ws();
      if (this.s[this.i++] !== ':') this.fail('expected :');
      out[k] = this.value();
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== '}') this.fail('expected , or }');
    }
    this.i++;
    return out;
  }

  private str(q: string): string {
    this.i++;
    let out = '';
    for (;;) {
      const c = this.s[this.i++];
      if (c === undefined) this.fail('unterminated string');
      if (c === q) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.s[this.i++] ?? '';
      if (e in ESCAPES) out += ESCAPES[e];
      else if (e === 'x' || e === 'u' || e === 'U') {
        const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const hex = this.s.slice(this.i, this.i + n);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== n) this.fail('bad escape');
        out += String.fromCodePoint(parseInt(hex, 16));
        this.i += n;
      } else this.fail('bad escape');
    }
  }
}
