import type { RequestRecord, Store, WriteOp, WriteOutcome } from "../../store/index.js";
import { InvalidInputError, RequestIdReusedError } from "./errors.js";

/**
 * A request_id with whose it is and what it asked, as remembered with the request's effect. The
 * API computes it (the caller's identity and a digest of the request are transport matters).
 */
export type RequestClaim = Omit<RequestRecord, "createdAt">;

/**
 * request_id (AIP-155): a retried mutating request with the same id has no second effect. Ids are
 * unique per caller, so one caller can neither replay nor learn about another's requests. The id
 * is written in the same unit as the request's effect, with a digest of the request: a known id
 * with the same digest is a replay (answer with the transaction's current state); with another,
 * the caller reused the id for a different request, which is refused rather than dropped.
 */
export class RequestIds {
  constructor(private readonly store: Store) {}

  /** Throws if the id names another request of this caller; true when this is a replay. */
  async isReplay(claim: RequestClaim | undefined): Promise<boolean> {
    if (!claim) return false;
    if (claim.requestId.length > 128) throw new InvalidInputError("request_id", "must be at most 128 characters");
    const known = await this.store.getRequest(claim.caller, claim.requestId);
    if (!known) return false;
    check(known, claim);
    return true;
  }

  /** The op that records the id, to put in the effect's unit (first, see lostRace). */
  ops(claim: RequestClaim | undefined): WriteOp[] {
    return claim ? [{ kind: "request", request: { ...claim, createdAt: Date.now() } }] : [];
  }

  /** Whether the unit found the id taken (a concurrent retry won): then reply as a replay. */
  lostRace(outcomes: WriteOutcome[], claim: RequestClaim | undefined): boolean {
    if (!claim) return false;
    const outcome = outcomes[0];
    if (typeof outcome === "object" && !outcome.created && "method" in outcome.existing) {
      check(outcome.existing, claim);
      return true;
    }
    return false;
  }
}

function check(known: RequestRecord, claim: RequestClaim): void {
  // Rows from before fingerprints were recorded have none: method and gid decide for them.
  const same = known.method === claim.method && known.gid === claim.gid && (known.fingerprint === "" || known.fingerprint === claim.fingerprint);
  if (!same) throw new RequestIdReusedError(claim.requestId);
}
