import { createRegistry, toBinary, type DescFile, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** The request oneof shared by reflection v1 and v1alpha (same fields, different packages). */
type ReflectionQuery =
  | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: undefined; value?: undefined };

type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

function withDependencies(files: readonly DescFile[]): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (seen.has(file.proto.name)) return;
    seen.set(file.proto.name, file);
    file.dependencies.forEach(visit);
  };
  files.forEach(visit);
  return [...seen.values()];
}

/** Answers one reflection query from the registry of served files. */
function createResolver(files: readonly DescFile[], serviceNames: readonly string[]) {
  const all = withDependencies(files);
  const registry: Registry = createRegistry(...all);
  const filesByName = new Map(all.map((f) => [f.proto.name, f]));
  const encoded = (file: DescFile) => toBinary(FileDescriptorProtoSchema, file.proto);
  // Each answer carries the file and its transitive imports, as grpc-go and grpc-java do.
  const withDeps = (file: DescFile): ReflectionAnswer => ({
    case: "fileDescriptorResponse",
    value: { fileDescriptorProto: withDependencies([file]).map(encoded) },
  });
  const notFound = (what: string): ReflectionAnswer => ({
    case: "errorResponse",
    value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
  });

  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    const type = registry.get(symbol);
    if (type) return type.file;
    // "pkg.Service.Method" names a method: answer with its service's file.
    const parent = registry.getService(symbol.slice(0, symbol.lastIndexOf(".")));
    return parent?.methods.some((m) => `${parent.typeName}.${m.name}` === symbol) ? parent.file : undefined;
  };

  return (query: ReflectionQuery): ReflectionAnswer => {
    switch (query.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: serviceNames.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = filesByName.get(query.value);
        return file ? withDeps(file) : notFound(`file "${query.value}"`);
      }
      case "fileContainingSymbol": {
        const file = fileOfSymbol(query.value);
        return file ? withDeps(file) : notFound(`symbol "${query.value}"`);
      }
      case "fileContainingExtension": {
        const message = registry.getMessage(query.value.containingType);
        const ext = message && registry.getExtensionFor(message, query.value.extensionNumber);
        return ext ? withDeps(ext.file) : notFound(`extension ${query.value.containingType}/${query.value.extensionNumber}`);
      }
      case "allExtensionNumbersOfType": {
        const message = registry.getMessage(query.value);
        if (!message) return notFound(`message "${query.value}"`);
        const numbers = [...registry].filter((t) => t.kind === "extension" && t.extendee.typeName === message.typeName);
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: message.typeName, extensionNumber: numbers.map((e) => (e.kind === "extension" ? e.number : 0)) },
        };
      }
      default:
        return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" } };
    }
  };
}

/** gRPC server reflection, v1 and v1alpha, so grpcurl and `buf curl` work without proto files. */
export function createReflectionServices(files: readonly DescFile[], serviceNames: readonly string[]) {
  const resolve = createResolver(files, serviceNames);
  const current: ServiceImpl<typeof v1.ServerReflection> = {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield { validHost: request.host, originalRequest: request, messageResponse: resolve(request.messageRequest) };
      }
    },
  };
  const alpha: ServiceImpl<typeof v1alpha.ServerReflection> = {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield { validHost: request.host, originalRequest: request, messageResponse: resolve(request.messageRequest) };
      }
    },
  };
  return { v1: { service: v1.ServerReflection, impl: current }, v1alpha: { service: v1alpha.ServerReflection, impl: alpha } };
}
