import { randomBytes } from "node:crypto";
import { encodePayload, type PayloadInput } from "../payload.js";
import { ConformanceOptionsError, createCaller, parseBranchTarget, type Answer, type Caller, type ConformanceTls, type Outcome } from "./caller.js";

export type ConformanceMode = "saga" | "tcc" | "msg";

export interface BranchConformanceOptions {
  /** Which contract to check (default "saga"). */
  mode?: ConformanceMode;
  /** SAGA and MSG: the action target, `http(s)://host:port/path` or `grpc(s)://host:port/pkg.Service/Method`. */
  action?: string;
  /** SAGA: the compensation target. */
  compensate?: string;
  /** TCC: the Try, Confirm and Cancel targets. */
  try?: string;
  confirm?: string;
  cancel?: string;
  /** MSG: the back-check target (`query_prepared`). */
  queryPrepared?: string;
  /**
   * MSG, optional, a test-only endpoint of the service: a POST with the gid in `accord-gid` and
   * the payload as body runs the message's local transaction (`barrier.msg(gid, …)`) and answers
   * 2xx when it committed, anything else when it did not. Enables the back-check rules after a
   * commit and against a late commit.
   */
  localTransaction?: string;
  /** The payload of every call (bytes, a string, or JSON); the service must accept it. Default `{}`. */
  payload?: PayloadInput;
  /**
   * SAGA and TCC, optional: a payload the service refuses as a business failure (an overdraft,
   * say). Enables the rules for a refused action or try.
   */
  refusePayload?: PayloadInput;
  /**
   * Optional: a URL of the service that counts effects, so the kit can see a second effect, not
   * only a status. `GET <probe>?gid=<gid>&branch_id=<id>` must answer 200 with
   * `{"effects": {"<op>": n, …}}`: how many times the business work of each operation (action,
   * compensate, try, confirm, cancel) took effect for that gid and branch; a missing op counts 0.
   */
  probe?: string;
  /** Branch id sent in `accord-branch-id` (default "01"). */
  branchId?: string;
  /** Start of every gid the kit makes (default "conformance-"); each situation gets a fresh gid. */
  gidPrefix?: string;
  /** Deadline of each call (default 10,000 ms, the coordinator's default branch_timeout). */
  timeoutMs?: number;
  /** For https:// and grpcs:// targets. */
  tls?: ConformanceTls;
  /** Told each rule as soon as it is decided (a CLI prints progress with it). */
  onRule?: (rule: RuleResult) => void;
}

/** One branch call the kit made, and what came back. */
export interface ConformanceCall {
  op: string;
  gid: string;
  branchId: string;
  target: string;
  answer: Answer;
}

export type RuleStatus = "pass" | "fail" | "skip";

export interface RuleResult {
  /** Stable name, e.g. "duplicate-action-no-effect". */
  id: string;
  /** What the contract asks, in one sentence. */
  rule: string;
  status: RuleStatus;
  /** What was seen; for a failure also what the coordinator would make of it; for a skip, why. */
  detail: string;
  /** The branch calls the rule judged. */
  calls: ConformanceCall[];
}

export interface ConformanceReport {
  mode: ConformanceMode;
  /** True when no rule failed (skipped rules do not count against it). */
  ok: boolean;
  passed: number;
  failed: number;
  skipped: number;
  rules: RuleResult[];
}

type Effects = Record<string, number>;

/** Ops and their roles in each mode: the one that does the work, and the one that undoes it. */
interface Shape {
  mode: ConformanceMode;
  doOp: "action" | "try";
  undoOp?: "compensate" | "cancel";
  /** TCC's confirm: a second phase that keeps the work. */
  keepOp?: "confirm";
  targets: Record<string, string>;
}

const FENCE = 1;
const NEEDS_PROBE = "needs a probe: a status alone cannot show how often the work took effect";
const CONCURRENT_CALLS = 3;

const describe = (a: Answer) => `${a.text}${a.detail ? ` (${JSON.stringify(a.detail)})` : ""}`;

/** What the coordinator (or, for a TCC try, the application's SDK) makes of an answer. */
function meaning(answer: Answer, op: string, mode: ConformanceMode): string {
  if (!answer.inContract) return "a status outside the branch contract: the coordinator reads it as an error and retries it for ever, though it can never change";
  switch (answer.outcome) {
    case "success":
      return op === "query" ? "SUCCESS: the coordinator would run the message's branches" : "SUCCESS: the coordinator goes on as if it took effect";
    case "failure":
      if (op === "action" && mode === "saga") return "FAILURE: the coordinator rolls the saga back";
      if (op === "try") return "FAILURE: the application's SDK cancels the transaction";
      if (op === "query") return "FAILURE: the message ends FAILED";
      return `FAILURE: a ${op} must succeed, so the coordinator logs it and retries until a 2xx`;
    case "ongoing":
      return "ONGOING: the coordinator asks again after retry.ongoing_interval";
    case "error":
      return "an error: the coordinator retries with backoff until a 2xx";
  }
}

function shapeOf(options: BranchConformanceOptions): Shape {
  const mode = options.mode ?? "saga";
  const need = (names: (keyof BranchConformanceOptions)[]) => {
    const targets: Record<string, string> = {};
    for (const name of names) {
      const value = options[name];
      if (typeof value !== "string" || value === "") throw new ConformanceOptionsError(`mode ${mode} needs the ${name} target`);
      parseBranchTarget(value, name);
      targets[name] = value;
    }
    return targets;
  };
  switch (mode) {
    case "saga":
      return { mode, doOp: "action", undoOp: "compensate", targets: need(["action", "compensate"]) };
    case "tcc":
      return { mode, doOp: "try", undoOp: "cancel", keepOp: "confirm", targets: need(["try", "confirm", "cancel"]) };
    case "msg":
      if (options.refusePayload !== undefined) throw new ConformanceOptionsError("refusePayload does not apply to mode msg: a message's actions must succeed");
      return { mode, doOp: "action", targets: { ...need(["action", "queryPrepared"]), ...(options.localTransaction ? { localTransaction: options.localTransaction } : {}) } };
    default:
      throw new ConformanceOptionsError(`unknown mode ${JSON.stringify(mode)} (use saga, tcc or msg)`);
  }
}

class Session {
  readonly calls: ConformanceCall[] = [];
  readonly rules: RuleResult[] = [];
  readonly #payload: Uint8Array;
  readonly #branchId: string;
  readonly #traceparents = new Map<string, string>();

  constructor(
    readonly shape: Shape,
    readonly options: BranchConformanceOptions,
    readonly caller: Caller,
  ) {
    this.#payload = encodePayload(options.payload ?? {});
    this.#branchId = options.branchId ?? "01";
  }

  get probing(): boolean {
    return this.options.probe !== undefined;
  }

  newGid(situation: string): string {
    return `${this.options.gidPrefix ?? "conformance-"}${Date.now().toString(36)}-${randomBytes(4).toString("hex")}-${situation}`;
  }

  /** Calls one operation of the branch as the coordinator would. */
  async call(op: string, gid: string, payload: Uint8Array = this.#payload): Promise<ConformanceCall> {
    const query = op === "query";
    const target = this.shape.targets[query ? "queryPrepared" : op]!;
    const branchId = query ? "00" : this.#branchId;
    let traceparent = this.#traceparents.get(gid);
    if (!traceparent) this.#traceparents.set(gid, (traceparent = `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`));
    const answer = await this.caller.call(target, query ? new Uint8Array() : payload, {
      gid,
      mode: this.shape.mode,
      branchId,
      op,
      // The application's SDK calls a TCC try, without a fence; everything else comes from the coordinator.
      fence: op === "try" ? undefined : FENCE,
      traceparent,
    });
    const call = { op, gid, branchId, target, answer };
    this.calls.push(call);
    return call;
  }

  /** The probe's counts for `gid`, or why they could not be read. */
  async effects(gid: string): Promise<{ counts: Effects } | { error: string }> {
    const url = new URL(this.options.probe!);
    url.searchParams.set("gid", gid);
    url.searchParams.set("branch_id", this.#branchId);
    const result = await this.caller.request("GET", url.href, undefined, { accept: "application/json" });
    if ("error" in result) return { error: `the probe ${url.href} did not answer: ${result.error}` };
    if (result.status !== 200) return { error: `the probe ${url.href} answered HTTP ${result.status} ${JSON.stringify(result.body.slice(0, 200))}` };
    let parsed: unknown;
    try {
      parsed = JSON.parse(result.body);
    } catch (error) {
      return { error: `the probe's answer is not JSON (${(error as Error).message}): ${JSON.stringify(result.body.slice(0, 200))}` };
    }
    const effects = (parsed as { effects?: unknown } | null)?.effects;
    if (typeof effects !== "object" || effects === null || Array.isArray(effects)) return { error: `the probe must answer {"effects": {"<op>": n}}, got ${JSON.stringify(parsed).slice(0, 200)}` };
    const counts: Effects = {};
    for (const [op, n] of Object.entries(effects)) {
      if (!Number.isInteger(n) || (n as number) < 0) return { error: `the probe's count for ${op} is not a non-negative integer: ${JSON.stringify(n)}` };
      counts[op] = n as number;
    }
    return { counts };
  }

  /** Runs the MSG local-transaction hook for `gid`; resolves with the answer's text and whether it committed. */
  async localTransaction(gid: string): Promise<{ committed: boolean; text: string }> {
    const result = await this.caller.request("POST", this.shape.targets.localTransaction!, this.#payload, { "content-type": "application/json", "accord-gid": gid });
    if ("error" in result) return { committed: false, text: `no answer: ${result.error}` };
    const committed = result.status >= 200 && result.status < 300;
    return { committed, text: `HTTP ${result.status}${!committed && result.body ? ` (${JSON.stringify(result.body.trim().slice(0, 200))})` : ""}` };
  }

  record(id: string, rule: string, status: RuleStatus, detail: string, calls: ConformanceCall[]): void {
    const result = { id, rule, status, detail, calls };
    this.rules.push(result);
    this.options.onRule?.(result);
  }

  /** A rule on the outcome of calls: each must be one of `expected`. */
  statusRule(id: string, rule: string, calls: ConformanceCall[], expected: Outcome[], hint = ""): boolean {
    const wrong = calls.find((c) => !expected.includes(c.answer.outcome) || !c.answer.inContract);
    if (!wrong) {
      this.record(id, rule, "pass", `answered ${[...new Set(calls.map((c) => c.answer.text))].join(", ")}`, calls);
      return true;
    }
    const which = calls.length > 1 ? `call ${calls.indexOf(wrong) + 1} of ${calls.length} ` : "";
    this.record(id, rule, "fail", `${which}answered ${describe(wrong.answer)}: ${meaning(wrong.answer, wrong.op, this.shape.mode)}${hint ? `; ${hint}` : ""} (gid ${wrong.gid})`, calls);
    return false;
  }

  /** A rule on the probe's counts after `calls`; skipped without a probe. */
  async effectRule(id: string, rule: string, gid: string, expected: Effects, calls: ConformanceCall[], hint: string): Promise<void> {
    if (!this.probing) return this.record(id, rule, "skip", NEEDS_PROBE, calls);
    const seen = await this.effects(gid);
    if ("error" in seen) return this.record(id, rule, "fail", seen.error, calls);
    const counts = (effects: Effects) =>
      Object.keys(expected)
        .map((op) => `${op} ${effects[op] ?? 0}`)
        .join(", ");
    const wrong = Object.entries(expected).some(([op, n]) => (seen.counts[op] ?? 0) !== n);
    if (!wrong) return this.record(id, rule, "pass", `the probe counts ${counts(seen.counts)}`, calls);
    this.record(id, rule, "fail", `the probe counts ${counts(seen.counts)} for gid ${gid}, expected ${counts(expected)}: ${hint}`, calls);
  }

  skip(id: string, rule: string, why: string): void {
    this.record(id, rule, "skip", why, []);
  }
}

const BARRIER_HINT = "put the operation behind the barrier (barrier.call), which records (gid, branch, op) with the business writes";

/** Action (or try), then the same again, then each second-phase op twice on the same gid. */
async function duplicateSituation(s: Session, secondPhase: "compensate" | "cancel" | "confirm" | undefined, reportFirstPhase: boolean): Promise<void> {
  const { doOp } = s.shape;
  const gid = s.newGid(secondPhase ? `then-${secondPhase}` : "duplicate");
  const first = await s.call(doOp, gid);
  const firstOk = first.answer.outcome === "success" && first.answer.inContract;
  const afterFirst = s.probing && firstOk ? await s.effects(gid) : undefined;
  const second = await s.call(doOp, gid);
  if (reportFirstPhase) {
    s.statusRule(`${doOp}-2xx`, `a${doOp === "action" ? "n" : ""} ${doOp} answers 2xx`, [first], ["success"]);
    const precondition = `the first ${doOp} did not answer 2xx (see ${doOp}-2xx)`;
    if (!firstOk) {
      s.skip(`${doOp}-effect`, `the ${doOp} takes effect once`, precondition);
      s.skip(`duplicate-${doOp}-2xx`, `a repeated ${doOp} (same gid, branch and op) answers 2xx again`, precondition);
      s.skip(`duplicate-${doOp}-no-effect`, `a repeated ${doOp} has no second effect`, precondition);
    } else {
      // The first count was read before the repeat went out; report it now, in rule order.
      const rule = `the ${doOp} takes effect once`;
      if (!afterFirst) s.record(`${doOp}-effect`, rule, "skip", NEEDS_PROBE, [first]);
      else if ("error" in afterFirst) s.record(`${doOp}-effect`, rule, "fail", afterFirst.error, [first]);
      else if ((afterFirst.counts[doOp] ?? 0) === 1) s.record(`${doOp}-effect`, rule, "pass", `the probe counts ${doOp} 1`, [first]);
      else s.record(`${doOp}-effect`, rule, "fail", `the probe counts ${doOp} ${afterFirst.counts[doOp] ?? 0} for gid ${gid} after one ${doOp} that answered 2xx, expected 1 (is the probe counting this service's effects?)`, [first]);
      s.statusRule(`duplicate-${doOp}-2xx`, `a repeated ${doOp} (same gid, branch and op) answers 2xx again`, [second], ["success"]);
      await s.effectRule(`duplicate-${doOp}-no-effect`, `a repeated ${doOp} has no second effect`, gid, { [doOp]: 1 }, [first, second], `the ${doOp} took effect twice; ${BARRIER_HINT}`);
    }
  }
  if (!secondPhase) return;
  const once = await s.call(secondPhase, gid);
  const precondition = `the ${doOp} of this gid did not answer 2xx (see ${doOp}-2xx)`;
  const title = secondPhase === "confirm" ? "a confirm after a try answers 2xx" : `a ${secondPhase} after the ${doOp} answers 2xx`;
  const effectTitle = secondPhase === "confirm" ? "the confirm takes effect once" : `the ${secondPhase} undoes the ${doOp} once`;
  if (!firstOk) {
    for (const [id, rule] of [
      [`${secondPhase}-2xx`, title],
      [`${secondPhase}-effect`, effectTitle],
      [`duplicate-${secondPhase}-2xx`, `a repeated ${secondPhase} answers 2xx again`],
      [`duplicate-${secondPhase}-no-effect`, `a repeated ${secondPhase} has no second effect`],
    ] as const)
      s.skip(id, rule, precondition);
    return;
  }
  const onceOk = s.statusRule(`${secondPhase}-2xx`, title, [once], ["success"]);
  await s.effectRule(`${secondPhase}-effect`, effectTitle, gid, { [secondPhase]: 1 }, [first, second, once], `the ${secondPhase} did not take effect exactly once`);
  const again = await s.call(secondPhase, gid);
  if (!onceOk) {
    s.skip(`duplicate-${secondPhase}-2xx`, `a repeated ${secondPhase} answers 2xx again`, `the first ${secondPhase} did not answer 2xx (see ${secondPhase}-2xx)`);
    s.skip(`duplicate-${secondPhase}-no-effect`, `a repeated ${secondPhase} has no second effect`, `the first ${secondPhase} did not answer 2xx (see ${secondPhase}-2xx)`);
    return;
  }
  s.statusRule(`duplicate-${secondPhase}-2xx`, `a repeated ${secondPhase} answers 2xx again`, [again], ["success"]);
  await s.effectRule(`duplicate-${secondPhase}-no-effect`, `a repeated ${secondPhase} has no second effect`, gid, { [secondPhase]: 1 }, [once, again], `the ${secondPhase} took effect twice; ${BARRIER_HINT}`);
}

/** Several identical calls at once, as when a retry overtakes a slow first attempt. */
async function concurrentSituation(s: Session): Promise<void> {
  const { doOp, undoOp } = s.shape;
  const gid = s.newGid("concurrent");
  const calls = await Promise.all(Array.from({ length: CONCURRENT_CALLS }, () => s.call(doOp, gid)));
  const rule = `${CONCURRENT_CALLS} identical ${doOp} calls at once answer 2xx (or a retryable 5xx, but at least one 2xx)`;
  const wrong = calls.find((c) => !c.answer.inContract || (c.answer.outcome !== "success" && c.answer.outcome !== "error"));
  if (wrong) s.statusRule(`concurrent-${doOp}-2xx`, rule, [wrong], ["success", "error"]);
  else if (!calls.some((c) => c.answer.outcome === "success")) s.record(`concurrent-${doOp}-2xx`, rule, "fail", `none answered 2xx: ${calls.map((c) => describe(c.answer)).join(", ")}`, calls);
  else s.record(`concurrent-${doOp}-2xx`, rule, "pass", `answered ${calls.map((c) => c.answer.text).join(", ")}`, calls);
  const effectTitle = `${CONCURRENT_CALLS} identical ${doOp} calls at once take effect once`;
  if (!calls.some((c) => c.answer.outcome === "success")) s.skip(`concurrent-${doOp}-no-effect`, effectTitle, `none of the calls answered 2xx (see concurrent-${doOp}-2xx)`);
  else await s.effectRule(`concurrent-${doOp}-no-effect`, effectTitle, gid, { [doOp]: 1 }, calls, `concurrent duplicates each took effect; the barrier's row (gid, branch, op) is inserted in the business's local transaction, so only one commits`);
  // Leave the service as it was: undo what the situation did (its answer is only checked for the outcome-codes rule).
  if (undoOp) await s.call(undoOp, gid);
}

/** A compensation (or cancel) for an action that never ran. */
async function nullCompensationSituation(s: Session): Promise<void> {
  const { doOp, undoOp } = s.shape;
  if (!undoOp) return;
  const gid = s.newGid(`null-${undoOp}`);
  const call = await s.call(undoOp, gid);
  s.statusRule(
    `null-${undoOp}-2xx`,
    `a ${undoOp} whose ${doOp} never ran answers 2xx (null ${undoOp === "compensate" ? "compensation" : undoOp})`,
    [call],
    ["success"],
    `the coordinator sends a ${undoOp} for every ${doOp} that may have run (one that timed out, say), and only a 2xx ends it; with nothing to undo, answer 2xx (the barrier does)`,
  );
  await s.effectRule(`null-${undoOp}-no-effect`, `a ${undoOp} whose ${doOp} never ran undoes nothing`, gid, { [doOp]: 0, [undoOp]: 0 }, [call], `it undid an ${doOp} that never ran; the barrier records a null ${undoOp} and does nothing`);
}

/** The compensation arrives first, then the action it was meant for (a delayed first attempt). */
async function hangingSituation(s: Session): Promise<void> {
  const { doOp, undoOp } = s.shape;
  if (!undoOp) return;
  const gid = s.newGid("late");
  const rule = `a${doOp === "action" ? "n" : ""} ${doOp} arriving after its ${undoOp} is refused (409) or has no effect (no hanging)`;
  const early = await s.call(undoOp, gid);
  const late = await s.call(doOp, gid);
  if (early.answer.outcome !== "success" || !early.answer.inContract) {
    // The coordinator would retry that compensation after the late action, which could then undo
    // it: the situation this rule is about did not happen, and null-…-2xx already failed.
    return s.record("no-hanging", rule, "skip", `could not be staged: the ${undoOp} before the ${doOp} answered ${describe(early.answer)}, not 2xx (see null-${undoOp}-2xx)`, [early, late]);
  }
  if (s.probing) {
    return s.effectRule("no-hanging", rule, gid, { [doOp]: 0, [undoOp]: 0 }, [early, late], `the late ${doOp} took effect after its ${undoOp} had already run, and nothing will ever undo it; the barrier refuses it`);
  }
  if (late.answer.outcome === "failure") return s.record("no-hanging", rule, "pass", `the late ${doOp} answered ${late.answer.text}`, [early, late]);
  s.record("no-hanging", rule, "skip", `the late ${doOp} answered ${describe(late.answer)}; whether it took effect needs a probe`, [early, late]);
}

/** An action (or try) the service refuses as a business failure, then its compensation. */
async function refusalSituation(s: Session): Promise<void> {
  const { doOp, undoOp } = s.shape;
  if (!undoOp) return;
  const ids = { refused: `refused-${doOp}-409`, undo: `refused-${doOp}-${undoOp}-2xx`, effect: `refused-${doOp}-no-effect` };
  const titles = {
    refused: `a${doOp === "action" ? "n" : ""} ${doOp} the service refuses answers 409`,
    undo: `the ${undoOp} of a refused ${doOp} answers 2xx`,
    effect: `a refused ${doOp} and its ${undoOp} leave no effect`,
  };
  if (s.options.refusePayload === undefined) {
    for (const key of ["refused", "undo", "effect"] as const) s.skip(ids[key], titles[key], "needs a refusal payload (refusePayload / --refuse-payload)");
    return;
  }
  const gid = s.newGid("refused");
  const payload = encodePayload(s.options.refusePayload);
  const refused = await s.call(doOp, gid, payload);
  s.statusRule(ids.refused, titles.refused, [refused], ["failure"]);
  // The coordinator compensates an action that failed too: it may have run before refusing.
  const undo = await s.call(undoOp, gid, payload);
  s.statusRule(ids.undo, titles.undo, [undo], ["success"], `the coordinator ${undoOp === "compensate" ? "compensates a refused action" : "cancels after a refused try"} too, since it may have run before refusing: with nothing to undo, answer 2xx`);
  await s.effectRule(ids.effect, titles.effect, gid, { [doOp]: 0, [undoOp]: 0 }, [refused, undo], `a refusal must roll its own work back, and the ${undoOp} of a refused ${doOp} is a null ${undoOp}`);
}

/** MSG back-checks: without a local transaction, after one, and against a late one. */
async function querySituations(s: Session): Promise<void> {
  const gid = s.newGid("query");
  const calls = [await s.call("query", gid), await s.call("query", gid)];
  s.statusRule(
    "query-uncommitted-409",
    "a back-check of a message whose local transaction never ran answers 409, and 409 again when asked again",
    calls,
    ["failure"],
  );
  const committedTitle = "a back-check after the local transaction committed answers 2xx, and 2xx again";
  const lateTitle = "a local transaction after a back-check answered 409 cannot commit, and the back-check still answers 409";
  if (!s.shape.targets.localTransaction) {
    s.skip("query-committed-2xx", committedTitle, "needs a local-transaction hook (localTransaction / --local-transaction)");
    s.skip("late-local-transaction-refused", lateTitle, "needs a local-transaction hook (localTransaction / --local-transaction)");
    return;
  }
  const committedGid = s.newGid("committed");
  const local = await s.localTransaction(committedGid);
  if (!local.committed) {
    s.record("query-committed-2xx", committedTitle, "fail", `the local-transaction hook answered ${local.text} for gid ${committedGid}, so there was nothing to check`, []);
  } else {
    s.statusRule("query-committed-2xx", committedTitle, [await s.call("query", committedGid), await s.call("query", committedGid)], ["success"]);
  }
  const lateGid = s.newGid("late-local");
  const before = await s.call("query", lateGid);
  const lateLocal = await s.localTransaction(lateGid);
  const after = await s.call("query", lateGid);
  if (lateLocal.committed) {
    return s.record(
      "late-local-transaction-refused",
      lateTitle,
      "fail",
      `the local transaction committed (${lateLocal.text}) after the back-check answered ${before.answer.text} for gid ${lateGid}: the message failed, yet its local work is in place; the barrier's queryPrepared takes the row so a late barrier.msg fails`,
      [before, after],
    );
  }
  s.statusRule("late-local-transaction-refused", lateTitle, [before, after], ["failure"]);
}

/** Every answer, across all situations, must be a status the contract defines. */
function outcomeCodesRule(s: Session): void {
  const rule = "every answer is 2xx, 409, 425 or a retryable error (5xx; gRPC OK, ABORTED, FAILED_PRECONDITION, or UNKNOWN/INTERNAL/UNAVAILABLE/…)";
  const outside = s.calls.filter((c) => !c.answer.inContract);
  if (outside.length === 0) return s.record("outcome-codes", rule, "pass", `all ${s.calls.length} calls answered within the contract`, s.calls);
  const seen = [...new Set(outside.map((c) => `${c.op} → ${c.answer.text}`))];
  s.record(
    "outcome-codes",
    rule,
    "fail",
    `${seen.join("; ")}: a status outside the contract is read as an error and retried for ever by the coordinator, though it can never change (answer 409 to refuse, 5xx for a passing problem)`,
    outside,
  );
}

function requireHttpUrl(name: string, raw: string): void {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    // reported below, with the name of the option
  }
  if (url?.protocol !== "http:" && url?.protocol !== "https:") throw new ConformanceOptionsError(`${name}: "${raw}" must be an http(s) URL`);
}

/**
 * Checks a branch service against the branch contract and the barrier's guarantees: it calls the
 * service the way the coordinator does (same headers, POST body = payload, gRPC targets too) in
 * scripted situations — a duplicate action, concurrent duplicates, a compensation before or
 * without its action, a refused action, MSG back-checks — each under a fresh gid, and reports
 * rule by rule what it saw. Run it against a test deployment: the calls take real effect.
 *
 * Throws ConformanceOptionsError for unusable options (a missing or malformed target); a service that does
 * not answer fails rules, it does not throw.
 * @example
 * const report = await checkBranchConformance({ action: `${svc}/debit`, compensate: `${svc}/debit-undo`, payload: { account: "alice", amount: 1 }, probe: `${svc}/probe` });
 * if (!report.ok) console.log(formatConformanceReport(report));
 */
export async function checkBranchConformance(options: BranchConformanceOptions): Promise<ConformanceReport> {
  const shape = shapeOf(options);
  if (options.probe !== undefined) requireHttpUrl("probe", options.probe);
  if (shape.targets.localTransaction) requireHttpUrl("localTransaction", shape.targets.localTransaction);
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new ConformanceOptionsError(`timeoutMs must be a positive number of milliseconds (got ${timeoutMs})`);
  const caller = createCaller({ timeoutMs, tls: options.tls });
  const s = new Session(shape, options, caller);
  try {
    if (shape.mode === "tcc") {
      await duplicateSituation(s, "confirm", true);
      await duplicateSituation(s, "cancel", false);
    } else {
      await duplicateSituation(s, shape.undoOp, true);
    }
    await concurrentSituation(s);
    await nullCompensationSituation(s);
    await hangingSituation(s);
    await refusalSituation(s);
    if (shape.mode === "msg") await querySituations(s);
    outcomeCodesRule(s);
  } finally {
    caller.close();
  }
  const count = (status: RuleStatus) => s.rules.filter((r) => r.status === status).length;
  return { mode: shape.mode, ok: count("fail") === 0, passed: count("pass"), failed: count("fail"), skipped: count("skip"), rules: s.rules };
}

/** One line per rule (status, id, what was seen), then the totals: what the CLI prints. */
export function formatConformanceReport(report: ConformanceReport): string {
  const width = Math.max(...report.rules.map((r) => r.id.length));
  return [...report.rules.map(formatRule(width)), "", formatConformanceSummary(report)].join("\n");
}

/** The last line of a report: the totals, and the failed rules by name. */
export function formatConformanceSummary(report: ConformanceReport): string {
  const failed = report.rules.filter((r) => r.status === "fail").map((r) => r.id);
  return `${report.mode}: ${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped${failed.length ? ` — failed: ${failed.join(", ")}` : ""}`;
}

/** One rule as a report line: `FAIL  duplicate-action-no-effect  a repeated action has no second effect — …`. */
export const formatRule =
  (width = 0) =>
  (r: RuleResult): string =>
    `${r.status.toUpperCase().padEnd(4)}  ${r.id.padEnd(width)}  ${r.rule}\n      ${" ".repeat(width)}  ${r.detail}`;
