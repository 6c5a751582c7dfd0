#!/usr/bin/env node
/**
 * http-server: the first-party HTTP server capability provider (see ./provider.ts). Started by a host
 * (`trellis start provider http-server http-server`) or by hand as a remote provider:
 * `node providers/http-server/main.ts --provider-id http-server --lattice default --nats-url nats://127.0.0.1:4222`.
 * @module
 */
import { runProvider } from "trellis/provider-sdk";
import { httpServerProvider } from "./provider.ts";

if (import.meta.main) await runProvider(httpServerProvider());
