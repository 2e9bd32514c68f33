import type { PrivacyContributor } from '../privacy/contributor.js';
import { isoOrNull } from '../privacy/contributor.js';

interface ProfileRow {
  id: string;
  email: string;
  name: string;
  phone: string | null;
  status: string;
  password_hash: string | null;
  age_confirmed_at: number | null;
  created_at: number;
  updated_at: number;
}

/**
 * The identity record itself. Registered LAST: its erase hook deletes the
 * `users` row, after every other contributor has cleared what refers to it
 * (the foreign keys that remain cascade).
 */
export const usersPrivacy: PrivacyContributor = {
  name: 'users',
  tables: ['users'],
  export(sqlite, subject) {
    const row = sqlite
      .prepare('SELECT id, email, name, phone, status, password_hash, age_confirmed_at, created_at, updated_at FROM users WHERE id = ?')
      .get(subject.userId) as ProfileRow | undefined;
    if (!row) return { profile: null };
    return {
      profile: {
        id: row.id,
        email: row.email,
        name: row.name,
        phone: row.phone,
        /** `active` or `restricted` (GDPR Art. 18). */
        status: row.status,
        hasPassword: row.password_hash !== null,
        // Only the attestation "16 or older" and its time are kept (no birth date).
        ageConfirmedAt: isoOrNull(row.age_confirmed_at),
        createdAt: isoOrNull(row.created_at),
        updatedAt: isoOrNull(row.updated_at),
      },
    };
  },
  erase(sqlite, subject) {
    sqlite.prepare('DELETE FROM users WHERE id = ?').run(subject.userId);
  },
};
