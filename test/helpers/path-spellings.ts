/**
 * Spellings of requests to service `orders` (`export: /orders/export` for admins, listed first;
 * `read: GET /orders/*` for readers; `remove: DELETE /orders/*` for admins; no deny_unmatched) and
 * the operation that must decide each, or `invalid` (refused, `invalid_path`), or `service` (no
 * operation: the service's own rule). Shared by the per-entry test and the real-proxy test.
 */
export type Expect = 'read' | 'export' | 'invalid' | 'remove' | 'service';

/** [method, path as sent, roles of the caller, what must happen]. */
export const SPELLINGS: ReadonlyArray<readonly [string, string, readonly string[], Expect]> = [
  // The plain spellings, and harmless encodings that every reading sends to the same operation.
  ['GET', '/orders/42', ['reader'], 'read'],
  ['GET', '/orders/42/', ['reader'], 'read'],
  ['GET', '/orders/42?x=1', ['reader'], 'read'],
  ['GET', '/orders/4%32', ['reader'], 'read'],
  ['GET', '/orders/%34%32', ['reader'], 'read'],
  ['GET', '/orders/%7Ealice', ['reader'], 'read'],
  ['GET', '/orders/a%2Db%5fc', ['reader'], 'read'],
  ['GET', '/orders/42.json', ['reader'], 'read'],
  ['GET', '/orders/export', ['reader'], 'export'],
  ['GET', '/orders/export/', ['reader'], 'export'],
  ['GET', '/orders/export?format=csv', ['reader'], 'export'],
  // Encoded letters: the export handler to a decoding router, `read` to a raw one.
  ['GET', '/orders/%65xport', ['reader'], 'invalid'],
  ['GET', '/orders/%45xport', ['reader'], 'invalid'],
  ['GET', '/orders/expor%74', ['reader'], 'invalid'],
  ['GET', '/orders/%65%78%70%6f%72%74', ['reader'], 'invalid'],
  ['GET', '/orders/%65%78%70%6F%72%74', ['reader'], 'invalid'],
  ['GET', '/orders/exp%6Frt.csv', ['reader'], 'invalid'],
  // Case and format suffixes: the export handler to ASP.NET Core / Express, Rails / Spring.
  ['GET', '/orders/EXPORT', ['reader'], 'invalid'],
  ['GET', '/orders/Export', ['reader'], 'invalid'],
  ['GET', '/Orders/export', ['reader'], 'invalid'],
  ['GET', '/orders/export.json', ['reader'], 'invalid'],
  ['GET', '/orders/EXPORT.JSON', ['reader'], 'invalid'],
  // Encodings that are syntax, not data, to some servers.
  ['GET', '/orders/export.', ['reader'], 'invalid'],
  ['GET', '/orders/export%2e', ['reader'], 'invalid'],
  ['GET', '/orders/export%20', ['reader'], 'invalid'],
  ['GET', '/orders/export%09', ['reader'], 'invalid'],
  ['GET', '/orders/export%00', ['reader'], 'invalid'],
  ['GET', '/orders/export%3Bx', ['reader'], 'invalid'],
  ['GET', '/orders/export;x', ['reader'], 'invalid'],
  ['GET', '/orders/export%3f', ['reader'], 'invalid'],
  ['GET', '/orders/export%23', ['reader'], 'invalid'],
  ['GET', '/orders/export%40', ['reader'], 'invalid'],
  ['GET', '/orders/x/../export', ['reader'], 'invalid'],
  ['GET', '/orders/./export', ['reader'], 'invalid'],
  ['GET', '/orders/%2e/export', ['reader'], 'invalid'],
  ['GET', '/orders/x/%2E%2E/export', ['reader'], 'invalid'],
  ['GET', '/orders//export', ['reader'], 'invalid'],
  ['GET', '//orders/export', ['reader'], 'invalid'],
  ['GET', '/orders%2fexport', ['reader'], 'invalid'],
  ['GET', '/orders%2Fexport', ['reader'], 'invalid'],
  ['GET', '/orders%5cexport', ['reader'], 'invalid'],
  ['GET', '/orders/x/%252e%252e/export', ['reader'], 'invalid'],
  ['GET', '/orders/%2565xport', ['reader'], 'invalid'],
  ['GET', '/orders/x/%c0%ae%c0%ae/export', ['reader'], 'invalid'],
  ['GET', '/orders/x/%ef%bc%8e%ef%bc%8e/export', ['reader'], 'invalid'],
  ['GET', '/orders%ef%bc%8fexport', ['reader'], 'invalid'],
  ['GET', '/orders/%', ['reader'], 'invalid'],
  ['GET', '/orders/%6', ['reader'], 'invalid'],
  ['GET', '/orders/%zz', ['reader'], 'invalid'],
  // Methods: HEAD meets GET's operations; methods are case-sensitive; overrides are refused.
  ['HEAD', '/orders/42', [], 'read'],
  ['HEAD', '/orders/export', ['reader'], 'export'],
  ['get', '/orders/42', ['reader'], 'invalid'],
  ['Delete', '/orders/42', ['reader'], 'invalid'],
  ['DELETE', '/orders/42', ['reader'], 'remove'],
  ['POST', '/orders/42?_method=DELETE', ['reader'], 'invalid'],
  ['POST', '/orders/42', ['reader'], 'service'],
];
