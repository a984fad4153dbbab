import type { ServiceImpl } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { newGid } from "../engine/gid.js";
import type { Mode, Store, TransactionStatus } from "../store/index.js";
import { invalidArgument, transactionNotFound } from "./errors.js";
import { modes, transactionStatuses } from "./enum-mapping.js";
import { decodePageToken, encodePageToken } from "./page-token.js";
import { toTransaction } from "./transaction-mapper.js";
import { optionalGidPrefix, requireGid } from "./validation.js";

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;

/** The read-only CoordinatorService RPCs: they only map between the API and the store. */
export function createCoordinatorQueries(
  store: Store,
): Pick<ServiceImpl<typeof CoordinatorService>, "newGid" | "getTransaction" | "listTransactions"> {
  return {
    async newGid() {
      return { gid: newGid() };
    },

    async getTransaction(request) {
      const gid = requireGid(request.gid);
      const [found, actions] = await Promise.all([store.getTransaction(gid), store.getAdminActions(gid)]);
      if (!found) throw transactionNotFound(gid);
      return { transaction: toTransaction(found.transaction, found.branches, actions) };
    },

    async listTransactions(request) {
      if (request.pageSize < 0 || request.pageSize > MAX_PAGE_SIZE) {
        throw invalidArgument("page_size", `must be between 0 and ${MAX_PAGE_SIZE}`);
      }
      const limit = request.pageSize || DEFAULT_PAGE_SIZE;
      const gidPrefix = optionalGidPrefix(request.gidPrefix);
      const statuses = request.statuses.map((s, i) => {
        const status = transactionStatuses.fromProto(s);
        if (!status) throw invalidArgument(`statuses[${i}]`, `unknown status ${s}`);
        return status;
      }) satisfies TransactionStatus[];
      const modeFilter = request.modes.map((m, i) => {
        const mode = modes.fromProto(m);
        if (!mode) throw invalidArgument(`modes[${i}]`, `unknown mode ${m}`);
        return mode;
      }) satisfies Mode[];
      const after = decodePageToken(request.pageToken);
      const page = await store.listTransactions({
        statuses,
        modes: modeFilter,
        createdAfter: request.createdAfter ? timestampMs(request.createdAfter) : undefined,
        createdBefore: request.createdBefore ? timestampMs(request.createdBefore) : undefined,
        gidPrefix,
        stalledOnly: request.stalledOnly,
        limit,
        after,
      });
      const transactions = await Promise.all(
        page.transactions.map(async (t) => {
          if (!request.includeBranches) return toTransaction(t);
          const full = await store.getTransaction(t.gid);
          return toTransaction(t, full?.branches ?? []);
        }),
      );
      return { transactions, nextPageToken: page.next ? encodePageToken(page.next) : "" };
    },
  };
}
