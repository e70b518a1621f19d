/** The Keystone v3 calls an operator needs to onboard a tenant, over a Session. */
import { AmbiguousName, ApiError, ResourceNotFound } from './errors.ts';
import type { Query } from './http.ts';
import type { Session } from './session.ts';
import type {
  ApplicationCredential,
  Domain,
  Project,
  Role,
  RoleAssignment,
  TokenBody,
  User,
} from './types.ts';

export interface CreateProjectInput {
  name: string;
  domain_id?: string;
  description?: string;
  enabled?: boolean;
  [extra: string]: unknown;
}

export interface CreateUserInput {
  name: string;
  domain_id?: string;
  password?: string;
  default_project_id?: string;
  enabled?: boolean;
  [extra: string]: unknown;
}

export interface CreateApplicationCredentialInput {
  name: string;
  secret?: string;
  description?: string;
  expires_at?: string;
  roles?: Array<{ id?: string; name?: string }>;
  unrestricted?: boolean;
}

export class IdentityClient {
  constructor(readonly session: Session) {}

  private async call<T>(
    method: string,
    path: string,
    opts: { query?: Query; body?: unknown } = {},
  ): Promise<T> {
    return (await this.session.request<T>('identity', method, path, opts)).body;
  }

  /**
   * `GET /<kind>/<x>`, then `GET /<kind>?name=<x>` when that is a 404 (how OSC resolves a name or
   * an id). Other errors (a 403 for a non-admin) are the caller's to handle.
   */
  private async find<T extends { id: string; name: string }>(
    kind: 'projects' | 'users' | 'roles' | 'domains',
    singular: string,
    nameOrId: string,
    query: Query = {},
  ): Promise<T> {
    try {
      return (await this.call<Record<string, T>>('GET', `/${kind}/${encodeURIComponent(nameOrId)}`))[
        singular
      ] as T;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
    const rows = (
      await this.call<Record<string, T[]>>('GET', `/${kind}`, { query: { ...query, name: nameOrId } })
    )[kind] as T[];
    if (rows.length === 0)
      throw new ResourceNotFound(`No ${singular} with a name or ID of '${nameOrId}' exists.`);
    if (rows.length > 1)
      throw new AmbiguousName(`More than one ${singular} exists with the name '${nameOrId}'; use its ID.`);
    return rows[0]!;
  }

  // ---- tokens ----

  async validateToken(token: string): Promise<TokenBody> {
    return (
      await this.session.request<TokenBody>('identity', 'GET', '/auth/tokens', {
        headers: { 'X-Subject-Token': token },
      })
    ).body;
  }
  async revokeToken(token: string): Promise<void> {
    await this.session.request('identity', 'DELETE', '/auth/tokens', {
      headers: { 'X-Subject-Token': token },
    });
  }

  // ---- domains ----

  findDomain(nameOrId: string): Promise<Domain> {
    return this.find<Domain>('domains', 'domain', nameOrId);
  }

  // ---- projects ----

  async listProjects(query: { name?: string; domain_id?: string } = {}): Promise<Project[]> {
    return (await this.call<{ projects: Project[] }>('GET', '/projects', { query })).projects;
  }
  async listUserProjects(userId: string): Promise<Project[]> {
    return (await this.call<{ projects: Project[] }>('GET', `/users/${encodeURIComponent(userId)}/projects`))
      .projects;
  }
  findProject(nameOrId: string, domainId?: string): Promise<Project> {
    return this.find<Project>('projects', 'project', nameOrId, { domain_id: domainId });
  }
  async createProject(input: CreateProjectInput): Promise<Project> {
    return (await this.call<{ project: Project }>('POST', '/projects', { body: { project: input } })).project;
  }

  // ---- users ----

  async listUsers(query: { name?: string; domain_id?: string } = {}): Promise<User[]> {
    return (await this.call<{ users: User[] }>('GET', '/users', { query })).users;
  }
  findUser(nameOrId: string, domainId?: string): Promise<User> {
    return this.find<User>('users', 'user', nameOrId, { domain_id: domainId });
  }
  async createUser(input: CreateUserInput): Promise<User> {
    return (await this.call<{ user: User }>('POST', '/users', { body: { user: input } })).user;
  }

  // ---- roles ----

  async listRoles(query: { name?: string } = {}): Promise<Role[]> {
    return (await this.call<{ roles: Role[] }>('GET', '/roles', { query })).roles;
  }
  findRole(nameOrId: string): Promise<Role> {
    return this.find<Role>('roles', 'role', nameOrId);
  }
  async grantProjectRole(projectId: string, userId: string, roleId: string): Promise<void> {
    const p = encodeURIComponent;
    await this.call('PUT', `/projects/${p(projectId)}/users/${p(userId)}/roles/${p(roleId)}`);
  }
  async listRoleAssignments(query: Query = {}): Promise<RoleAssignment[]> {
    return (await this.call<{ role_assignments: RoleAssignment[] }>('GET', '/role_assignments', { query }))
      .role_assignments;
  }

  // ---- application credentials ----

  async createApplicationCredential(
    userId: string,
    input: CreateApplicationCredentialInput,
  ): Promise<ApplicationCredential> {
    return (
      await this.call<{ application_credential: ApplicationCredential }>(
        'POST',
        `/users/${encodeURIComponent(userId)}/application_credentials`,
        { body: { application_credential: input } },
      )
    ).application_credential;
  }
  async listApplicationCredentials(userId: string): Promise<ApplicationCredential[]> {
    return (
      await this.call<{ application_credentials: ApplicationCredential[] }>(
        'GET',
        `/users/${encodeURIComponent(userId)}/application_credentials`,
      )
    ).application_credentials;
  }
  async findApplicationCredential(userId: string, nameOrId: string): Promise<ApplicationCredential> {
    const base = `/users/${encodeURIComponent(userId)}/application_credentials`;
    try {
      return (
        await this.call<{ application_credential: ApplicationCredential }>(
          'GET',
          `${base}/${encodeURIComponent(nameOrId)}`,
        )
      ).application_credential;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
    const rows = (
      await this.call<{ application_credentials: ApplicationCredential[] }>('GET', base, {
        query: { name: nameOrId },
      })
    ).application_credentials;
    if (rows.length !== 1)
      throw new ResourceNotFound(`No application credential with a name or ID of '${nameOrId}' exists.`);
    return rows[0]!;
  }
  async deleteApplicationCredential(userId: string, id: string): Promise<void> {
    await this.call(
      'DELETE',
      `/users/${encodeURIComponent(userId)}/application_credentials/${encodeURIComponent(id)}`,
    );
  }
}
