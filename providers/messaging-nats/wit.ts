/**
 * WIT types of `wasmcloud:messaging@0.2.0` (the version wasmCloud 1.x components and its messaging-nats provider use):
 *
 * ```wit
 * package wasmcloud:messaging@0.2.0;
 * interface types {
 *   record broker-message { subject: string, body: list<u8>, reply-to: option<string> }
 * }
 * interface handler {
 *   use types.{broker-message};
 *   handle-message: func(msg: broker-message) -> result<_, string>;
 * }
 * interface consumer {
 *   use types.{broker-message};
 *   request: func(subject: string, body: list<u8>, timeout-ms: u32) -> result<broker-message, string>;
 *   publish: func(msg: broker-message) -> result<_, string>;
 * }
 * ```
 * @module
 */
import { t, type InterfaceType, type WitType } from "trellis/provider-sdk";

/** `record broker-message { subject: string, body: list<u8>, reply-to: option<string> }`. */
export const BROKER_MESSAGE: WitType = t.record([["subject", t.string], ["body", t.list(t.u8)], ["reply-to", t.option(t.string)]], "broker-message");

/** A broker message in the codec's JavaScript representation. */
export interface BrokerMessage {
  subject: string;
  body: Uint8Array;
  replyTo: string | undefined;
}

/** `wasmcloud:messaging/consumer@0.2.0`: what a component calls to publish and request (this provider serves it). */
export const CONSUMER: InterfaceType = {
  name: "wasmcloud:messaging/consumer@0.2.0",
  resources: [],
  functions: {
    request: t.func([["subject", t.string], ["body", t.list(t.u8)], ["timeout-ms", t.u32]], t.result(BROKER_MESSAGE, t.string)),
    publish: t.func([["msg", BROKER_MESSAGE]], t.result(undefined, t.string)),
  },
};

/** `wasmcloud:messaging/handler@0.2.0`: what a component exports to receive messages (this provider calls it). */
export const HANDLER: InterfaceType = {
  name: "wasmcloud:messaging/handler@0.2.0",
  resources: [],
  functions: {
    "handle-message": t.func([["msg", BROKER_MESSAGE]], t.result(undefined, t.string)),
  },
};
