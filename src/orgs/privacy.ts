import type { PrivacyContributor } from '../privacy/contributor.js';
import { isoOrNull } from '../privacy/contributor.js';

interface MembershipRow {
  org_id: string;
  name: string;
  slug: string;
  plan: string;
  role: string | null;
  created_at: number;
}

interface InvitationRow {
  id: string;
  org_id: string;
  email: string;
  role: string;
  expires_at: number;
  accepted_at: number | null;
  created_at: number;
}

/**
 * Organization membership and invitations: those addressed to the person's
 * email (from any organization) and those they sent. The addresses of the
 * people they invited are someone else's data and are left out.
 */
export const orgsPrivacy: PrivacyContributor = {
  name: 'orgs',
  tables: ['orgs', 'invitations'],
  export(sqlite, subject) {
    const membership = sqlite
      .prepare(
        `SELECT o.id AS org_id, o.name, o.slug, o.plan, u.role, u.created_at
           FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.id = ?`,
      )
      .get(subject.userId) as MembershipRow | undefined;
    const received = sqlite
      .prepare('SELECT * FROM invitations WHERE email = ? ORDER BY created_at, id')
      .all(subject.email) as InvitationRow[];
    const sent = sqlite
      .prepare('SELECT * FROM invitations WHERE invited_by = ? ORDER BY created_at, id')
      .all(subject.userId) as InvitationRow[];
    return {
      organization: membership
        ? {
            id: membership.org_id,
            name: membership.name,
            slug: membership.slug,
            plan: membership.plan,
            role: membership.role,
            memberSince: isoOrNull(membership.created_at),
          }
        : null,
      invitations: {
        received: received.map((i) => ({
          id: i.id,
          orgId: i.org_id,
          email: i.email,
          role: i.role,
          createdAt: isoOrNull(i.created_at),
          expiresAt: isoOrNull(i.expires_at),
          acceptedAt: isoOrNull(i.accepted_at),
        })),
        sent: sent.map((i) => ({
          id: i.id,
          orgId: i.org_id,
          role: i.role,
          createdAt: isoOrNull(i.created_at),
          expiresAt: isoOrNull(i.expires_at),
          acceptedAt: isoOrNull(i.accepted_at),
        })),
      },
    };
  },
  erase(sqlite, subject) {
    // Invitations to their address go; those they sent stay for the invitee, without the inviter.
    sqlite.prepare('DELETE FROM invitations WHERE email = ?').run(subject.email);
    sqlite.prepare('UPDATE invitations SET invited_by = NULL WHERE invited_by = ?').run(subject.userId);
  },
};
