import { expect, it } from "vitest";
import { Semaphore } from "../../server/engine/semaphore.js";

// A bulkhead whose limit a config reload changes while it is in use.

it("lets waiters in at once when the limit grows", async () => {
  const semaphore = new Semaphore(1);
  expect(semaphore.tryAcquire()).toBe(true);
  const entered: number[] = [];
  const waiters = [1, 2, 3].map((n) => semaphore.acquire().then(() => entered.push(n)));
  semaphore.setLimit(3);
  await Promise.all(waiters.slice(0, 2));
  expect(entered).toEqual([1, 2]);
  expect(semaphore.inUse).toBe(3);
  semaphore.release();
  await waiters[2];
  expect(entered).toEqual([1, 2, 3]);
});

it("takes nothing back when the limit shrinks below what is in use: releases pay the excess off first", async () => {
  const semaphore = new Semaphore(3);
  for (let i = 0; i < 3; i++) expect(semaphore.tryAcquire()).toBe(true);
  semaphore.setLimit(1);
  expect(semaphore.limit).toBe(1);
  expect(semaphore.inUse).toBe(3);
  expect(semaphore.tryAcquire()).toBe(false);
  let entered = false;
  const waiter = semaphore.acquire().then(() => (entered = true));
  semaphore.release();
  semaphore.release();
  await Promise.resolve();
  expect(entered).toBe(false);
  expect(semaphore.inUse).toBe(1);
  semaphore.release();
  await waiter;
  expect(entered).toBe(true);
  expect(semaphore.inUse).toBe(1);
  semaphore.release();
  expect(semaphore.inUse).toBe(0);
  expect(semaphore.tryAcquire()).toBe(true);
  expect(semaphore.tryAcquire()).toBe(false);
});
