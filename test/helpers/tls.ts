/** Test certificates made by scripts/tls-certs.sh (the operators' script) in a temp dir. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './process.ts';

export interface TestPki {
  dir: string;
  /** The cluster CA and a certificate it signed (IP SANs 127.0.0.1 and ::1, DNS localhost). */
  ca: string;
  cert: string;
  key: string;
  /** Another CA, and a certificate it signed: what a stranger holds. */
  otherCa: string;
  otherCert: string;
  otherKey: string;
  /** ABACA_CLUSTER_* for a process of the cluster. */
  clusterEnv: Record<string, string>;
  remove(): void;
}

export function makeTestPki(prefix = 'abaca-tls-'): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const script = path.join(REPO_ROOT, 'scripts', 'tls-certs.sh');
  execFileSync('sh', [script, path.join(dir, 'cluster'), 'node'], { stdio: 'pipe' });
  execFileSync('sh', [script, path.join(dir, 'other'), 'node'], { stdio: 'pipe' });
  const f = (ca: string, name: string) => path.join(dir, ca, name);
  const pki = {
    dir,
    ca: f('cluster', 'ca.pem'),
    cert: f('cluster', 'node.pem'),
    key: f('cluster', 'node-key.pem'),
    otherCa: f('other', 'ca.pem'),
    otherCert: f('other', 'node.pem'),
    otherKey: f('other', 'node-key.pem'),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
  return {
    ...pki,
    clusterEnv: { ABACA_CLUSTER_CA: pki.ca, ABACA_CLUSTER_CERT: pki.cert, ABACA_CLUSTER_KEY: pki.key },
  };
}
