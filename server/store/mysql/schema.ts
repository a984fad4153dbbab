import {
  bigint,
  boolean,
  customType,
  index,
  int,
  mysqlTable,
  primaryKey,
  text,
  varchar,
} from "drizzle-orm/mysql-core";

// Same table and column names as ../sqlite/schema.ts; times are epoch milliseconds.

/** Branch payloads are up to 1 MiB by default and configurable, so LONGBLOB. */
const longblob = customType<{ data: Buffer; driverData: Buffer }>({
  dataType: () => "longblob",
});

const millis = (name: string) => bigint(name, { mode: "number" });

export const transactions = mysqlTable(
  "transactions",
  {
    gid: varchar("gid", { length: 128 }).primaryKey(),
    mode: varchar("mode", { length: 8 }).notNull(),
    status: varchar("status", { length: 16 }).notNull(),
    stalled: boolean("stalled").notNull().default(false),
    options: text("options").notNull(),
    queryPrepared: varchar("query_prepared", { length: 2048 }).notNull().default(""),
    traceparent: varchar("traceparent", { length: 256 }).notNull().default(""),
    lastError: text("last_error").notNull(),
    failedBranchId: varchar("failed_branch_id", { length: 64 }).notNull().default(""),
    failureReason: text("failure_reason").notNull(),
    contentHash: varchar("content_hash", { length: 64 }).notNull(),
    createdAt: millis("created_at").notNull(),
    updatedAt: millis("updated_at").notNull(),
    finishedAt: millis("finished_at"),
    nextAttemptAt: millis("next_attempt_at"),
    deadlineAt: millis("deadline_at"),
    owner: varchar("owner", { length: 128 }),
    leaseUntil: millis("lease_until"),
    /** Grows each time an owner takes the lease; sent to branches as a fencing value. */
    leaseGeneration: bigint("lease_generation", { mode: "number" }).notNull().default(0),
    /** Marks the rows one claim statement took, so they can be read back by it. */
    claimToken: varchar("claim_token", { length: 32 }),
  },
  (t) => [
    index("transactions_due_idx").on(t.nextAttemptAt),
    index("transactions_created_idx").on(t.createdAt, t.gid),
    index("transactions_status_idx").on(t.status, t.createdAt),
    // Retention deletes finished transactions oldest first, a bounded batch at a time.
    index("transactions_finished_idx").on(t.finishedAt, t.gid),
  ],
);

export const branches = mysqlTable(
  "branches",
  {
    gid: varchar("gid", { length: 128 }).notNull(),
    branchId: varchar("branch_id", { length: 64 }).notNull(),
    op: varchar("op", { length: 16 }).notNull(),
    seq: int("seq").notNull(),
    target: varchar("target", { length: 2048 }).notNull(),
    payload: longblob("payload").notNull(),
    after: text("after").notNull(),
    status: varchar("status", { length: 16 }).notNull(),
    attempts: int("attempts").notNull().default(0),
    lastError: text("last_error").notNull(),
    updatedAt: millis("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.gid, t.branchId, t.op] })],
);

/** Idempotency keys of mutating requests: a retry with the same request_id has no second effect. */
export const requests = mysqlTable(
  "requests",
  {
    requestId: varchar("request_id", { length: 128 }).notNull(),
    /** An identity, or a digest of one longer than fits (see RequestIds). */
    caller: varchar("caller", { length: 200 }).notNull().default(""),
    method: varchar("method", { length: 32 }).notNull(),
    gid: varchar("gid", { length: 128 }).notNull(),
    fingerprint: varchar("fingerprint", { length: 64 }).notNull().default(""),
    createdAt: millis("created_at").notNull(),
  },
  // request_id first, so a group's lookup by request_id IN (…) uses the key.
  // By gid too: retention deletes a transaction's request ids with it.
  (t) => [primaryKey({ columns: [t.requestId, t.caller] }), index("requests_created_idx").on(t.createdAt), index("requests_gid_idx").on(t.gid)],
);

/** What operators did to a transaction (AdminService): who, when, what, why. */
export const adminActions = mysqlTable(
  "admin_actions",
  {
    id: varchar("id", { length: 32 }).primaryKey(),
    gid: varchar("gid", { length: 128 }).notNull(),
    action: varchar("action", { length: 32 }).notNull(),
    branchId: varchar("branch_id", { length: 64 }).notNull().default(""),
    op: varchar("op", { length: 16 }).notNull().default(""),
    identity: varchar("identity", { length: 512 }).notNull(),
    reason: text("reason").notNull(),
    at: millis("at").notNull(),
  },
  (t) => [index("admin_actions_gid_idx").on(t.gid, t.at)],
);
