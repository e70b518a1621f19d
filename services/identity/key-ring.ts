import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { type Db, inTransaction } from '../db.ts';
import { newId } from '../ids.ts';
import { signingKeysRepo } from '../repos/signing-keys.ts';

interface Key {
  id: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  retiredAt: Date | null;
}

export class InvalidTokenSignature extends Error {}

/**
 * The ES256 keys that sign and verify tokens, kept in the database so every server sharing it
 * agrees. The newest unretired key signs; a retired key keeps verifying until every token it could
 * have signed has expired, and is purged at the next rotation after that.
 */
export class KeyRing {
  private keys = new Map<string, Key>();
  private signer: Key | null = null;
  private lastReload = 0;

  constructor(
    private readonly db: Db,
    private readonly tokenLifetimeSeconds: number,
  ) {}

  /** Loads the keys, creating the first one on an empty database. */
  async init(): Promise<void> {
    await this.reload();
    if (!this.signer) {
      await inTransaction(this.db, async (trx) => {
        await trx.raw('SELECT pg_advisory_xact_lock(?)', [ADVISORY_LOCK]);
        const existing = await signingKeysRepo.listAll(trx);
        if (!existing.some((k) => k.retired_at === null)) await signingKeysRepo.insert(trx, generateKey());
      });
      await this.reload();
    }
  }

  /** Adds a new signing key and retires the previous ones; purges keys no token can still use. */
  async rotate(now = new Date()): Promise<{ newKeyId: string; purged: number }> {
    const fresh = generateKey();
    const purged = await inTransaction(this.db, async (trx) => {
      await trx.raw('SELECT pg_advisory_xact_lock(?)', [ADVISORY_LOCK]);
      await signingKeysRepo.insert(trx, fresh);
      await signingKeysRepo.retireAllBut(trx, fresh.id, now);
      return signingKeysRepo.purgeRetiredBefore(
        trx,
        new Date(now.getTime() - this.tokenLifetimeSeconds * 1000),
      );
    });
    await this.reload();
    return { newKeyId: fresh.id, purged };
  }

  sign(payload: object): string {
    if (!this.signer) throw new Error('KeyRing used before init()');
    return jwt.sign(payload, this.signer.privateKey, { algorithm: 'ES256', keyid: this.signer.id });
  }

  /** Verifies signature and expiry; throws InvalidTokenSignature with the reason otherwise. */
  async verify(token: string, now = Date.now()): Promise<Record<string, unknown>> {
    const decoded = jwt.decode(token, { complete: true });
    const kid = decoded?.header?.kid;
    if (!decoded || typeof kid !== 'string') throw new InvalidTokenSignature('malformed token');
    if (decoded.header.alg !== 'ES256')
      throw new InvalidTokenSignature(`algorithm ${decoded.header.alg} not accepted`);
    let key = this.keys.get(kid);
    if (!key && now - this.lastReload > 1000) {
      // Another server may have rotated: look once, not on every request with a bogus kid.
      await this.reload();
      key = this.keys.get(kid);
    }
    if (!key) throw new InvalidTokenSignature('signed by an unknown or purged key');
    if (key.retiredAt && key.retiredAt.getTime() + this.tokenLifetimeSeconds * 1000 < now)
      throw new InvalidTokenSignature('signed by a retired key');
    try {
      return jwt.verify(token, key.publicKey, {
        algorithms: ['ES256'],
        clockTimestamp: now / 1000,
      }) as Record<string, unknown>;
    } catch (err) {
      throw new InvalidTokenSignature(
        err instanceof jwt.TokenExpiredError ? 'expired' : (err as Error).message,
      );
    }
  }

  get currentKeyId(): string | null {
    return this.signer?.id ?? null;
  }

  private async reload(): Promise<void> {
    const rows = await signingKeysRepo.listAll(this.db);
    this.keys = new Map(
      rows.map((r) => [
        r.id,
        {
          id: r.id,
          privateKey: createPrivateKey(r.private_key),
          publicKey: createPublicKey(r.public_key),
          retiredAt: r.retired_at,
        },
      ]),
    );
    this.signer = [...this.keys.values()].find((k) => k.retiredAt === null) ?? null;
    this.lastReload = Date.now();
  }
}

const ADVISORY_LOCK = 0x61626163; // 'abac'

function generateKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    id: newId(),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
