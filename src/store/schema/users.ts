import { pgTable, text, timestamp } from "drizzle-orm/pg-core";

/** People who sign in through the product's identity provider. Not tenant-owned: one user, many orgs. */
export const users = pgTable("users", {
  id: text("id").primaryKey(),
  /** The IdP's `sub` claim (prefixed by nothing: one Orgplane trusts one issuer). */
  subject: text("subject").notNull().unique(),
  email: text("email"),
  name: text("name"),
  avatarUrl: text("avatar_url"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
  lastLoginAt: timestamp("last_login_at", { withTimezone: true }),
});
