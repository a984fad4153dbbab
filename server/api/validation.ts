import { invalidArgument } from "./errors.js";

/** DESIGN.md rule 7: gid ≤ 128 chars of [A-Za-z0-9._:-]. */
const GID = /^[A-Za-z0-9._:-]{1,128}$/;
const BRANCH_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export function requireGid(gid: string, field = "gid"): string {
  if (gid === "") throw invalidArgument(field, "is required");
  if (gid.length > 128) throw invalidArgument(field, `must be at most 128 characters (got ${gid.length})`);
  if (!GID.test(gid)) throw invalidArgument(field, "must contain only A-Z a-z 0-9 . _ : -");
  return gid;
}

/** A gid prefix: empty (no filter) or the start of a gid, so the same alphabet and bound. */
export function optionalGidPrefix(prefix: string, field = "gid_prefix"): string | undefined {
  return prefix === "" ? undefined : requireGid(prefix, field);
}

export function requireBranchId(id: string, field: string): string {
  if (!BRANCH_ID.test(id)) throw invalidArgument(field, "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -");
  return id;
}
