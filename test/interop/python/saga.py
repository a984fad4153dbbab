"""A Python application of Accord, on Debian's python3-grpcio and python3-etcd3 with stubs made by
python3-grpc-tools (on PYTHONPATH). It finds a coordinator in etcd's standard gRPC naming keys,
dials it with a client certificate, serves a BranchService of its own over mutual TLS, submits
SAGAs whose steps call that service (and any HTTP targets given), and watches each to its end.
test/interop/python-client.test.ts runs it and reads the JSON report it prints on stdout.
"""

import argparse
import json
import sys
import threading
from concurrent import futures

import etcd3
import grpc

from accord.v1 import branch_pb2, branch_pb2_grpc
from accord.v1 import coordinator_pb2, coordinator_pb2_grpc
from accord.v1 import transaction_pb2

FINAL = {transaction_pb2.TRANSACTION_STATUS_SUCCEEDED, transaction_pb2.TRANSACTION_STATUS_FAILED}


class Branches(branch_pb2_grpc.BranchServiceServicer):
    """SAGA participant: refuses an action whose data is b"refuse", as a business refusal."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []

    def _record(self, method, request, context):
        headers = dict(context.invocation_metadata())
        with self.lock:
            self.calls.append({
                "method": method,
                "gid": headers.get("accord-gid", ""),
                "branchId": headers.get("accord-branch-id", ""),
                "op": headers.get("accord-op", ""),
                "mode": headers.get("accord-mode", ""),
                "fence": headers.get("accord-fence", ""),
                "data": request.data.decode(),
            })

    def Action(self, request, context):
        self._record("Action", request, context)
        if request.data == b"refuse":
            context.abort(grpc.StatusCode.ABORTED, "refused by the Python service")
        return branch_pb2.ActionResponse()

    def Compensate(self, request, context):
        self._record("Compensate", request, context)
        return branch_pb2.CompensateResponse()


def discover(endpoint, name, timeout):
    """Every NAME/<host:port> record: {"Op":0,"Addr":…,"Metadata":{…}} (etcd's naming format)."""
    host, port = endpoint.rsplit("//", 1)[-1].rsplit(":", 1)
    client = etcd3.client(host=host, port=int(port), timeout=timeout)
    try:
        found = []
        for value, meta in client.get_prefix(name + "/"):
            record = json.loads(value)
            found.append({"key": meta.key.decode(), "Addr": record["Addr"], "Metadata": record.get("Metadata")})
        return found
    finally:
        client.close()


def watch_to_end(stub, gid, timeout):
    """Statuses seen by WatchTransaction (each once, in order), and the final transaction."""
    seen, last = [], None
    for message in stub.WatchTransaction(coordinator_pb2.WatchTransactionRequest(gid=gid), timeout=timeout):
        last = message.transaction
        name = transaction_pb2.TransactionStatus.Name(last.status)
        if not seen or seen[-1] != name:
            seen.append(name)
    if last is None or last.status not in FINAL:
        raise RuntimeError(f"watch of {gid} ended before a final status: {seen}")
    return seen, last


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--etcd", required=True, help="etcd endpoint, http://host:port")
    parser.add_argument("--name", default="accord/v1/grpc", help="cluster.namingPrefix of the coordinators")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True, help="client certificate for the coordinator")
    parser.add_argument("--key", required=True)
    parser.add_argument("--server-cert", required=True, help="certificate of this branch service (names localhost)")
    parser.add_argument("--server-key", required=True)
    parser.add_argument("--http-action", required=True, help="an HTTP branch of the successful SAGA")
    parser.add_argument("--http-compensate", required=True)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    read = lambda path: open(path, "rb").read()
    ca, cert, key = read(args.ca), read(args.cert), read(args.key)

    branches = Branches()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    branch_pb2_grpc.add_BranchServiceServicer_to_server(branches, server)
    credentials = grpc.ssl_server_credentials([(read(args.server_key), read(args.server_cert))], root_certificates=ca, require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        target = f"grpcs://localhost:{port}/accord.v1.BranchService"
        found = discover(args.etcd, args.name, args.timeout)
        if not found:
            raise RuntimeError(f"no coordinator under {args.name}/ in etcd")
        chosen = found[0]
        if not (chosen["Metadata"] or {}).get("tls"):
            raise RuntimeError(f"{chosen['key']}: the coordinator does not speak TLS; this client only dials with a certificate")
        channel = grpc.secure_channel(chosen["Addr"], grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert))
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)

        # The coordinator sends a step's payload bytes unchanged as the request message, so the
        # payload of a BranchService step is an encoded ActionRequest (the same bytes decode as a
        # CompensateRequest); an HTTP step gets its payload as the body.
        def grpc_step(data):
            payload = branch_pb2.ActionRequest(data=data).SerializeToString()
            return transaction_pb2.Step(action=f"{target}/Action", compensate=f"{target}/Compensate", payload=payload)

        sagas = {
            "ok": [grpc_step(b"debit"), transaction_pb2.Step(action=args.http_action, compensate=args.http_compensate, payload=b'{"amount": 5}')],
            "refused": [grpc_step(b"debit"), grpc_step(b"refuse")],
        }
        results = {}
        for name, steps in sagas.items():
            gid = stub.NewGid(coordinator_pb2.NewGidRequest(), timeout=args.timeout).gid
            stub.Submit(coordinator_pb2.SubmitRequest(gid=gid, mode=transaction_pb2.MODE_SAGA, steps=steps, request_id=f"{gid}-submit"), timeout=args.timeout)
            seen, final = watch_to_end(stub, gid, args.timeout)
            results[name] = {
                "gid": gid,
                "watched": seen,
                "failedBranchId": final.failed_branch_id,
                "branches": [f"{b.branch_id}/{transaction_pb2.BranchOp.Name(b.op)}/{transaction_pb2.BranchStatus.Name(b.status)}" for b in final.branches],
            }
        try:
            stub.GetTransaction(coordinator_pb2.GetTransactionRequest(gid="bad gid"), timeout=args.timeout)
            bad = ["OK", ""]
        except grpc.RpcError as error:
            bad = [error.code().name, error.details()]
        channel.close()
        with branches.lock:
            calls = list(branches.calls)
        print(json.dumps({"discovered": found, "dialed": chosen["Addr"], "results": results, "badGid": bad, "calls": calls}))
    finally:
        server.stop(None)


if __name__ == "__main__":
    main()
