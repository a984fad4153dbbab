import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { INITIAL_STATUS, IllegalTransitionError, TRANSITIONS, canTransition, transitionOp } from "../../server/engine/transitions.js";
import { MODES, TRANSACTION_STATUSES, type Mode } from "../../server/store/index.js";

// The transition table in code against the one in docs/architecture.md ("Transitions"): the same
// set, both ways, so neither can change without the other.

const MODE_NAMES: Record<string, Mode[]> = { SAGA: ["saga"], "TCC, XA": ["tcc", "xa"], TCC: ["tcc"], XA: ["xa"], MSG: ["msg"] };

function documentedTransitions() {
  const doc = readFileSync(new URL("../../docs/architecture.md", import.meta.url), "utf8");
  const section = doc.slice(doc.indexOf("### Transitions"), doc.indexOf("### Branch operations"));
  const rows = section
    .split("\n")
    .filter((line) => line.startsWith("| ") && !line.startsWith("| mode") && !line.startsWith("|---"))
    .map((line) => line.split("|").map((cell) => cell.trim()));
  expect(rows.length).toBeGreaterThan(10);
  const initial = new Set<string>();
  const moves = new Set<string>();
  for (const [, modeCell, from, to] of rows) {
    const modes = MODE_NAMES[modeCell!];
    expect(modes, `mode "${modeCell}" in the docs`).toBeDefined();
    for (const mode of modes!) (from === "(new)" ? initial : moves).add(from === "(new)" ? `${mode}:${to}` : `${mode}:${from}->${to}`);
  }
  return { initial, moves };
}

describe("the transition table", () => {
  it("is the state machine docs/architecture.md describes, no more and no less", () => {
    const documented = documentedTransitions();
    const coded = new Set(MODES.flatMap((mode) => Object.entries(TRANSITIONS[mode]).flatMap(([from, tos]) => tos!.map((to) => `${mode}:${from}->${to}`))));
    expect([...coded].sort()).toEqual([...documented.moves].sort());
    expect(MODES.map((mode) => `${mode}:${INITIAL_STATUS[mode]}`).sort()).toEqual([...documented.initial].sort());
  });

  it("never leaves a final status", () => {
    for (const mode of MODES) for (const from of ["succeeded", "failed"] as const) expect(TRANSITIONS[mode][from]).toBeUndefined();
  });

  it("builds a compare-and-set only for listed transitions, and refuses the rest", () => {
    for (const mode of MODES) {
      for (const from of TRANSACTION_STATUSES) {
        for (const to of TRANSACTION_STATUSES) {
          const build = () => transitionOp("g", mode, from, to, { lastError: "" }, "me");
          if (canTransition(mode, from, to)) {
            expect(build()).toMatchObject({ kind: "transaction", gid: "g", expect: { owner: "me" }, transition: { from, to } });
          } else {
            expect(build, `${mode}: ${from} -> ${to}`).toThrow(IllegalTransitionError);
          }
        }
      }
    }
  });
});
