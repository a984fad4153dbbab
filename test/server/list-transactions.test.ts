import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { BranchOp, BranchStatus, Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { backends } from "../support/stores.js";
import { branchRecord, createTx, txRecord } from "../store/fixtures.js";

for (const backend of backends()) {
  describe(`GetTransaction and ListTransactions end to end (${backend.name})`, () => {
    let coordinator: RunningCoordinator;
    let client: Client<typeof CoordinatorService>;
    const base = 1_750_000_000_000;

    beforeAll(async () => {
      coordinator = await startTestCoordinator(await backend.freshUrl());
      client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
      for (let i = 0; i < 12; i++) {
        const gid = `shop-${String(i).padStart(2, "0")}`;
        await createTx(coordinator.store, 
          txRecord(gid, {
            createdAt: base + i * 1000,
            mode: i % 3 === 0 ? "tcc" : "saga",
            status: i === 4 ? "failed" : "submitted",
            options: JSON.stringify({ concurrent: true, branchTimeout: "3s" }),
          }),
          [branchRecord(gid, 1, "action"), branchRecord(gid, 1, "compensate")],
        );
      }
      await createTx(coordinator.store, txRecord("other-1", { createdAt: base }), []);
    });
    afterAll(async () => {
      await coordinator.stop();
      await backend.cleanup();
    });

    it("returns a stored transaction with its branches and options", async () => {
      const { transaction } = await client.getTransaction({ gid: "shop-04" });
      expect(transaction).toMatchObject({ gid: "shop-04", mode: Mode.SAGA, status: TransactionStatus.FAILED });
      expect(transaction?.options?.concurrent).toBe(true);
      expect(transaction?.options?.branchTimeout?.seconds).toBe(3n);
      expect(transaction?.branches.map((b) => [b.branchId, b.op, b.status])).toEqual([
        ["01", BranchOp.ACTION, BranchStatus.PENDING],
        ["01", BranchOp.COMPENSATE, BranchStatus.PENDING],
      ]);
      expect(new TextDecoder().decode(transaction?.branches[0]?.payload)).toBe('{"n":1}');
    });

    it("pages through every match newest first without gaps or repeats", async () => {
      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await client.listTransactions({ gidPrefix: "shop-", pageSize: 5, pageToken });
        seen.push(...page.transactions.map((t) => t.gid));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken);
      expect(pages).toBe(3);
      expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => `shop-${String(11 - i).padStart(2, "0")}`));
    });

    it("filters by status, mode and creation time, with branches only on request", async () => {
      const failed = await client.listTransactions({ statuses: [TransactionStatus.FAILED] });
      expect(failed.transactions.map((t) => t.gid)).toEqual(["shop-04"]);
      expect(failed.transactions[0]?.branches).toEqual([]);
      const tcc = await client.listTransactions({ modes: [Mode.TCC], includeBranches: true });
      expect(tcc.transactions.map((t) => t.gid)).toEqual(["shop-09", "shop-06", "shop-03", "shop-00"]);
      expect(tcc.transactions[0]?.branches).toHaveLength(2);
      const window = await client.listTransactions({
        createdAfter: timestampFromMs(base + 2000),
        createdBefore: timestampFromMs(base + 5000),
      });
      expect(window.transactions.map((t) => t.gid)).toEqual(["shop-04", "shop-03", "shop-02"]);
    });

    it("rejects a forged page token and an out-of-range page size, naming the field", async () => {
      await expect(client.listTransactions({ pageToken: "not-a-token" })).rejects.toMatchObject({
        code: Code.InvalidArgument,
        rawMessage: expect.stringContaining("page_token"),
      });
      await expect(client.listTransactions({ pageSize: 501 })).rejects.toMatchObject({
        code: Code.InvalidArgument,
        rawMessage: expect.stringContaining("page_size"),
      });
      await expect(client.listTransactions({ statuses: [99 as TransactionStatus] })).rejects.toMatchObject({
        code: Code.InvalidArgument,
        rawMessage: expect.stringContaining("statuses[0]"),
      });
    });
  });
}
