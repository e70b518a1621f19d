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

/** A token whose signature has been checked once: what later checks of the same string still need. */
interface VerifiedToken {
  kid: string;
  /** Seconds since the epoch, as signed. */
  exp: number;
  /** The signed claims, deep-frozen: every caller gets the same object and none may change it. */
  claims: Readonly<Record<string, unknown>>;
}

/** Freezes a parsed JSON value and everything in it. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * How many verified tokens a server remembers. An ES256 verification costs about as much CPU as the
 * rest of a small API request; clients send the same token for an hour, so a few thousand entries
 * make almost every check a map lookup. The least recently used entry goes first.
 */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/**
 * The ES256 keys that sign and verify tokens, kept in the database so every server sharing it
 * agrees. The newest unretired key signs; a retired key keeps verifying until every token it could
 * have signed has expired, and is purged at the next rotation after that.
 */
export class KeyRing {
  private keys = new Map<string, Key>();
  private signer: Key | null = null;
  private lastReload = 0;
  private readonly verified = new Map<string, VerifiedToken>();

  constructor(
    private readonly db: Db,
    private readonly tokenLifetimeSeconds: number,
    private readonly cacheSize = VERIFIED_TOKEN_CACHE_SIZE,
  ) {}

  /** How many verified tokens are remembered now (never more than the cache size). */
  get verifiedTokens(): number {
    return this.verified.size;
  }

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

  /**
   * Verifies signature and expiry; throws InvalidTokenSignature with the reason otherwise.
   *
   * A token string whose signature was verified before is not verified again: the signature of a
   * given string cannot change. Everything else is checked on every call exactly as on the first:
   * the key must still be held and within its grace period, and the token must not have expired.
   * Revocation is the caller's check (TokenService.decode), also made on every request.
   */
  async verify(token: string, now = Date.now()): Promise<Readonly<Record<string, unknown>>> {
    const known = this.verified.get(token);
    if (known) {
      const key = this.keys.get(known.kid);
      if (key && !this.pastGrace(key, now)) {
        if (now / 1000 >= known.exp) {
          this.verified.delete(token);
          throw new InvalidTokenSignature('expired');
        }
        // Most recently used last, so eviction takes the coldest entry.
        this.verified.delete(token);
        this.verified.set(token, known);
        return known.claims;
      }
      // The key is gone or retired too long: the full check below gives the reason.
      this.verified.delete(token);
    }
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
    if (this.pastGrace(key, now)) throw new InvalidTokenSignature('signed by a retired key');
    let claims: Record<string, unknown>;
    try {
      claims = jwt.verify(token, key.publicKey, {
        algorithms: ['ES256'],
        clockTimestamp: now / 1000,
      }) as Record<string, unknown>;
    } catch (err) {
      throw new InvalidTokenSignature(
        err instanceof jwt.TokenExpiredError ? 'expired' : (err as Error).message,
      );
    }
    // Only tokens whose validity is the signature plus `exp` are remembered (ours carry no nbf).
    if (typeof claims.exp === 'number' && claims.nbf === undefined) {
      if (this.verified.size >= this.cacheSize)
        this.verified.delete(this.verified.keys().next().value as string);
      this.verified.set(token, { kid, exp: claims.exp, claims: deepFreeze(structuredClone(claims)) });
    }
    return claims;
  }

  /** A retired key verifies for one token lifetime after retirement, no longer. */
  private pastGrace(key: Key, now: number): boolean {
    return key.retiredAt !== null && key.retiredAt.getTime() + this.tokenLifetimeSeconds * 1000 < now;
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
