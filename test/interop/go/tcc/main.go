// A Go application of Accord, built from Debian's Go packages alone (GOPATH mode, no module
// downloads) against stubs made by `buf generate --template buf.gen.go.yaml`. It finds a
// coordinator in etcd's standard gRPC naming keys, read through etcd's JSON gateway with net/http
// (Debian's Go etcd client cannot be installed beside protoc-gen-go), dials it with a client
// certificate, serves its own BranchService over mutual TLS, and runs one TCC per -payload: it
// registers its branch, calls its own Try, then submits (Try succeeded) or aborts (Try refused)
// and watches the transaction to its end. test/interop/go-client.test.ts runs it and reads the
// JSON report it prints on stdout.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	accordv1 "accordinterop/out/go/accord/v1"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// endpoint is one standard naming record: etcd's endpoints.Update JSON.
type endpoint struct {
	Key      string          `json:"key"`
	Addr     string          `json:"Addr"`
	Metadata json.RawMessage `json:"Metadata"`
}

// call is what the branch service saw of one call.
type call struct {
	Method   string `json:"method"`
	Gid      string `json:"gid"`
	BranchID string `json:"branchId"`
	Op       string `json:"op"`
	Mode     string `json:"mode"`
	Fence    string `json:"fence"`
	Data     string `json:"data"`
}

type tccResult struct {
	Gid      string   `json:"gid"`
	Payload  string   `json:"payload"`
	TryCode  string   `json:"tryCode"`
	Watched  []string `json:"watched"`
	Final    string   `json:"final"`
	Branches []string `json:"branches"`
}

type report struct {
	Discovered []endpoint  `json:"discovered"`
	Dialed     string      `json:"dialed"`
	Results    []tccResult `json:"results"`
	Calls      []call      `json:"calls"`
	BadGid     []string    `json:"badGid"`
}

// branchService is a TCC participant whose Try refuses the payload "refuse".
type branchService struct {
	accordv1.UnimplementedBranchServiceServer
	mu    sync.Mutex
	calls []call
}

func (s *branchService) record(ctx context.Context, method string, data []byte) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(name string) string {
		if values := md.Get(name); len(values) > 0 {
			return values[0]
		}
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call{
		Method: method, Gid: first("accord-gid"), BranchID: first("accord-branch-id"), Op: first("accord-op"),
		Mode: first("accord-mode"), Fence: first("accord-fence"), Data: string(data),
	})
}

func (s *branchService) Try(ctx context.Context, req *accordv1.TryRequest) (*accordv1.TryResponse, error) {
	s.record(ctx, "Try", req.Data)
	if string(req.Data) == "refuse" {
		return nil, status.Error(codes.Aborted, "refused by the Go service")
	}
	return &accordv1.TryResponse{}, nil
}

func (s *branchService) Confirm(ctx context.Context, req *accordv1.ConfirmRequest) (*accordv1.ConfirmResponse, error) {
	s.record(ctx, "Confirm", req.Data)
	return &accordv1.ConfirmResponse{}, nil
}

func (s *branchService) Cancel(ctx context.Context, req *accordv1.CancelRequest) (*accordv1.CancelResponse, error) {
	s.record(ctx, "Cancel", req.Data)
	return &accordv1.CancelResponse{}, nil
}

func (s *branchService) snapshot() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

// prefixEnd is etcd's range end for "every key starting with prefix".
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}

// discover reads NAME/ through etcd's JSON gateway, as any language without an etcd client can.
func discover(etcd, name string) ([]endpoint, error) {
	prefix := []byte(name + "/")
	body, err := json.Marshal(map[string]string{
		"key":       base64.StdEncoding.EncodeToString(prefix),
		"range_end": base64.StdEncoding.EncodeToString(prefixEnd(prefix)),
	})
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(strings.TrimRight(etcd, "/")+"/v3/kv/range", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := ioutil.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("etcd range: HTTP %d: %s", resp.StatusCode, raw)
	}
	var answer struct {
		Kvs []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("etcd range answer: %v", err)
	}
	var found []endpoint
	for _, kv := range answer.Kvs {
		key, err := base64.StdEncoding.DecodeString(kv.Key)
		if err != nil {
			return nil, err
		}
		value, err := base64.StdEncoding.DecodeString(kv.Value)
		if err != nil {
			return nil, err
		}
		var e endpoint
		if err := json.Unmarshal(value, &e); err != nil {
			return nil, fmt.Errorf("%s: %v", key, err)
		}
		e.Key = string(key)
		found = append(found, e)
	}
	return found, nil
}

func tlsFiles(caFile, certFile, keyFile string) (*x509.CertPool, tls.Certificate, error) {
	pem, err := ioutil.ReadFile(caFile)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, tls.Certificate{}, fmt.Errorf("%s: no certificate", caFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	return pool, pair, err
}

// watchToEnd follows WatchTransaction until the stream ends after a final status.
func watchToEnd(ctx context.Context, coordinator accordv1.CoordinatorServiceClient, gid string, result *tccResult) error {
	stream, err := coordinator.WatchTransaction(ctx, &accordv1.WatchTransactionRequest{Gid: gid})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		tx := msg.GetTransaction()
		name := tx.GetStatus().String()
		if len(result.Watched) == 0 || result.Watched[len(result.Watched)-1] != name {
			result.Watched = append(result.Watched, name)
		}
		result.Final = name
		result.Branches = result.Branches[:0]
		for _, b := range tx.GetBranches() {
			result.Branches = append(result.Branches, fmt.Sprintf("%s/%s/%s", b.GetBranchId(), b.GetOp(), b.GetStatus()))
		}
	}
}

func runTcc(ctx context.Context, coordinator accordv1.CoordinatorServiceClient, self accordv1.BranchServiceClient, branchTarget, payload string) (tccResult, error) {
	result := tccResult{Payload: payload}
	gidReply, err := coordinator.NewGid(ctx, &accordv1.NewGidRequest{})
	if err != nil {
		return result, fmt.Errorf("NewGid: %v", err)
	}
	gid := gidReply.GetGid()
	result.Gid = gid
	if _, err := coordinator.Begin(ctx, &accordv1.BeginRequest{Gid: gid, Mode: accordv1.Mode_MODE_TCC, RequestId: gid + "-begin"}); err != nil {
		return result, fmt.Errorf("Begin: %v", err)
	}
	// Confirm and Cancel get the same bytes; ConfirmRequest and CancelRequest are one wire format.
	branchPayload, err := proto.Marshal(&accordv1.ConfirmRequest{Data: []byte(payload)})
	if err != nil {
		return result, err
	}
	if _, err := coordinator.RegisterBranch(ctx, &accordv1.RegisterBranchRequest{
		Gid: gid, BranchId: "01", Commit: branchTarget + "/Confirm", Rollback: branchTarget + "/Cancel",
		Payload: branchPayload, RequestId: gid + "-register",
	}); err != nil {
		return result, fmt.Errorf("RegisterBranch: %v", err)
	}
	// The application calls Try itself, with the headers the coordinator would send.
	tryCtx := metadata.AppendToOutgoingContext(ctx, "accord-gid", gid, "accord-branch-id", "01", "accord-op", "try", "accord-mode", "tcc")
	_, tryErr := self.Try(tryCtx, &accordv1.TryRequest{Data: []byte(payload)})
	result.TryCode = status.Code(tryErr).String()
	if tryErr == nil {
		_, err = coordinator.Submit(ctx, &accordv1.SubmitRequest{Gid: gid, Mode: accordv1.Mode_MODE_TCC, RequestId: gid + "-submit"})
	} else if status.Code(tryErr) == codes.Aborted {
		_, err = coordinator.Abort(ctx, &accordv1.AbortRequest{Gid: gid, Reason: "try refused: " + status.Convert(tryErr).Message(), RequestId: gid + "-abort"})
	} else {
		return result, fmt.Errorf("Try: %v", tryErr)
	}
	if err != nil {
		return result, fmt.Errorf("Submit/Abort: %v", err)
	}
	return result, watchToEnd(ctx, coordinator, gid, &result)
}

func run() error {
	etcd := flag.String("etcd", "", "etcd endpoint, http://host:port (its JSON gateway)")
	name := flag.String("name", "accord/v1/grpc", "service name of the standard naming keys (cluster.namingPrefix)")
	caFile := flag.String("ca", "", "CA of the coordinator, of this service and of client certificates")
	certFile := flag.String("cert", "", "client certificate, for the coordinator and for this service's own Try")
	keyFile := flag.String("key", "", "key of -cert")
	serverCertFile := flag.String("server-cert", "", "certificate of this branch service (names localhost)")
	serverKeyFile := flag.String("server-key", "", "key of -server-cert")
	payloads := flag.String("payloads", "ok", "comma-separated payloads, one TCC each; \"refuse\" makes Try answer ABORTED")
	timeout := flag.Duration("timeout", 60*time.Second, "bound of the whole run")
	flag.Parse()
	if *etcd == "" || *caFile == "" || *certFile == "" || *keyFile == "" || *serverCertFile == "" || *serverKeyFile == "" {
		return errors.New("-etcd, -ca, -cert, -key, -server-cert and -server-key are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	pool, clientPair, err := tlsFiles(*caFile, *certFile, *keyFile)
	if err != nil {
		return err
	}
	serverPair, err := tls.LoadX509KeyPair(*serverCertFile, *serverKeyFile)
	if err != nil {
		return err
	}

	// The branch service: mutual TLS, so only holders of a certificate from the CA may call it.
	service := &branchService{}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	server := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{serverPair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	})))
	accordv1.RegisterBranchServiceServer(server, service)
	go func() {
		if err := server.Serve(listener); err != nil {
			fmt.Fprintln(os.Stderr, "branch service:", err)
		}
	}()
	defer server.Stop()
	port := listener.Addr().(*net.TCPAddr).Port
	branchTarget := "grpcs://localhost:" + strconv.Itoa(port) + "/accord.v1.BranchService"

	clientTLS := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{clientPair}, RootCAs: pool, MinVersion: tls.VersionTLS12})
	selfConn, err := grpc.DialContext(ctx, "localhost:"+strconv.Itoa(port), grpc.WithTransportCredentials(clientTLS))
	if err != nil {
		return err
	}
	defer selfConn.Close()

	out := report{}
	out.Discovered, err = discover(*etcd, *name)
	if err != nil {
		return fmt.Errorf("discovery: %v", err)
	}
	if len(out.Discovered) == 0 {
		return fmt.Errorf("no coordinator under %s/ in etcd", *name)
	}
	chosen := out.Discovered[0]
	var meta struct {
		TLS bool `json:"tls"`
	}
	if err := json.Unmarshal(chosen.Metadata, &meta); err != nil {
		return fmt.Errorf("%s: Metadata: %v", chosen.Key, err)
	}
	if !meta.TLS {
		return fmt.Errorf("%s: the coordinator does not speak TLS; this client only dials with a certificate", chosen.Key)
	}
	out.Dialed = chosen.Addr
	conn, err := grpc.DialContext(ctx, chosen.Addr, grpc.WithTransportCredentials(clientTLS))
	if err != nil {
		return err
	}
	defer conn.Close()
	coordinator := accordv1.NewCoordinatorServiceClient(conn)
	self := accordv1.NewBranchServiceClient(selfConn)

	for _, payload := range strings.Split(*payloads, ",") {
		result, err := runTcc(ctx, coordinator, self, branchTarget, payload)
		if err != nil {
			return fmt.Errorf("TCC %q (%s): %v", payload, result.Gid, err)
		}
		out.Results = append(out.Results, result)
	}
	// An error from the coordinator reaches Go as a status with its code and message.
	_, badErr := coordinator.GetTransaction(ctx, &accordv1.GetTransactionRequest{Gid: "bad gid"})
	out.BadGid = []string{status.Code(badErr).String(), status.Convert(badErr).Message()}
	out.Calls = service.snapshot()
	return json.NewEncoder(os.Stdout).Encode(out)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "accord go client:", err)
		os.Exit(1)
	}
}
