import assert from 'node:assert/strict';
import { it } from 'node:test';
import { hasDuplicateKeys } from '../../src/chain/duplicate-keys.js';

const cases: Array<[string, boolean]> = [
  ['{"a":1,"b":2}', false],
  ['{"a":1,"a":2}', true],
  ['{"a":{"b":1},"b":{"b":2}}', false],
  ['{"a":{"b":1,"b":2}}', true],
  ['{"a":[{"x":1},{"x":2}]}', false],
  ['{"\\u0069ss":1,"iss":2}', true],
  ['{"a":"x\\"y","a\\"":1}', false],
  ['{"a":"\\\\","a":1}', true],
  ['[{"a":1,"a":1}]', true],
  ['{"s":"{\\"a\\":1,\\"a\\":2}"}', false],
  ['{"a":[1,{"a":2}],"b":{"a":3}}', false],
];

it('finds repeated member names per object, decoding escapes, ignoring look-alikes inside strings', () => {
  for (const [text, expected] of cases) {
    JSON.parse(text);
    assert.equal(hasDuplicateKeys(text), expected, text);
  }
});
