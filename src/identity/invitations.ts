// Invitations as administrators see them: listed with their state, and revoked so that their link
// is refused at once. Creating and accepting one is sign-up's (src/identity/sign-up.ts).
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import { createOrganisationsQueries } from '../tenancy/organisations.queries.js';
import { openTokenPayload } from './account-tokens.js';
import { type AccountTokenRow, createAccountTokenQueries } from './account-tokens.queries.js';

export type InvitationStatus = 'pending' | 'accepted' | 'expired' | 'revoked';

export interface InvitationView {
  id: string;
  /** The invited address, opened for the administrator (it is sealed at rest, like a user's). */
  email: string;
  organisationId: string | null;
  /** The organisation's current name; null when it was deleted since. */
  organisationName: string | null;
  /** The audit actor that created it (`user:<id>`, `cli`); null for invitations made before it was kept. */
  createdBy: string | null;
  createdAt: string;
  expiresAt: string;
  status: InvitationStatus;
  /** When it was accepted or revoked. */
  endedAt: string | null;
}

export interface InvitationPage {
  items: InvitationView[];
  next: string | null;
}

export interface InvitationsDeps {
  tenantKeys: TenantKeys;
  clock: Clock;
}

const MAX_PAGE = 200;

function notFound(id: string): OrthIdError {
  return new OrthIdError('invitation.not_found', `No invitation ${id} in this tenant.`);
}

export function createInvitations(deps: InvitationsDeps) {
  function statusOf(row: AccountTokenRow, now: Date): InvitationStatus {
    if (row.revoked_at) return 'revoked';
    if (row.used_at) return 'accepted';
    return new Date(row.expires_at) <= now ? 'expired' : 'pending';
  }

  async function view(tx: Queryable, tenantId: string, rows: AccountTokenRow[]): Promise<InvitationView[]> {
    const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
    const organisations = createOrganisationsQueries(tx);
    const names = new Map<string, string | null>();
    const now = deps.clock.now();
    const out: InvitationView[] = [];
    for (const row of rows) {
      const payload = openTokenPayload(keyring, row);
      const organisationId = payload.data.organisation ?? null;
      if (organisationId !== null && !names.has(organisationId)) {
        names.set(organisationId, (await organisations.byId(organisationId))?.name ?? null);
      }
      const ended = row.revoked_at ?? row.used_at;
      out.push({
        id: row.id,
        email: payload.email,
        organisationId,
        organisationName: organisationId === null ? null : (names.get(organisationId) ?? null),
        createdBy: row.created_by,
        createdAt: new Date(row.created_at).toISOString(),
        expiresAt: new Date(row.expires_at).toISOString(),
        status: statusOf(row, now),
        endedAt: ended ? new Date(ended).toISOString() : null,
      });
    }
    return out;
  }

  return {
    /**
     * Invitations in creation order (`-created`: newest first), `limit` at a time. Accepted,
     * expired and revoked ones stay listed until housekeeping deletes them a day later.
     */
    async list(
      tx: Queryable,
      tenantId: string,
      options: { after?: string; limit: number; sort?: 'created' | '-created' },
    ): Promise<InvitationPage> {
      if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > MAX_PAGE) {
        throw new OrthIdError(
          'request.invalid',
          `The page size must be a whole number from 1 to ${MAX_PAGE}.`,
          {
            details: { field: 'limit' },
          },
        );
      }
      if (options.after !== undefined && !isUuid(options.after)) {
        throw new OrthIdError(
          'request.invalid',
          'The cursor is not one this API returned; start again without it.',
          {
            details: { field: 'after' },
          },
        );
      }
      const descending = options.sort === '-created';
      const rows = await createAccountTokenQueries(tx).page(
        'invitation',
        options.after,
        options.limit + 1,
        descending,
      );
      const items = await view(tx, tenantId, rows.slice(0, options.limit));
      return { items, next: rows.length > options.limit ? items.at(-1)!.id : null };
    },

    async get(tx: Queryable, tenantId: string, id: string): Promise<InvitationView> {
      const row = isUuid(id) ? await createAccountTokenQueries(tx).byId(id) : undefined;
      if (row?.purpose !== 'invitation') throw notFound(id);
      return (await view(tx, tenantId, [row]))[0]!;
    },

    /**
     * Revokes an invitation: its link is refused from now on (`account.link_revoked`). Revoking one
     * already revoked or expired changes nothing more; an accepted one is `invitation.already_accepted`
     * (the account exists: delete or disable the user instead).
     */
    async revoke(tx: Queryable, tenantId: string, id: string, actor: string): Promise<InvitationView> {
      const queries = createAccountTokenQueries(tx);
      const row = isUuid(id) ? await queries.byId(id) : undefined;
      if (row?.purpose !== 'invitation') throw notFound(id);
      if (row.used_at && !row.revoked_at) {
        throw new OrthIdError(
          'invitation.already_accepted',
          'This invitation was already accepted: its account exists. Disable or delete the user instead.',
        );
      }
      const now = deps.clock.now();
      if (await queries.revoke(id, now)) {
        await appendAudit(
          tx,
          await deps.tenantKeys.forTenant(tx, tenantId),
          { actor, action: 'invitation.revoked', target: `invitation:${id}`, outcome: 'success' },
          deps.clock,
        );
        row.revoked_at = now;
      }
      return (await view(tx, tenantId, [row]))[0]!;
    },
  };
}

export type Invitations = ReturnType<typeof createInvitations>;
