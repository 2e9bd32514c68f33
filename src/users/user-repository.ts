import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase } from '../platform/db/sqlite.js';
import { toUser, type User, type UserRow } from './user.js';

export interface UserRepository {
  byId(userId: string): Promise<User | null>;
  /** `email` must already be normalised. */
  byEmail(email: string): Promise<User | null>;
  listByOrg(orgId: string): Promise<User[]>;
}

interface RawUserRow {
  id: string;
  email: string;
  name: string;
  phone: string | null;
  password_hash: string | null;
  org_id: string | null;
  role: string | null;
  status: string;
  age_confirmed_at: number | null;
  created_at: number;
  updated_at: number;
}

export function rawToUser(r: RawUserRow): User {
  const row: UserRow = {
    id: r.id,
    email: r.email,
    name: r.name,
    phone: r.phone,
    passwordHash: r.password_hash,
    orgId: r.org_id,
    role: r.role,
    status: r.status,
    ageConfirmedAt: r.age_confirmed_at === null ? null : new Date(r.age_confirmed_at),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
  return toUser(row);
}

export interface NewUserRow {
  id: string;
  email: string;
  name: string;
  passwordHash: string | null;
  orgId: string | null;
  role: string | null;
  ageConfirmedAt: Date | null;
  createdAt: Date;
}

/** Insert a user; call inside a transaction. Returns false when the email is taken. */
export function insertUserRow(sqlite: BetterSqlite3.Database, user: NewUserRow): boolean {
  const result = sqlite
    .prepare(
      `INSERT INTO users (id, email, name, password_hash, org_id, role, age_confirmed_at, status, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?) ON CONFLICT (email) DO NOTHING`,
    )
    .run(
      user.id, user.email, user.name, user.passwordHash, user.orgId, user.role,
      user.ageConfirmedAt?.getTime() ?? null, user.createdAt.getTime(), user.createdAt.getTime(),
    );
  return result.changes === 1;
}

export class SqliteUserRepository implements UserRepository {
  private readonly byIdStmt: BetterSqlite3.Statement<[string], RawUserRow>;
  private readonly byEmailStmt: BetterSqlite3.Statement<[string], RawUserRow>;

  constructor(private readonly database: SqliteDatabase) {
    this.byIdStmt = database.sqlite.prepare('SELECT * FROM users WHERE id = ?');
    this.byEmailStmt = database.sqlite.prepare('SELECT * FROM users WHERE email = ?');
  }

  async byId(userId: string): Promise<User | null> {
    const row = this.byIdStmt.get(userId);
    return row ? rawToUser(row) : null;
  }

  async byEmail(email: string): Promise<User | null> {
    const row = this.byEmailStmt.get(email);
    return row ? rawToUser(row) : null;
  }

  async listByOrg(orgId: string): Promise<User[]> {
    const rows = this.database.sqlite
      .prepare('SELECT * FROM users WHERE org_id = ? ORDER BY created_at, id')
      .all(orgId) as RawUserRow[];
    return rows.map(rawToUser);
  }
}
