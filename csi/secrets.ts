/**
 * CSI secrets → Keystone credentials, in Manila CSI's key names (os-authURL, os-region, and either
 * os-applicationCredentialID|Name + os-applicationCredentialSecret or os-userName|os-userID +
 * os-password with os-projectName|os-projectID and the domain keys). The values never leave this
 * module except inside the Credentials object; nothing here logs.
 */
import type { Credentials, DomainRef } from '../cli/client/index.ts';
import { invalidArgument } from './errors.ts';
import type { Dict } from './types.ts';

export interface SecretCredentials {
  credentials: Credentials;
  region: string | null;
}

const domain = (id?: string, name?: string): DomainRef | undefined =>
  id ? { id } : name ? { name } : undefined;

/** The credentials in `secrets`; InvalidArgument naming the missing key when they are incomplete. */
export function credentialsFromSecrets(secrets: Dict, rpc: string): SecretCredentials {
  const s = (k: string) => (secrets[k] ?? '').trim() || undefined;
  if (Object.keys(secrets).length === 0)
    throw invalidArgument(
      `${rpc}: no secrets were passed; the StorageClass must name a Secret with os-authURL and credentials (csi.storage.k8s.io/*-secret-name)`,
    );
  const authUrl = s('os-authURL');
  if (!authUrl) throw invalidArgument(`${rpc}: the secrets have no os-authURL`);
  const region = s('os-region') ?? null;
  const userDomain = domain(
    s('os-userDomainID') ?? s('os-domainID'),
    s('os-userDomainName') ?? s('os-domainName'),
  );
  const appId = s('os-applicationCredentialID');
  const appName = s('os-applicationCredentialName');
  if (appId || appName) {
    const secret = s('os-applicationCredentialSecret');
    if (!secret) throw invalidArgument(`${rpc}: the secrets have no os-applicationCredentialSecret`);
    return {
      region,
      credentials: {
        type: 'application_credential',
        authUrl,
        id: appId,
        name: appId ? undefined : appName,
        username: s('os-userName'),
        userId: s('os-userID'),
        userDomain,
        secret,
      },
    };
  }
  const username = s('os-userName');
  const userId = s('os-userID');
  if (!username && !userId)
    throw invalidArgument(
      `${rpc}: the secrets hold neither an application credential (os-applicationCredentialID + os-applicationCredentialSecret) nor a user (os-userName or os-userID + os-password)`,
    );
  const password = s('os-password');
  if (!password) throw invalidArgument(`${rpc}: the secrets have no os-password`);
  const projectId = s('os-projectID');
  const projectName = s('os-projectName');
  if (!projectId && !projectName)
    throw invalidArgument(`${rpc}: the secrets have no os-projectName or os-projectID`);
  return {
    region,
    credentials: {
      type: 'password',
      authUrl,
      username,
      userId,
      userDomain,
      password,
      project: {
        id: projectId,
        name: projectId ? undefined : projectName,
        domain: domain(
          s('os-projectDomainID') ?? s('os-domainID'),
          s('os-projectDomainName') ?? s('os-domainName'),
        ),
      },
    },
  };
}

/**
 * The same credentials as the abaca CLI's OS_* environment, for the `abaca mount` process the node
 * plugin starts (its environment is readable by root only, like the Secret on the node).
 */
export function credentialsEnv(c: SecretCredentials): Dict {
  const env: Dict = { OS_AUTH_URL: c.credentials.type === 'token' ? '' : (c.credentials.authUrl ?? '') };
  if (c.region) env.OS_REGION_NAME = c.region;
  const cr = c.credentials;
  const dom = (prefix: string, d: DomainRef | undefined) => {
    if (d?.id) env[`${prefix}_ID`] = d.id;
    else if (d?.name) env[`${prefix}_NAME`] = d.name;
  };
  if (cr.type === 'application_credential') {
    env.OS_AUTH_TYPE = 'v3applicationcredential';
    if (cr.id) env.OS_APPLICATION_CREDENTIAL_ID = cr.id;
    if (cr.name) env.OS_APPLICATION_CREDENTIAL_NAME = cr.name;
    env.OS_APPLICATION_CREDENTIAL_SECRET = cr.secret;
    if (cr.username) env.OS_USERNAME = cr.username;
    if (cr.userId) env.OS_USER_ID = cr.userId;
    dom('OS_USER_DOMAIN', cr.userDomain);
  } else if (cr.type === 'password') {
    env.OS_AUTH_TYPE = 'password';
    if (cr.username) env.OS_USERNAME = cr.username;
    if (cr.userId) env.OS_USER_ID = cr.userId;
    env.OS_PASSWORD = cr.password;
    dom('OS_USER_DOMAIN', cr.userDomain);
    if (cr.project?.id) env.OS_PROJECT_ID = cr.project.id;
    if (cr.project?.name) env.OS_PROJECT_NAME = cr.project.name;
    dom('OS_PROJECT_DOMAIN', cr.project?.domain);
  }
  return env;
}
