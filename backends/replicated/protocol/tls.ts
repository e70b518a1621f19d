/**
 * Cluster TLS for the native protocol (docs/tls.md): one private CA for the cluster, read from the
 * environment by every process that speaks the protocol — bricks, share servers, the backend
 * driver and the mount client.
 *
 *   ABACA_CLUSTER_CA    PEM file: the cluster CA; peers are verified against it alone
 *   ABACA_CLUSTER_CERT  PEM file: this process's certificate, signed by the cluster CA
 *   ABACA_CLUSTER_KEY   PEM file: its private key
 *
 * Peers are verified by their certificate chain up to the cluster CA, not by host name or address:
 * the CA signs cluster members only, so a certificate it signed is what makes a peer a member
 * (GlusterFS's management TLS works the same way). Bricks are addressed by IP and move between
 * addresses (solo mode, rescheduled pods), which a name check would turn into certificate churn.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { ReplicatedError } from './errors.ts';

export interface ClusterTls {
  ca: Buffer;
  /** This process's certificate and key; a mount client may have none. */
  cert?: Buffer;
  key?: Buffer;
  /** The files they came from (for messages and for passing to child processes). */
  files: { ca: string; cert?: string; key?: string };
}

export const CLUSTER_TLS_ENV = ['ABACA_CLUSTER_CA', 'ABACA_CLUSTER_CERT', 'ABACA_CLUSTER_KEY'] as const;

/**
 * The cluster TLS settings of this environment, or undefined when ABACA_CLUSTER_CA is not set
 * (plaintext). `needCert`: a brick or share server, which serves TLS and so must have a
 * certificate and key; a mount client may go without (tokens authorise it). Throws an Error with
 * a message naming the variable when a setting is incomplete or a file cannot be read.
 */
export function clusterTlsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  needCert = true,
): ClusterTls | undefined {
  const caFile = env['ABACA_CLUSTER_CA'] || undefined;
  const certFile = env['ABACA_CLUSTER_CERT'] || undefined;
  const keyFile = env['ABACA_CLUSTER_KEY'] || undefined;
  if (!caFile) {
    if (certFile || keyFile)
      throw new Error('ABACA_CLUSTER_CERT and ABACA_CLUSTER_KEY need ABACA_CLUSTER_CA (the cluster CA) too');
    return undefined;
  }
  if (!certFile !== !keyFile)
    throw new Error('ABACA_CLUSTER_CERT and ABACA_CLUSTER_KEY go together: set both or neither');
  if (needCert && !certFile)
    throw new Error(
      'with ABACA_CLUSTER_CA set, a brick or share server needs ABACA_CLUSTER_CERT and ABACA_CLUSTER_KEY',
    );
  const read = (name: string, file: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`${name}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  return {
    ca: read('ABACA_CLUSTER_CA', caFile),
    cert: certFile ? read('ABACA_CLUSTER_CERT', certFile) : undefined,
    key: keyFile ? read('ABACA_CLUSTER_KEY', keyFile) : undefined,
    files: {
      ca: path.resolve(caFile),
      cert: certFile && path.resolve(certFile),
      key: keyFile && path.resolve(keyFile),
    },
  };
}

/** The settings as environment variables with absolute paths (for child processes). */
export function clusterTlsEnv(t: ClusterTls | undefined): Record<string, string> {
  if (!t) return {};
  const env: Record<string, string> = { ABACA_CLUSTER_CA: t.files.ca };
  if (t.files.cert && t.files.key) {
    env['ABACA_CLUSTER_CERT'] = t.files.cert;
    env['ABACA_CLUSTER_KEY'] = t.files.key;
  }
  return env;
}

/**
 * How a server treats client certificates. `required` (bricks): only peers with a certificate of
 * the cluster CA get past the handshake. `optional` (share servers): a client may present none
 * (a mount authorised by its token), but one that presents a certificate the CA did not sign is
 * refused at the handshake too.
 */
export type ClientCerts = 'required' | 'optional';

/**
 * A server for `onConnection`: plain TCP without TLS settings, else TLS with the cluster CA
 * (TLS 1.2 at least). With TLS a plaintext client never reaches `onConnection`: its bytes are not
 * a TLS handshake, and the connection is closed. A plain TCP connection comes paused, with
 * `paused` true, for serveSocket's readInPlace to take over.
 */
export function createProtocolServer(
  t: ClusterTls | undefined,
  clientCerts: ClientCerts,
  onConnection: (sock: net.Socket, paused: boolean) => void,
): net.Server {
  if (!t) return net.createServer({ pauseOnConnect: true }, (sock) => onConnection(sock, true));
  if (!t.cert || !t.key) throw new Error('a TLS server needs ABACA_CLUSTER_CERT and ABACA_CLUSTER_KEY');
  const srv = tls.createServer(
    {
      ca: t.ca,
      cert: t.cert,
      key: t.key,
      minVersion: 'TLSv1.2',
      requestCert: true,
      rejectUnauthorized: clientCerts === 'required',
    },
    (sock) => {
      if (clientCerts === 'optional' && !sock.authorized && presentedCert(sock)) {
        sock.destroy();
        return;
      }
      onConnection(sock, false);
    },
  );
  // A failed handshake (plaintext, wrong CA, no certificate) only closes that connection.
  srv.on('tlsClientError', () => {});
  return srv;
}

/** Whether the peer of a TLS connection presented a certificate. */
function presentedCert(sock: tls.TLSSocket): boolean {
  return Object.keys(sock.getPeerCertificate()).length > 0;
}

/**
 * Whether the peer of a server-side connection holds a certificate of the cluster CA: always
 * true without TLS (nothing to check), false for a TLS client that presented none.
 */
export function peerIsClusterMember(sock: net.Socket, t: ClusterTls | undefined): boolean {
  if (!t) return true;
  return sock instanceof tls.TLSSocket && sock.authorized;
}

/** Bytes a plaintext connection reads at once into its one reused buffer (see connectSocket). */
const READ_BUFFER = 256 * 1024;

/**
 * Opens a connection: TCP, or TLS verified against the cluster CA. Resolves once the connection
 * (and handshake) is up; a TLS failure rejects with ENOTCONN and OpenSSL's reason. `onChunk`, for
 * a plaintext one: the socket reads into one reused buffer and hands each read to it (valid only
 * during the call) instead of emitting 'data' with memory allocated for every read.
 */
export function connectSocket(
  host: string,
  port: number,
  timeoutMs: number,
  t: ClusterTls | undefined,
  onChunk?: (chunk: Buffer) => void,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = t
      ? tls.connect({
          host,
          port,
          ca: t.ca,
          cert: t.cert,
          key: t.key,
          minVersion: 'TLSv1.2',
          // The chain is what is verified (see the top of this file), not the name or address.
          checkServerIdentity: () => undefined,
        })
      : onChunk
        ? net.connect({
            host,
            port,
            onread: {
              buffer: Buffer.allocUnsafeSlow(READ_BUFFER),
              callback: (n: number, buf: Buffer) => {
                onChunk(buf.subarray(0, n));
                return true;
              },
            },
          })
        : net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ReplicatedError('ETIMEDOUT', `connect ${host}:${port}`));
    }, timeoutMs);
    socket.once(t ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new ReplicatedError('ENOTCONN', `${host}:${port}: ${describe(err, t)}`));
    });
  });
}

function describe(err: Error, t: ClusterTls | undefined): string {
  const m = err.message;
  if (t && /wrong version number|packet length too long|unexpected eof|ECONNRESET/i.test(m))
    return `${m} (is the peer speaking TLS? with ABACA_CLUSTER_CA set, every brick and share server must)`;
  if (t && /self[- ]signed|unable to (get|verify)|certificate/i.test(m))
    return `${m} (the peer's certificate is not signed by the cluster CA ${t.files.ca})`;
  return m;
}
