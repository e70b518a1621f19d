/** Loads csi/csi.proto: the service definitions the server registers and the tests' clients use. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GrpcObject, loadPackageDefinition, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export const PROTO_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'csi.proto');

export interface CsiServices {
  Identity: ServiceClientConstructor;
  Controller: ServiceClientConstructor;
  Node: ServiceClientConstructor;
}

let loaded: CsiServices | null = null;

/** int64 as decimal strings, enums as names, oneofs with their discriminator, defaults filled in. */
export function csiServices(): CsiServices {
  if (loaded) return loaded;
  const def = loadSync(PROTO_FILE, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const v1 = (loadPackageDefinition(def).csi as GrpcObject).v1 as GrpcObject;
  loaded = {
    Identity: v1.Identity as ServiceClientConstructor,
    Controller: v1.Controller as ServiceClientConstructor,
    Node: v1.Node as ServiceClientConstructor,
  };
  return loaded;
}
