/**
 * The core of Trellis: wire types, NATS subjects, errors and the logger interface.
 * Every other folder depends on this one; this one depends on nothing else in Trellis.
 * @module
 */
export {
  ctl,
  ctlRoot,
  ctlSubscriptions,
  parseCtlSubject,
  eventSubject,
  eventWildcard,
  providerRpc,
  invocationSubject,
  invocationWildcard,
  invocationQueue,
  parseInvocationSubject,
  stripVersion,
  latticeDataBucket,
  configDataBucket,
  componentSpecKey,
  COMPONENT_SPEC_PREFIX,
  appsBucket,
  DEFAULT_CTL_PREFIX,
  EVENT_PREFIX,
  PROVIDER_RPC_PREFIX,
  INVOCATION_PREFIX,
  isPublishSubject,
  isSubscribeSubject,
} from "./subjects.ts";
export type { ParsedCtlSubject } from "./subjects.ts";
export {
  ErrorCode,
  TrellisError,
  InvalidArgumentError,
  NotFoundError,
  LinkConflictError,
  LinkImmutableError,
  TimeoutError,
  IllegalStateError,
  LoadNotAllowedError,
  PolicyDeniedError,
} from "./errors.ts";
export type { WireError } from "./errors.ts";
export { ok, fail } from "./envelope.ts";
export type { CtlResponse } from "./envelope.ts";
export { validateId, isValidId, MAX_ID_LENGTH } from "./ids.ts";
export { DEFAULT_LINK_NAME, parseLink, parseLinkKey, matchesKey, linksEqual, describeLink } from "./link.ts";
export type { Link, LinkKey, InterfaceLinkDefinition } from "./link.ts";
export { humanUptime } from "./host.ts";
export type {
  HostInfo,
  HostInventory,
  ComponentDescription,
  ProviderDescription,
  ComponentSpecification,
} from "./host.ts";
export { EventType, cloudEvent, eventName } from "./events.ts";
export type { CloudEvent } from "./events.ts";
export { createLogger, silentLogger } from "./logger.ts";
export type { Logger, LogLevel, LogMeta, LoggerOptions } from "./logger.ts";
export type { LinkSource, LinkChange, ConfigSource, EventPublisher } from "./ports.ts";
export { TRELLIS_VERSION } from "./version.ts";
