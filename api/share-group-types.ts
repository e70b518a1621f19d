import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { InvalidInput } from '../services/errors.ts';
import { parseBool } from '../services/extra-specs.ts';
import { parseDictLiteral } from '../services/python-literal.ts';
import type { ShareGroupTypeService } from '../services/share-group-types.ts';
import { atLeast } from './middleware/microversion.ts';
import { shareGroupsVersion } from './middleware/share-groups-version.ts';
import { Bool, parse } from './validation.ts';
import * as view from './views/share-group-types.ts';

/** Manila: "Group specs keys and values should be strings." */
const GroupSpecs = z.record(z.string().min(1).max(255), z.string({ error: 'must be a string' }).max(255), {
  error: 'must be an object of string keys and string values',
});

const CreateBody = z.object({
  share_group_type: z.object({
    name: z
      .string({ error: 'is required (a share group type name of 1 to 255 characters)' })
      .min(1, 'must not be empty')
      .max(255, 'must be at most 255 characters'),
    share_types: z
      .array(z.string().min(1).max(255), { error: 'must list the supported share types (ids or names)' })
      .min(1, 'must list at least one share type'),
    group_specs: GroupSpecs.nullish(),
    is_public: Bool.optional(),
  }),
});
const SpecsBody = z.object({ group_specs: GroupSpecs });
const Project = z.object({ project: z.string({ error: 'is required' }).max(255) });
const AccessAction = z.union(
  [z.object({ addProjectAccess: Project }).strict(), z.object({ removeProjectAccess: Project }).strict()],
  { error: 'expected {"addProjectAccess": {"project": …}} or {"removeProjectAccess": {"project": …}}' },
);
const ListQuery = z
  .object({ is_public: z.string().max(16).optional(), group_specs: z.string().max(4096).optional() })
  .loose();

const groupsVersion = shareGroupsVersion;

export function shareGroupTypesRouter(types: ShareGroupTypeService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/share-group-types' });
  const list: Middleware = async (ctx) => {
    const q = parse(ListQuery, ctx.query, 'query');
    if (q.group_specs !== undefined && !atLeast(ctx.state.microversion, '2.66'))
      throw new InvalidInput(
        "Filter by 'group_specs' is not supported by this microversion. Use 2.66 or greater microversion to be able to use filter search by 'group_specs'.",
      );
    const isPublic =
      q.is_public === undefined
        ? undefined
        : q.is_public.toLowerCase() === 'all'
          ? 'all'
          : parseBool(q.is_public, 'is_public');
    const specs = q.group_specs ? parseDictLiteral(q.group_specs, 'group_specs') : {};
    const rows = await types.list(ctx.state.auth, isPublic, specs);
    ctx.body = { share_group_types: rows.map((t) => view.shareGroupType(t, ctx.state.microversion)) };
  };
  r.get('/', auth, groupsVersion, list);
  r.get('/detail', auth, groupsVersion, list);
  r.get('/default', auth, groupsVersion, async (ctx) => {
    await types.getDefault(ctx.state.auth);
  });
  r.get('/:id', auth, groupsVersion, async (ctx) => {
    const t = await types.get(ctx.state.auth, ctx.params.id!);
    ctx.body = { share_group_type: view.shareGroupType(t, ctx.state.microversion) };
  });
  r.post('/', auth, groupsVersion, async (ctx) => {
    const { share_group_type: b } = parse(CreateBody, ctx.request.body);
    const t = await types.create(ctx.state.auth, {
      name: b.name,
      shareTypes: b.share_types,
      groupSpecs: b.group_specs ?? {},
      isPublic: b.is_public ?? true,
    });
    ctx.body = { share_group_type: view.shareGroupType(t, ctx.state.microversion) };
  });
  r.delete('/:id', auth, groupsVersion, async (ctx) => {
    await types.delete(ctx.state.auth, ctx.params.id!);
    ctx.status = 204;
  });

  r.get('/:id/access', auth, groupsVersion, async (ctx) => {
    const projects = await types.listAccess(ctx.state.auth, ctx.params.id!);
    ctx.body = {
      share_group_type_access: projects.map((p) => ({ share_group_type_id: ctx.params.id, project_id: p })),
    };
  });
  r.post('/:id/action', auth, groupsVersion, async (ctx) => {
    const action = parse(AccessAction, ctx.request.body);
    if ('addProjectAccess' in action)
      await types.addAccess(ctx.state.auth, ctx.params.id!, action.addProjectAccess.project);
    else await types.removeAccess(ctx.state.auth, ctx.params.id!, action.removeProjectAccess.project);
    ctx.status = 202;
  });

  r.get('/:id/group-specs', auth, groupsVersion, async (ctx) => {
    ctx.body = { group_specs: await types.listSpecs(ctx.state.auth, ctx.params.id!) };
  });
  r.post('/:id/group-specs', auth, groupsVersion, async (ctx) => {
    const { group_specs } = parse(SpecsBody, ctx.request.body);
    ctx.body = { group_specs: await types.setSpecs(ctx.state.auth, ctx.params.id!, group_specs) };
  });
  r.get('/:id/group-specs/:key', auth, groupsVersion, async (ctx) => {
    const value = await types.getSpec(ctx.state.auth, ctx.params.id!, ctx.params.key!);
    ctx.body = { [ctx.params.key!]: value };
  });
  r.put('/:id/group-specs/:key', auth, groupsVersion, async (ctx) => {
    const body = parse(GroupSpecs, ctx.request.body);
    const keys = Object.keys(body);
    if (keys.length !== 1 || keys[0] !== ctx.params.key)
      throw new InvalidInput(`The body must hold exactly one spec, keyed '${ctx.params.key}' as in the URL.`);
    ctx.body = await types.setSpecs(ctx.state.auth, ctx.params.id!, body);
  });
  r.delete('/:id/group-specs/:key', auth, groupsVersion, async (ctx) => {
    await types.deleteSpec(ctx.state.auth, ctx.params.id!, ctx.params.key!);
    ctx.status = 204;
  });
  return r;
}
