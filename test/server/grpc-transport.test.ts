import assert from 'node:assert/strict';
import { type ClientHttp2Session, connect } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { CONNECTION_RECEIVE_WINDOW } from '../../src/server/grpc-server.js';
import { type Harness, startHarness } from '../helpers/harness.js';

/** Resolves once the server's SETTINGS and anything it sent before a PING answer have arrived. */
function settled(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    session.once('error', reject);
    const ping = (): void => {
      session.ping((error) => (error ? reject(error) : resolve()));
    };
    if (session.remoteSettings === undefined || session.connecting)
      session.once('remoteSettings', ping);
    else ping();
  });
}

describe('gRPC transport', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.stop());

  it("opens each connection with a receive window of CONNECTION_RECEIVE_WINDOW, not nghttp2's 64 KiB", async () => {
    // A dozen 20 KB depth-8 Checks in flight on one Envoy connection must not wait for WINDOW_UPDATEs.
    assert.ok(CONNECTION_RECEIVE_WINDOW >= 1024 * 1024);
    for (let i = 0; i < 2; i++) {
      const session = connect(`http://127.0.0.1:${h.service.grpcPort}`);
      try {
        await settled(session);
        assert.equal(
          session.state.remoteWindowSize,
          CONNECTION_RECEIVE_WINDOW,
          `connection ${i + 1}`,
        );
      } finally {
        session.destroy();
      }
    }
  });
});
