import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { InvalidInput, NotFound } from '../services/errors.ts';
import { AZ_SPEC, parseBool, typeZones } from '../services/extra-specs.ts';
import { requireReader } from '../services/policy.ts';
import { parseDictLiteral } from '../services/python-literal.ts';
import type { ShareTypeService } from '../services/share-types.ts';
import { atLeast } from './middleware/microversion.ts';
import { Description, Name, parse } from './validation.ts';
import * as view from './views/share-types.ts';

const SpecValue = z.union([z.string(), z.boolean(), z.number()], { error: 'must be a string or a boolean' });
const Specs = z.record(z.string(), SpecValue, { error: 'must be an object of key: value' });
const IsPublic = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  try {
    return parseBool(v, 'share_type_access:is_public');
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be true or false' });
    return z.NEVER;
  }
});

/** Manila keeps a share type's description to 255 characters. */
const TypeDescription = Description.max(255, 'must be at most 255 characters');

const CreateBody = z.object({
  share_type: z.object({
    name: Name,
    description: TypeDescription.nullish(),
    extra_specs: Specs.default({}),
    'share_type_access:is_public': IsPublic.optional(),
    'os-share-type-access:is_public': IsPublic.optional(),
  }),
});
const UpdateBody = z.object({
  share_type: z.object({
    name: Name.optional(),
    description: TypeDescription.nullish(),
    'share_type_access:is_public': IsPublic.optional(),
  }),
});
const SpecsBody = z.object({ extra_specs: Specs });
const AccessAction = z.union(
  [
    z.object({ addProjectAccess: z.object({ project: z.string().min(1).max(255) }) }).strict(),
    z.object({ removeProjectAccess: z.object({ project: z.string().min(1).max(255) }) }).strict(),
  ],
  { error: 'expected {"addProjectAccess": {"project": …}} or {"removeProjectAccess": {"project": …}}' },
);
const ListQuery = z
  .object({
    is_public: z.string().optional(),
    extra_specs: z.string().max(4096).optional(),
  })
  .loose();

/**
 * The extra_specs list filter, as Manila's database query: values compare case-insensitively, and
 * `availability_zones` asks for types usable in every zone named — those whose spec lists them all,
 * and those without the spec (usable anywhere).
 */
function specMatches(specs: Record<string, string>, key: string, value: string): boolean {
  if (key === AZ_SPEC) {
    const have = specs[AZ_SPEC];
    if (have === undefined) return true;
    const zones = typeZones(have);
    return typeZones(value).every((z) => zones.includes(z));
  }
  return specs[key]?.toLowerCase() === value.toLowerCase();
}

export function shareTypesRouter(types: ShareTypeService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/types' });

  r.get('/', auth, async (ctx) => {
    requireReader(ctx.state.auth, 'share_type:index');
    const q = parse(ListQuery, ctx.query, 'query');
    const isPublic =
      q.is_public === undefined
        ? undefined
        : q.is_public.toLowerCase() === 'all'
          ? 'all'
          : parseBool(q.is_public, 'is_public');
    const wanted = q.extra_specs ? parseDictLiteral(q.extra_specs, 'extra_specs') : {};
    const rows = (await types.list(ctx.state.auth, isPublic)).filter((t) =>
      Object.entries(wanted).every(([k, v]) => specMatches(t.extra_specs, k, v)),
    );
    const list = rows.map((t) => view.shareType(t, ctx.state.auth, ctx.state.microversion));
    ctx.body = { share_types: list, volume_types: list };
  });

  r.get('/default', auth, async (ctx) => {
    requireReader(ctx.state.auth, 'share_type:default');
    ctx.body = view.shareTypeEnvelope(
      await types.getDefault(ctx.state.auth),
      ctx.state.auth,
      ctx.state.microversion,
    );
  });

  r.get('/:id', auth, async (ctx) => {
    requireReader(ctx.state.auth, 'share_type:show');
    ctx.body = view.shareTypeEnvelope(
      await types.visible(ctx.state.auth, ctx.params.id!),
      ctx.state.auth,
      ctx.state.microversion,
    );
  });

  r.post('/', auth, async (ctx) => {
    const { share_type: b } = parse(CreateBody, ctx.request.body);
    const v = ctx.state.microversion;
    if (b.description && !atLeast(v, '2.41'))
      throw new InvalidInput(
        "'description' is not supported by this microversion: use 2.41 or later to give a share type one.",
      );
    // Until 2.24 snapshot_support was a required spec that a type without it took as True.
    const extraSpecs = atLeast(v, '2.24') ? b.extra_specs : { snapshot_support: 'True', ...b.extra_specs };
    const t = await types.create(ctx.state.auth, {
      name: b.name,
      description: b.description,
      isPublic: b['share_type_access:is_public'] ?? b['os-share-type-access:is_public'],
      extraSpecs,
    });
    ctx.body = view.shareTypeEnvelope(t, ctx.state.auth, ctx.state.microversion);
  });

  // Manila has no POST on a type's URL: 404 (a client that collapses `types//extra_specs` lands here).
  r.post('/:id', auth, async (ctx) => {
    throw new NotFound(`The resource could not be found: POST ${ctx.path}.`);
  });

  r.put('/:id', auth, async (ctx) => {
    if (!atLeast(ctx.state.microversion, '2.50'))
      throw new NotFound('Updating a share type needs API microversion 2.50 or later.');
    const { share_type: b } = parse(UpdateBody, ctx.request.body);
    const t = await types.update(ctx.state.auth, ctx.params.id!, {
      name: b.name,
      description: b.description,
      isPublic: b['share_type_access:is_public'],
    });
    ctx.body = view.shareTypeEnvelope(t, ctx.state.auth, ctx.state.microversion);
  });

  r.delete('/:id', auth, async (ctx) => {
    await types.delete(ctx.state.auth, ctx.params.id!);
    ctx.status = 202;
  });

  r.get('/:id/extra_specs', auth, async (ctx) => {
    ctx.body = { extra_specs: await types.listSpecs(ctx.state.auth, ctx.params.id!) };
  });
  r.post('/:id/extra_specs', auth, async (ctx) => {
    const { extra_specs } = parse(SpecsBody, ctx.request.body);
    ctx.body = { extra_specs: await types.setSpecs(ctx.state.auth, ctx.params.id!, extra_specs) };
  });
  r.get('/:id/extra_specs/:key', auth, async (ctx) => {
    const value = await types.getSpec(ctx.state.auth, ctx.params.id!, ctx.params.key!);
    ctx.body = { [ctx.params.key!]: value };
  });
  r.put('/:id/extra_specs/:key', auth, async (ctx) => {
    const body = parse(Specs, ctx.request.body);
    const keys = Object.keys(body);
    if (keys.length !== 1 || keys[0] !== ctx.params.key)
      throw new InvalidInput(`The body must hold exactly one spec, keyed '${ctx.params.key}' as in the URL.`);
    ctx.body = await types.setSpecs(ctx.state.auth, ctx.params.id!, body);
  });
  r.delete('/:id/extra_specs/:key', auth, async (ctx) => {
    await types.deleteSpec(ctx.state.auth, ctx.params.id!, ctx.params.key!, {
      // snapshot_support stayed a required spec until 2.24.
      required: atLeast(ctx.state.microversion, '2.24') ? [] : ['snapshot_support'],
    });
    ctx.status = 202;
  });

  r.get('/:id/share_type_access', auth, async (ctx) => {
    const projects = await types.listAccess(ctx.state.auth, ctx.params.id!);
    ctx.body = { share_type_access: projects.map((p) => ({ share_type_id: ctx.params.id, project_id: p })) };
  });
  r.post('/:id/action', auth, async (ctx) => {
    const action = parse(AccessAction, ctx.request.body);
    if ('addProjectAccess' in action)
      await types.addAccess(ctx.state.auth, ctx.params.id!, action.addProjectAccess.project);
    else await types.removeAccess(ctx.state.auth, ctx.params.id!, action.removeProjectAccess.project);
    ctx.status = 202;
  });
  return r;
}
