/**
 * deploy/: every overlay renders with `kubectl kustomize` (Debian's kubernetes-client, whose
 * built-in kustomize is old, so the manifests keep to what both old and new kustomize read), and
 * every object validates against the Kubernetes API schemas (kubernetes-models; the
 * VolumeSnapshotClass, a CRD, is checked field by field). Then what a cluster would only show at
 * run time: names that refer to each other match, the node plugin can mount, the controller has
 * its sidecars, the demo runs PGlite in one process and production runs PostgreSQL.
 * There is no cluster here: this and test/csi/e2e.test.ts stand in for one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../helpers/process.ts';

const KUBECTL = process.env.KUBECTL ?? 'kubectl';

function kubectlSkip(): string | false {
  const r = spawnSync(KUBECTL, ['version', '--client'], { encoding: 'utf8' });
  if (!r.error && r.status === 0) return false;
  if (process.env.CI) throw new Error('kubectl is missing in CI: .ci/run must install kubernetes-client');
  return 'needs kubectl (apt-get install kubernetes-client)';
}
const skip = kubectlSkip();

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests, checked field by field below
type Obj = any;

function render(overlay: string): Obj[] {
  const dir = path.join(REPO_ROOT, 'deploy/overlays', overlay);
  const r = spawnSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8', maxBuffer: 16 << 20 });
  assert.equal(r.status, 0, `kubectl kustomize ${overlay}: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS())
    .filter(Boolean);
}

/** The kubernetes-models class for an object, by apiVersion and kind. */
async function validate(o: Obj): Promise<void> {
  const where = `${o.kind} ${o.metadata?.name}`;
  if (o.apiVersion === 'snapshot.storage.k8s.io/v1' && o.kind === 'VolumeSnapshotClass') {
    assert.equal(typeof o.driver, 'string', `${where}: driver`);
    assert.ok(['Delete', 'Retain'].includes(o.deletionPolicy), `${where}: deletionPolicy`);
    for (const [k, v] of Object.entries(o.parameters ?? {}))
      assert.equal(typeof v, 'string', `${where}: ${k}`);
    return;
  }
  const module = `kubernetes-models/${o.apiVersion}/${o.kind}`;
  const mod = (await import(module)) as Record<string, new (o: Obj) => { validate(): void }>;
  const Model = mod[o.kind];
  assert.ok(Model, `no schema for ${o.apiVersion} ${o.kind}`);
  try {
    new Model(o).validate();
  } catch (err) {
    assert.fail(`${where} does not validate: ${(err as Error).message}`);
  }
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'CSIDriver',
  'StorageClass',
  'VolumeSnapshotClass',
  'ClusterRole',
  'ClusterRoleBinding',
]);

/** `ownSecrets`: the overlay generates its Secrets (the demo) rather than leaving them to the operator. */
function checkConsistency(objs: Obj[], ownSecrets: boolean): void {
  const find = (kind: string, name: string) => objs.find((o) => o.kind === kind && o.metadata.name === name);
  const all = (kind: string) => objs.filter((o) => o.kind === kind);
  for (const o of objs) {
    if (CLUSTER_SCOPED.has(o.kind))
      assert.equal(o.metadata.namespace, undefined, `${o.kind} is cluster-scoped`);
    else assert.equal(o.metadata.namespace, 'abaca-system', `${o.kind} ${o.metadata.name} namespace`);
  }
  const driver = find('CSIDriver', 'csi.abaca.io');
  assert.ok(driver, 'the CSIDriver');
  assert.equal(driver.spec.attachRequired, true, 'publish grants the access rule: attach is required');
  const sc = find('StorageClass', 'abaca');
  assert.equal(sc.provisioner, 'csi.abaca.io');
  assert.equal(sc.allowVolumeExpansion, true);
  assert.equal(find('VolumeSnapshotClass', 'abaca').driver, 'csi.abaca.io');
  // Every Secret a class names exists, in its namespace.
  for (const params of [sc.parameters, find('VolumeSnapshotClass', 'abaca').parameters])
    for (const [k, v] of Object.entries(params as Record<string, string>))
      if (k.endsWith('-secret-name')) {
        const ns = params[k.replace(/-name$/, '-namespace')];
        assert.equal(ns, 'abaca-system', k);
        if (ownSecrets) assert.ok(find('Secret', v), `Secret ${v}`);
      }

  const pods = [...all('Deployment'), ...all('StatefulSet'), ...all('DaemonSet')];
  for (const w of pods) {
    const spec = w.spec.template.spec;
    const labels = w.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(w.spec.selector.matchLabels))
      assert.equal(labels[k], v, `${w.metadata.name} selector`);
    if (spec.serviceAccountName)
      assert.ok(find('ServiceAccount', spec.serviceAccountName), spec.serviceAccountName);
    for (const c of spec.containers) {
      assert.ok(c.image, `${w.metadata.name}/${c.name} image`);
      for (const m of c.volumeMounts ?? [])
        assert.ok(
          spec.volumes?.some((v: Obj) => v.name === m.name) ||
            w.spec.volumeClaimTemplates?.some((t: Obj) => t.metadata.name === m.name),
          `${w.metadata.name}/${c.name} mounts ${m.name}`,
        );
    }
  }
  const ctl = find('Deployment', 'abaca-csi-controller').spec.template.spec;
  assert.deepEqual(ctl.containers.map((c: Obj) => c.name).sort(), [
    'abaca-csi',
    'csi-attacher',
    'csi-provisioner',
    'csi-resizer',
    'csi-snapshotter',
  ]);
  const plugin = ctl.containers.find((c: Obj) => c.name === 'abaca-csi');
  assert.ok(plugin.args.includes('--mode=controller'));
  assert.ok(plugin.args.includes('--driver-name=csi.abaca.io'));
  assert.equal(ctl.volumes.find((v: Obj) => v.name === 'secrets').secret.secretName, 'abaca-csi-secrets');
  assert.ok(
    ctl.containers.find((c: Obj) => c.name === 'csi-provisioner').args.includes('--extra-create-metadata'),
  );

  const node = find('DaemonSet', 'abaca-csi-node').spec.template.spec;
  assert.equal(node.hostNetwork, true, 'mounts come from the node address');
  const nc = node.containers.find((c: Obj) => c.name === 'abaca-csi');
  assert.equal(nc.securityContext.privileged, true);
  assert.equal(
    nc.volumeMounts.find((m: Obj) => m.mountPath === '/var/lib/kubelet').mountPropagation,
    'Bidirectional',
  );
  assert.ok(nc.args.includes('--node-ip=$(NODE_IP)'));
  assert.equal(nc.env.find((e: Obj) => e.name === 'NODE_IP').valueFrom.fieldRef.fieldPath, 'status.hostIP');
  const reg = node.containers.find((c: Obj) => c.name === 'node-driver-registrar');
  assert.ok(reg.args.includes('--kubelet-registration-path=/var/lib/kubelet/plugins/csi.abaca.io/csi.sock'));

  const bricks = find('StatefulSet', 'abaca-brick');
  assert.ok(bricks.spec.volumeClaimTemplates.length === 1, 'a PVC per brick');
  assert.ok(bricks.spec.template.spec.topologySpreadConstraints.length >= 1);
  assert.ok(find('Service', 'abaca-brick'), 'the bricks’ headless service');
  assert.ok(find('Service', 'abaca-api') && find('Service', 'abaca-share-server'));
}

const envOf = (objs: Obj[], deployment: string, name: string) =>
  objs
    .find((o) => o.kind === 'Deployment' && o.metadata.name === deployment)
    .spec.template.spec.containers[0].env.find((e: Obj) => e.name === name);

test('the demo overlay: renders, validates, one API process on PGlite with its data on a PVC', {
  skip,
  timeout: 120_000,
}, async () => {
  const objs = render('demo');
  for (const o of objs) await validate(o);
  checkConsistency(objs, true);
  const api = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'abaca-api');
  assert.equal(api.spec.replicas, 1);
  assert.equal(envOf(objs, 'abaca-api', 'DATABASE_URL'), undefined, 'PGlite: no DATABASE_URL');
  assert.equal(api.spec.template.spec.volumes[0].persistentVolumeClaim.claimName, 'abaca-api-data');
  assert.ok(objs.find((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === 'abaca-api-data'));
  const secret = objs.find((o) => o.kind === 'Secret' && o.metadata.name === 'abaca-csi-secrets');
  assert.deepEqual(Object.keys(secret.data).sort(), [
    'os-authURL',
    'os-domainName',
    'os-password',
    'os-projectName',
    'os-region',
    'os-userName',
  ]);
  const spread = objs.find((o) => o.kind === 'StatefulSet').spec.template.spec.topologySpreadConstraints;
  assert.deepEqual(
    spread.map((c: Obj) => c.whenUnsatisfiable),
    ['ScheduleAnyway'],
    'three bricks may share the node',
  );
});

test('the production overlay: renders, validates, PostgreSQL from a Secret, bricks over zones, HA controller', {
  skip,
  timeout: 120_000,
}, async () => {
  const objs = render('production');
  for (const o of objs) await validate(o);
  checkConsistency(objs, false);
  const api = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'abaca-api');
  assert.ok(api.spec.replicas > 1);
  assert.deepEqual(envOf(objs, 'abaca-api', 'DATABASE_URL').valueFrom.secretKeyRef, {
    name: 'abaca-db',
    key: 'DATABASE_URL',
  });
  assert.equal(
    objs.filter((o) => o.kind === 'Secret').length,
    0,
    'production secrets are the operator’s, not in git',
  );
  const spread = objs.find((o) => o.kind === 'StatefulSet').spec.template.spec.topologySpreadConstraints;
  assert.ok(
    spread.some(
      (c: Obj) => c.topologyKey === 'topology.kubernetes.io/zone' && c.whenUnsatisfiable === 'DoNotSchedule',
    ),
  );
  assert.equal(
    objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'abaca-csi-controller').spec.replicas,
    2,
  );
  const sc = objs.find((o) => o.kind === 'StorageClass');
  assert.equal(sc.allowedTopologies[0].matchLabelExpressions[0].key, 'topology.abaca.io/zone');
  for (const o of objs.filter((x) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(x.kind)))
    for (const c of o.spec.template.spec.containers)
      if (!c.image.startsWith('registry.k8s.io/')) assert.equal(c.image, 'registry.example.com/abaca:0.1.0');
});
