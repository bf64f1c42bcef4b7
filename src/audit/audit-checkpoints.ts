// Checkpoints of a tenant's audit chain head, kept outside the database: each names the head's
// seq and link at a time, carries a MAC under the tenant's audit key (so nobody without the key
// custody can forge one) and is a JWS signed by the tenant's signing key (so an auditor can check
// it against the tenant's published keys). A superuser who rewrites the database cannot rewrite
// the object store's past checkpoints, so cutting or recomputing the chain behind one shows.
import { CompactSign, compactVerify, decodeProtectedHeader, EmbeddedJWK, importJWK } from 'jose';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import { usableSigningKeys } from '../crypto/signing-keys.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import { createAuditQueries } from './audit.queries.js';
import { GENESIS_HASH, isKeyed, macEvent } from './audit-chain.js';
import { type ChainReport, verifyAuditChain } from './audit-log.js';

export const CHECKPOINT_FORMAT = 'orthid-audit-checkpoint';
/** The JWS `typ`, so a checkpoint cannot be mistaken for (or replayed as) a token or a bundle. */
export const CHECKPOINT_JWS_TYPE = 'orthid-audit-checkpoint+jws';

export interface AuditCheckpoint {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  tenantId: string;
  /** The head's seq when the checkpoint was taken; "0" for an empty chain. */
  seq: string;
  /** The head's stored link (`v2:…` MAC, or a v1 hash), or the genesis hash for an empty chain. */
  head: string;
  /** When the checkpoint was taken. */
  at: string;
  /** HMAC under the tenant's audit key over the fields above. */
  mac: string;
}

/** A checkpoint as backup manifests and audit archives name it. */
export interface CheckpointRef {
  key: string;
  seq: string;
  head: string;
  at: string;
}

export interface AnchoredReport extends ChainReport {
  /** The head the table holds now ("0" when empty). */
  headSeq: string;
  /** How many checkpoints were checked. */
  checkpoints: number;
  /** The newest checkpoint the chain still matches, if any. */
  checkpoint?: CheckpointRef;
  /** Present when broken: one stable code and the sentence an operator reads. */
  code?: 'audit.chain_broken';
  message?: string;
}

export function checkpointPrefix(tenantId: string): string {
  return `audit-checkpoints/${tenantId}/`;
}

/** ISO 8601 basic format, as other object keys spell times. */
const keyTime = (at: Date) => at.toISOString().replace(/[-:]/g, '');

/** Keys sort by seq, then time: the newest checkpoint is the last key. */
function checkpointKey(tenantId: string, seq: string, at: Date): string {
  return `${checkpointPrefix(tenantId)}${seq.padStart(20, '0')}_${keyTime(at)}.jws`;
}

function macInput(cp: Omit<AuditCheckpoint, 'mac'>): string {
  return `${CHECKPOINT_FORMAT}/v1\u0000${JSON.stringify([cp.tenantId, cp.seq, cp.head, cp.at])}`;
}

const refOf = (key: string, cp: AuditCheckpoint): CheckpointRef => ({
  key,
  seq: cp.seq,
  head: cp.head,
  at: cp.at,
});

/**
 * Writes a checkpoint of the tenant's current head to the object store; `tx` is scoped to the
 * keyring's tenant. Refuses (`audit.chain_broken`) when the head's own MAC does not hold, so a
 * forged head is never anchored.
 */
export async function writeCheckpoint(
  tx: Queryable,
  keyring: TenantKeyring,
  objects: ObjectStore,
  clock: Clock,
): Promise<CheckpointRef> {
  const queries = createAuditQueries(tx);
  const head = await queries.head();
  if (head && isKeyed(head.hash)) {
    const [row] = await queries.pageBefore(String(BigInt(head.seq) + 1n), 1);
    if (!row || macEvent(row, row.occurred_us!, keyring.auditMac) !== row.hash) {
      throw new OrthIdError(
        'audit.chain_broken',
        `The newest audit event (#${head.seq}) does not match its MAC, so it was not checkpointed. Run: orthid audit verify --tenant SLUG`,
      );
    }
  }
  const now = clock.now();
  const body: Omit<AuditCheckpoint, 'mac'> = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    tenantId: keyring.tenantId,
    seq: head?.seq ?? '0',
    head: head?.hash ?? GENESIS_HASH,
    at: now.toISOString(),
  };
  const checkpoint: AuditCheckpoint = { ...body, mac: keyring.auditMac(macInput(body)) };
  const key = (await usableSigningKeys(tx, keyring, now)).find((k) => k.status === 'active');
  if (!key) {
    throw new OrthIdError(
      'bundle.signing_key_missing',
      'This tenant has no active signing key to sign its audit checkpoint. Create one with: orthid keystore rotate-signing --tenant SLUG',
    );
  }
  // The public key rides in the header, so a checkpoint signed by a long-retired key still opens;
  // the MAC, not the signature, is what proves it came from this deployment.
  const jws = await new CompactSign(Buffer.from(JSON.stringify(checkpoint)))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: CHECKPOINT_JWS_TYPE, jwk: key.publicJwk })
    .sign(await importJWK(key.privateJwk, key.alg));
  const objectKey = checkpointKey(keyring.tenantId, checkpoint.seq, now);
  await objects.put(objectKey, Buffer.from(jws), { contentType: 'application/jose' });
  return refOf(objectKey, checkpoint);
}

/** Why a stored checkpoint cannot be trusted, or its contents. */
async function openCheckpoint(
  keyring: TenantKeyring,
  key: string,
  jws: string,
): Promise<AuditCheckpoint | string> {
  try {
    if (decodeProtectedHeader(jws).typ !== CHECKPOINT_JWS_TYPE) return 'it is not an audit checkpoint';
    const { payload } = await compactVerify(jws, EmbeddedJWK);
    const cp = JSON.parse(Buffer.from(payload).toString('utf8')) as AuditCheckpoint;
    if (cp.format !== CHECKPOINT_FORMAT || cp.version !== 1) return 'it is not an audit checkpoint';
    if (cp.tenantId !== keyring.tenantId) return "it is another tenant's checkpoint";
    const { mac, ...body } = cp;
    // A shredded tenant's audit key is gone: its checkpoints rest on their signatures alone.
    if (!keyring.shredded && keyring.auditMac(macInput(body)) !== mac)
      return "its MAC does not match the tenant's audit key";
    if (!key.startsWith(checkpointPrefix(keyring.tenantId))) return 'it is stored under another tenant';
    return cp;
  } catch {
    return 'its signature does not verify';
  }
}

async function readText(objects: ObjectStore, key: string): Promise<string> {
  const { body } = await objects.get(key);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Every stored checkpoint of the tenant, oldest seq first; an untrustworthy one names why. */
export async function listCheckpoints(
  keyring: TenantKeyring,
  objects: ObjectStore,
): Promise<{ key: string; checkpoint: AuditCheckpoint | string }[]> {
  const out: { key: string; checkpoint: AuditCheckpoint | string }[] = [];
  let cursor: string | undefined;
  do {
    const page = await objects.list(
      checkpointPrefix(keyring.tenantId),
      cursor === undefined ? {} : { cursor },
    );
    for (const item of page.items) {
      out.push({
        key: item.key,
        checkpoint: await openCheckpoint(keyring, item.key, await readText(objects, item.key)),
      });
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

/** The tenant's newest checkpoint that opens, or undefined. */
export async function latestCheckpoint(
  keyring: TenantKeyring,
  objects: ObjectStore,
): Promise<CheckpointRef | undefined> {
  const found = (await listCheckpoints(keyring, objects)).filter(
    (c): c is { key: string; checkpoint: AuditCheckpoint } => typeof c.checkpoint !== 'string',
  );
  const last = found.at(-1);
  return last ? refOf(last.key, last.checkpoint) : undefined;
}

function broken(
  report: AnchoredReport,
  seq: string,
  reason: string,
  since: CheckpointRef | undefined,
): AnchoredReport {
  const sinceText = since
    ? `; the chain matches the checkpoint of ${since.at} (event #${since.seq})`
    : '; no earlier checkpoint of the chain matches';
  const brokenLink = { seq, reason: `${reason}${sinceText}` };
  return {
    ...report,
    ok: false,
    broken: brokenLink,
    code: 'audit.chain_broken',
    message: `The audit chain is broken at event #${seq}: ${brokenLink.reason}.`,
    ...(since ? { checkpoint: since } : {}),
  };
}

/**
 * Verifies the tenant's chain and holds it against checkpoints: every checkpoint in the object
 * store (`objects`) and any named by the caller (`extra`, e.g. a backup manifest's). Each
 * checkpoint's seq must still be in the table with the link it names — so cutting the tail,
 * deleting every event, or recomputing, renumbering or replacing events behind a checkpoint
 * shows — and the first problem is named with the newest checkpoint before it.
 */
export async function verifyAnchored(
  tx: Queryable,
  keyring: TenantKeyring,
  objects: ObjectStore | undefined,
  extra: CheckpointRef[] = [],
): Promise<AnchoredReport> {
  return holdAgainstCheckpoints(tx, keyring, objects, await verifyAuditChain(tx, keyring), extra);
}

/** The checkpoint half of `verifyAnchored`, for a chain already verified (e.g. in parts). */
export async function holdAgainstCheckpoints(
  tx: Queryable,
  keyring: TenantKeyring,
  objects: ObjectStore | undefined,
  chain: ChainReport,
  extra: CheckpointRef[] = [],
): Promise<AnchoredReport> {
  const queries = createAuditQueries(tx);
  const headSeq = (await queries.head())?.seq ?? '0';
  const stored = objects ? await listCheckpoints(keyring, objects) : [];
  const base: AnchoredReport = { ...chain, headSeq, checkpoints: stored.length + extra.length };
  const problems: { seq: string; reason: string }[] = [];
  if (chain.broken) problems.push(chain.broken);
  const trusted: CheckpointRef[] = [...extra];
  for (const { key, checkpoint } of stored) {
    if (typeof checkpoint === 'string') {
      problems.push({ seq: headSeq, reason: `the checkpoint ${key} cannot be trusted: ${checkpoint}` });
    } else trusted.push(refOf(key, checkpoint));
  }
  trusted.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : BigInt(a.seq) > BigInt(b.seq) ? 1 : 0));
  const holding: CheckpointRef[] = [];
  for (const cp of trusted) {
    if (cp.seq === '0') {
      holding.push(cp);
      continue;
    }
    const link = await queries.hashAt(cp.seq);
    if (link === undefined) {
      const first = BigInt(headSeq) + 1n;
      problems.push({
        seq: String(first),
        reason: `events after #${headSeq} are missing: the checkpoint of ${cp.at} names #${cp.seq} as the head`,
      });
      break;
    }
    if (link !== cp.head) {
      problems.push({
        seq: cp.seq,
        reason: `event #${cp.seq} is not the one the checkpoint of ${cp.at} names: the chain was rewritten, recomputed or renumbered`,
      });
      break;
    }
    holding.push(cp);
  }
  const first = problems.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1))[0];
  if (!first) {
    const newest = holding.at(-1);
    return newest ? { ...base, checkpoint: newest } : base;
  }
  const since = holding.filter((cp) => BigInt(cp.seq) < BigInt(first.seq)).at(-1);
  return broken(base, first.seq, first.reason, since);
}
