import { InvalidInputError } from "./errors.js";

/** docs/architecture.md, "Limits": a gid is at most 128 characters of [A-Za-z0-9._:-]. */
const GID = /^[A-Za-z0-9._:-]{1,128}$/;
const BRANCH_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export function requireGid(gid: string, field = "gid"): string {
  if (gid === "") throw new InvalidInputError(field, "is required");
  if (gid.length > 128) throw new InvalidInputError(field, `must be at most 128 characters (got ${gid.length})`);
  if (!GID.test(gid)) throw new InvalidInputError(field, "must contain only A-Z a-z 0-9 . _ : -");
  return gid;
}

export function requireBranchId(id: string, field: string): string {
  if (!BRANCH_ID.test(id)) throw new InvalidInputError(field, "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -");
  return id;
}
