// Branch services for the benchmarks, in their own process so their CPU is not the coordinator's.
// POST /ok* answers 200, /ongoing* answers 425 (ONGOING). Prints its port on stdout.
import { createServer } from "node:http";

const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(req.url?.startsWith("/ongoing") ? 425 : 200, { "content-length": "0" });
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  console.log(JSON.stringify({ port: address && typeof address === "object" ? address.port : 0 }));
});
process.on("SIGTERM", () => process.exit(0));
