import type { ConnectRouter } from "@connectrpc/connect";
import { AdminService, file_accord_v1_admin } from "../../gen/accord/v1/admin_pb.js";
import { file_accord_v1_branch } from "../../gen/accord/v1/branch_pb.js";
import { CoordinatorService, file_accord_v1_coordinator } from "../../gen/accord/v1/coordinator_pb.js";
import { Health, file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1, file_grpc_reflection_v1_reflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ReflectionV1alpha,
  file_grpc_reflection_v1alpha_reflection,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import type { StoreHealth } from "../observe/store-health.js";
import type { AccordConfig } from "../config.js";
import type { Engine } from "../engine/engine.js";
import type { Commands } from "../engine/commands/index.js";
import type { Store } from "../store/index.js";
import { createAdminService, type AdminServiceDependencies } from "./admin-service.js";
import { createCoordinatorService } from "./coordinator-service.js";
import { createHealthService } from "./health-service.js";
import { createReflectionServices } from "./reflection-service.js";

export interface RouteDependencies {
  store: Store;
  health: StoreHealth;
  engine: Engine;
  config: AccordConfig;
  commands: Commands;
  /** For AdminService. */
  admin: Pick<AdminServiceDependencies, "logger" | "logLevel" | "config" | "drain">;
}

/** Every service on the one port. */
export function createRoutes({ store, health, engine, config, commands, admin }: RouteDependencies) {
  const reflection = createReflectionServices(
    [
      file_accord_v1_coordinator,
      file_accord_v1_admin,
      file_accord_v1_branch,
      file_grpc_health_v1_health,
      file_grpc_reflection_v1_reflection,
      file_grpc_reflection_v1alpha_reflection,
      file_google_rpc_error_details,
    ],
    [
      CoordinatorService.typeName,
      AdminService.typeName,
      Health.typeName,
      ReflectionV1.typeName,
      ReflectionV1alpha.typeName,
    ],
  );
  return (router: ConnectRouter) => {
    router.service(CoordinatorService, createCoordinatorService({ store, engine, config, commands }));
    router.service(AdminService, createAdminService({ store, commands, ...admin }));
    router.service(Health, createHealthService(health, [CoordinatorService.typeName, AdminService.typeName]));
    router.service(reflection.v1.service, reflection.v1.impl);
    router.service(reflection.v1alpha.service, reflection.v1alpha.impl);
  };
}
