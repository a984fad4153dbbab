import { blob, index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

// Same table and column names as ../mysql/schema.ts; times are epoch milliseconds.

export const transactions = sqliteTable(
  "transactions",
  {
    gid: text("gid").primaryKey(),
    mode: text("mode").notNull(),
    status: text("status").notNull(),
    stalled: integer("stalled", { mode: "boolean" }).notNull().default(false),
    options: text("options").notNull(),
    queryPrepared: text("query_prepared").notNull().default(""),
    traceparent: text("traceparent").notNull().default(""),
    lastError: text("last_error").notNull().default(""),
    failedBranchId: text("failed_branch_id").notNull().default(""),
    failureReason: text("failure_reason").notNull().default(""),
    contentHash: text("content_hash").notNull(),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    finishedAt: integer("finished_at"),
    nextAttemptAt: integer("next_attempt_at"),
    deadlineAt: integer("deadline_at"),
    owner: text("owner"),
    leaseUntil: integer("lease_until"),
    /** Grows each time an owner takes the lease; sent to branches as a fencing value. */
    leaseGeneration: integer("lease_generation").notNull().default(0),
  },
  (t) => [
    index("transactions_due_idx").on(t.nextAttemptAt),
    index("transactions_created_idx").on(t.createdAt, t.gid),
    index("transactions_status_idx").on(t.status, t.createdAt),
    // Retention deletes finished transactions oldest first, a bounded batch at a time.
    index("transactions_finished_idx").on(t.finishedAt, t.gid),
  ],
);

export const branches = sqliteTable(
  "branches",
  {
    gid: text("gid").notNull(),
    branchId: text("branch_id").notNull(),
    op: text("op").notNull(),
    seq: integer("seq").notNull(),
    target: text("target").notNull(),
    payload: blob("payload", { mode: "buffer" }).notNull(),
    after: text("after").notNull().default("[]"),
    status: text("status").notNull(),
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error").notNull().default(""),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.gid, t.branchId, t.op] })],
);

/** Idempotency keys of mutating requests: a retry with the same request_id has no second effect. */
export const requests = sqliteTable(
  "requests",
  {
    requestId: text("request_id").notNull(),
    caller: text("caller").notNull().default(""),
    method: text("method").notNull(),
    gid: text("gid").notNull(),
    fingerprint: text("fingerprint").notNull().default(""),
    createdAt: integer("created_at").notNull(),
  },
  // request_id first, so a group's lookup by request_id IN (…) uses the key.
  // By gid too: retention deletes a transaction's request ids with it.
  (t) => [primaryKey({ columns: [t.requestId, t.caller] }), index("requests_created_idx").on(t.createdAt), index("requests_gid_idx").on(t.gid)],
);

/** What operators did to a transaction (AdminService): who, when, what, why. */
export const adminActions = sqliteTable(
  "admin_actions",
  {
    id: text("id").primaryKey(),
    gid: text("gid").notNull(),
    action: text("action").notNull(),
    branchId: text("branch_id").notNull().default(""),
    op: text("op").notNull().default(""),
    identity: text("identity").notNull(),
    reason: text("reason").notNull(),
    at: integer("at").notNull(),
  },
  (t) => [index("admin_actions_gid_idx").on(t.gid, t.at)],
);
