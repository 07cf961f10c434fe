/**
 * json.ts against Python: `dumps` must produce what kombu 5.2's `json.dumps` writes (REFERENCE.md §1.3),
 * `loads` must read kombu 5.2 (plain) and kombu >= 5.3 (`__type__`-tagged) JSON.
 */
import { describe, expect, it } from 'vitest';
import { EncodeError } from '../src/errors.ts';
import { dumps, isoformat, loads, naiveUtcIso, parsePythonDate, pyNumber } from '../src/protocol/json.ts';
import { argsRepr, pyRepr } from '../src/protocol/repr.ts';
import { loadFixture } from './helpers/fixtures.ts';
import { createTestApp } from '../src/testing.ts';

describe('dumps writes what Python json.dumps writes', () => {
  it('separators ", " and ": ", insertion key order, nested values', () => {
    expect(dumps({ b: 1, a: [1, 'x', null, true, false, { z: {} }], c: [] })).toBe('{"b": 1, "a": [1, "x", null, true, false, {"z": {}}], "c": []}');
    expect(dumps([[2, 3], {}, { callbacks: null, errbacks: null, chain: null, chord: null }])).toBe(
      '[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
    );
  });

  it('ensure_ascii: non-ASCII as lowercase \\uXXXX, astral characters as surrogate pairs', () => {
    expect(dumps('é☃')).toBe('"\\u00e9\\u2603"');
    expect(dumps('😀')).toBe('"\\ud83d\\ude00"');
    expect(dumps({ 'clé': 'ü' })).toBe('{"cl\\u00e9": "\\u00fc"}');
    expect(dumps('\u007f\u0080')).toBe('"\\u007f\\u0080"');
  });

  it('escapes like Python: short forms for \\n \\r \\t \\b \\f " \\\\, \\u00XX for other controls, "/" left alone', () => {
    expect(dumps('a"b\\c\n\r\t\b\f\u0000\u001f/')).toBe('"a\\"b\\\\c\\n\\r\\t\\b\\f\\u0000\\u001f/"');
  });

  it('long strings (a 100 KB argument or result) escape every character as short ones do', () => {
    const long = 'x'.repeat(5000);
    expect(dumps(long)).toBe(`"${long}"`);
    const specials = ['"', '\\', '\n', '\u0000', '\u001f', '\u007f', '\u0080', 'é', '\u2028', '😀', '\ud800', '\udfff', '/', '~', ' '];
    for (const c of specials) {
      for (const at of [0, 2500, 5000]) {
        const s = long.slice(0, at) + c + long.slice(at);
        expect(dumps(s)).toBe('"' + long.slice(0, at) + dumps(c).slice(1, -1) + long.slice(at) + '"');
      }
    }
    expect(dumps(long + '\u007f')).toMatch(/\\u007f"$/);
  });

  it('numbers as Python repr(): shortest digits, exponent below 1e-4 and from 1e16 with two digits', () => {
    expect(dumps([0, -3, 1.5, 0.1, 1795583301.9685326, 0.0001])).toBe('[0, -3, 1.5, 0.1, 1795583301.9685326, 0.0001]');
    expect(dumps([1e-5, 1.5e-7, 1e16, 1.5e300, -2.5e-10])).toBe('[1e-05, 1.5e-07, 1e+16, 1.5e+300, -2.5e-10]');
    expect(dumps([NaN, Infinity, -Infinity])).toBe('[NaN, Infinity, -Infinity]');
    expect(pyNumber(2 ** 40)).toBe('1099511627776');
  });

  it('dates as kombu 5.2 writes them: UTC with "Z", microseconds only when non-zero', () => {
    expect(dumps(new Date('2024-05-06T07:08:09.123Z'))).toBe('"2024-05-06T07:08:09.123000Z"');
    expect(dumps(new Date('2024-05-06T07:08:09.000Z'))).toBe('"2024-05-06T07:08:09Z"');
    expect(dumps({ eta: new Date('2030-01-02T03:04:05.678Z') })).toBe('{"eta": "2030-01-02T03:04:05.678000Z"}');
    expect(isoformat(new Date('2030-01-02T03:04:05.678Z'), { z: false })).toBe('2030-01-02T03:04:05.678000+00:00');
    // date_done: naive UTC (result-success.json: "2026-11-25T04:56:59.893169")
    expect(naiveUtcIso(new Date('2026-11-25T04:56:59.893Z'))).toBe('2026-11-25T04:56:59.893000');
    expect(naiveUtcIso(new Date('2026-11-25T04:56:59Z'))).toBe('2026-11-25T04:56:59');
  });

  it('undefined members are left out, Map/Set/toJSON/bigint are written as JSON', () => {
    expect(dumps({ a: undefined, b: 1 })).toBe('{"b": 1}');
    expect(dumps(new Map<unknown, unknown>([[1, 'x']]))).toBe('{"1": "x"}');
    expect(dumps(new Set([1, 2]))).toBe('[1, 2]');
    expect(dumps({ toJSON: () => 'y' })).toBe('"y"');
    expect(dumps(2n ** 70n)).toBe('1180591620717411303424');
  });

  it('bytes are refused with an EncodeError, as kombu 5.2 does (redis-task-json-bytes.json)', () => {
    const fx = loadFixture('redis-task-json-bytes.json');
    expect(fx.error).toContain('Object of type bytes is not JSON serializable');
    expect(fx.messages).toEqual([]);
    const attempt = () => dumps([[Buffer.from([0x00, 0xff, 0x62])], {}]);
    expect(attempt).toThrow(EncodeError);
    expect(attempt).toThrow(/Object of type bytes is not JSON serializable: encode binary data .*base64/);
    expect(() => dumps(new Uint8Array(2))).toThrow(EncodeError);
  });

  it('cycles and functions are refused with an EncodeError that names where the cycle is', () => {
    const a: unknown[] = [];
    a.push(a);
    expect(() => dumps(a)).toThrow(EncodeError);
    expect(() => dumps(a)).toThrow('Circular reference detected at [0]: only JSON data (no cycles) can be sent');
    const o: Record<string, unknown> = { list: [1, { 'a b': {} }] };
    ((o.list as unknown[])[1] as Record<string, Record<string, unknown>>)['a b']!.back = o;
    expect(() => dumps({ top: o })).toThrow('Circular reference detected at top.list[1]["a b"].back:');
    const shared = { x: 1 };
    expect(dumps([shared, shared])).toBe('[{"x": 1}, {"x": 1}]'); // the same object twice is no cycle
    expect(() => dumps({ f: () => 1 })).toThrow(EncodeError);
  });

  it('reproduces the json-types capture byte for byte, from the decoded values', () => {
    const [m] = loadFixture('redis-task-json-types.json').messages;
    expect(dumps(JSON.parse(m.body_decoded_text))).toBe(m.body_decoded_text);
  });
});

describe('loads reads Python and kombu JSON', () => {
  it('kombu 5.2 strings stay strings, dates included', () => {
    expect(loads('["2024-05-06T07:08:09.123456Z", "12345678-1234-5678-1234-567812345678", "1.10"]')).toEqual([
      '2024-05-06T07:08:09.123456Z',
      '12345678-1234-5678-1234-567812345678',
      '1.10',
    ]);
  });

  it('kombu 5.3 tagged datetime becomes a Date (microseconds cut to ms)', () => {
    const v = loads('{"eta": {"__type__": "datetime", "__value__": "2024-05-06T07:08:09.123456+00:00"}}') as { eta: Date };
    expect(v.eta).toBeInstanceOf(Date);
    expect(v.eta.toISOString()).toBe('2024-05-06T07:08:09.123Z');
    const tz = loads('{"__type__": "datetime", "__value__": "2024-05-06T07:08:09+02:00"}') as Date;
    expect(tz.toISOString()).toBe('2024-05-06T05:08:09.000Z');
  });

  it('kombu 5.3 uuid ({"hex", "version"} or string), decimal, date and time become strings', () => {
    expect(loads('{"__type__": "uuid", "__value__": {"hex": "12345678123456781234567812345678", "version": 4}}')).toBe('12345678-1234-5678-1234-567812345678');
    expect(loads('{"__type__": "uuid", "__value__": "12345678-1234-5678-1234-567812345678"}')).toBe('12345678-1234-5678-1234-567812345678');
    expect(loads('[{"__type__": "decimal", "__value__": "1.10"}, {"__type__": "date", "__value__": "2024-05-06"}, {"__type__": "time", "__value__": "07:08:09.000005"}]')).toEqual([
      '1.10',
      '2024-05-06',
      '07:08:09.000005',
    ]);
  });

  it('kombu 5.3 bytes/base64 become Buffers; a dict that merely has a __type__ key is left alone', () => {
    expect(loads('{"__type__": "bytes", "__value__": "h\\u00e9"}')).toEqual(Buffer.from('hé', 'utf8'));
    expect(loads('{"__type__": "base64", "__value__": "AP8="}')).toEqual(Buffer.from([0, 255]));
    expect(loads('{"__type__": "x", "__value__": 1, "other": 2}')).toEqual({ __type__: 'x', __value__: 1, other: 2 });
  });

  it('Python NaN / Infinity / -Infinity parse, also at top level, and strings mentioning them are untouched', () => {
    expect(loads('[NaN, Infinity, -Infinity, 1]')).toEqual([NaN, Infinity, -Infinity, 1]);
    expect(loads('{"a": NaN}')).toEqual({ a: NaN });
    expect(loads('NaN')).toBeNaN();
    expect(loads('{"msg": "x: NaN, y", "v": -Infinity}')).toEqual({ msg: 'x: NaN, y', v: -Infinity });
  });

  it('invalid JSON throws SyntaxError, even when it mentions NaN or has long integers', () => {
    expect(() => loads('[1, ')).toThrow(SyntaxError);
    expect(() => loads('["NaN"')).toThrow(SyntaxError);
    expect(() => loads('[12345678901234567890, ')).toThrow(SyntaxError);
    expect(() => loads('[00000000000000000001]')).toThrow(SyntaxError);
  });

  it('integers beyond Number.MAX_SAFE_INTEGER become bigint, exactly; safe ones and floats stay numbers', () => {
    expect(loads('[12345678901234567890, -1180591620717411303424, 9007199254740992, 9007199254740991, -9007199254740991]')).toEqual([
      12345678901234567890n, -1180591620717411303424n, 9007199254740992n, 9007199254740991, -9007199254740991,
    ]);
    expect(loads('{"x": 0.30000000000000004, "y": 1.2345678901234567e+19, "z": 1234567890123456.5}')).toEqual({ x: 0.30000000000000004, y: 1.2345678901234567e19, z: 1234567890123456.5 });
    expect(loads('{"id": "12345678901234567890", "n": [NaN, 12345678901234567890]}')).toEqual({ id: '12345678901234567890', n: [NaN, 12345678901234567890n] });
    expect(loads('{"__type__": "datetime", "__value__": "2024-05-06T07:08:09Z", "n": 1}')).toMatchObject({ __type__: 'datetime' });
    expect(loads('[{"__type__": "datetime", "__value__": "2024-05-06T07:08:09Z"}, 99999999999999999999]')).toEqual([new Date('2024-05-06T07:08:09Z'), 99999999999999999999n]);
  });

  it('big integers and NaN/Infinity round-trip: loads then dumps gives the same text', () => {
    const text = '{"result": [12345678901234567890, -12345678901234567890, NaN, Infinity, -Infinity, 1.5, 7]}';
    expect(dumps(loads(text))).toBe(text);
  });
});

describe('parsePythonDate', () => {
  it.each([
    ['2030-01-02T03:04:05.678901+00:00', '2030-01-02T03:04:05.678Z'],
    ['2024-05-06T07:08:09Z', '2024-05-06T07:08:09.000Z'],
    ['2000-01-01T00:00:00', '2000-01-01T00:00:00.000Z'],
    ['2024-05-06T07:08:09+02:00', '2024-05-06T05:08:09.000Z'],
    ['2024-05-06T07:08:09.5-0130', '2024-05-06T08:38:09.500Z'],
    ['2024-05-06', '2024-05-06T00:00:00.000Z'],
  ])('%s → %s', (input, iso) => {
    expect(parsePythonDate(input)?.toISOString()).toBe(iso);
  });

  it.each(['tomorrow', '2024-02-30T00:00:00', '2024-13-01', '2024-05-06T24:00:00', '07:08:09', ''])('rejects %j', (input) => {
    expect(parsePythonDate(input)).toBeNull();
  });
});

describe('Python repr (argsrepr / kwargsrepr)', () => {
  it('tuples, dicts, None/True/False, quotes and escapes as Python writes them', () => {
    expect(argsRepr([2, 3])).toBe('(2, 3)');
    expect(argsRepr([2])).toBe('(2,)');
    expect(argsRepr([])).toBe('()');
    expect(argsRepr([[0, 2, 4]])).toBe('([0, 2, 4],)');
    expect(pyRepr({ y: 3, n: null, t: true, f: false, l: [1.5, 'é☃'] })).toBe("{'y': 3, 'n': None, 't': True, 'f': False, 'l': [1.5, 'é☃']}");
    expect(pyRepr("it's")).toBe('"it\'s"');
    expect(pyRepr('a\'b"c')).toBe("'a\\'b\"c'");
    expect(pyRepr('tab\t\\ nul\u0000 del\u007f nbsp\u00a0 ls\u2028 😀')).toBe("'tab\\t\\\\ nul\\x00 del\\x7f nbsp\\xa0 ls\\u2028 😀'");
  });

  it('dates as datetime.datetime(…, tzinfo=datetime.timezone.utc) (redis-task-json-types.json argsrepr)', () => {
    expect(argsRepr([new Date('2024-05-06T07:08:09.123Z')])).toBe('(datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=datetime.timezone.utc),)');
    expect(pyRepr(new Date('2024-05-06T07:08:00Z'))).toBe('datetime.datetime(2024, 5, 6, 7, 8, tzinfo=datetime.timezone.utc)');
    expect(pyRepr(new Date('2024-05-06T00:00:00.001Z'))).toBe('datetime.datetime(2024, 5, 6, 0, 0, 0, 1000, tzinfo=datetime.timezone.utc)');
  });

  it('a cycle is written as Python writes it, instead of recursing forever', () => {
    const o: Record<string, unknown> = {};
    o.self = o;
    const l: unknown[] = [1];
    l.push(l);
    expect(argsRepr([o])).toBe("({'self': {...}},)");
    expect(pyRepr(l)).toBe('[1, [...]]');
  });

  it('is cut at 1024 characters like Celery’s saferepr limit', () => {
    const s = argsRepr(['x'.repeat(2000)]);
    expect(s).toHaveLength(1024);
    expect(s.endsWith('...')).toBe(true);
  });
});

describe('sending a task whose arguments have a cycle', () => {
  it('rejects with an EncodeError naming the path in args or kwargs, and sends nothing', async () => {
    const app = createTestApp();
    const o: Record<string, unknown> = { a: 1 };
    o.self = o;
    await expect(app.sendTask('t.echo', [o])).rejects.toThrow(EncodeError);
    await expect(app.sendTask('t.echo', [o])).rejects.toThrow(/circular reference at args\[0\]\.self; task arguments must be JSON data/);
    await expect(app.sendTask('t.echo', [1], { x: [o] })).rejects.toThrow(/circular reference at kwargs\.x\[0\]\.self/);
    expect(await (await app.transport()).size('celery')).toBe(0);
    await app.close();
  });
});
