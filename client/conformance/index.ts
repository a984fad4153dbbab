export {
  checkBranchConformance,
  formatConformanceReport,
  formatConformanceSummary,
  formatRule,
  type BranchConformanceOptions,
  type ConformanceCall,
  type ConformanceMode,
  type ConformanceReport,
  type RuleResult,
  type RuleStatus,
} from "./conformance.js";
export { ConformanceOptionsError, type Answer as ConformanceAnswer, type ConformanceTls, type Outcome as ConformanceOutcome } from "./caller.js";
