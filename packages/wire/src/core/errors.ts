/**
 * Trellis errors: one class per failure, each with a stable `code`.
 *
 * Errors that cross the wire (control replies, invocation replies) serialize to one shape,
 * {@link WireError} `{ code, message, details? }` (docs/protocol.md, "Errors"), and are rebuilt with
 * {@link TrellisError.fromWire}.
 * @module
 */

/** Stable error codes. A code never changes meaning once released. */
export const ErrorCode = {
  /** A request or option had a missing, mistyped or out-of-range field. */
  InvalidArgument: "INVALID_ARGUMENT",
  /** A named entity (config, component, provider, host) does not exist. */
  NotFound: "NOT_FOUND",
  /** The entity already exists in a state that conflicts with the request. */
  AlreadyExists: "ALREADY_EXISTS",
  /** A link put would point an overlapping interface at a different target (reference §2.3). */
  LinkConflict: "LINK_CONFLICT",
  /** A link put would change an existing link's values: links are immutable (seed link-definitions.md). */
  LinkImmutable: "LINK_IMMUTABLE",
  /** An import call found no link for its interface and link name. */
  LinkNotFound: "LINK_NOT_FOUND",
  /** A call or request did not complete within its timeout. */
  Timeout: "TIMEOUT",
  /** Nobody serves the requested subject. */
  NoResponders: "NO_RESPONDERS",
  /** A payload exceeded a size limit. */
  PayloadTooLarge: "PAYLOAD_TOO_LARGE",
  /** A WebAssembly component trapped, ran out of memory, or was terminated. */
  ComponentTrap: "COMPONENT_TRAP",
  /** A component could not be loaded or compiled. */
  ComponentLoad: "COMPONENT_LOAD_FAILED",
  /** The callee returned a WIT `result::err` or an application error. */
  Application: "APPLICATION_ERROR",
  /** A capability provider failed to start or misbehaved. */
  Provider: "PROVIDER_ERROR",
  /** An OCI registry refused, failed, or served content that does not match its digest. */
  Oci: "OCI_ERROR",
  /** NATS or JetStream failed underneath. */
  Lattice: "LATTICE_ERROR",
  /** The object is not in a state that allows the operation. */
  IllegalState: "ILLEGAL_STATE",
  /** A bug or an unexpected failure. */
  Internal: "INTERNAL",
  /** A target already holds as many chunked uploads as it allows at once (docs/protocol.md §7.1); retry later. */
  TooManyUploads: "TOO_MANY_UPLOADS",
  /** A target's buffer for chunked uploads is full (docs/protocol.md §7.1); the upload was dropped, retry later. */
  UploadBufferFull: "UPLOAD_BUFFER_FULL",
  /**
   * The target's process exited (or its host stopped it) while the call was pending: the call may or may not have
   * been carried out (docs/protocol.md, "Target exit notices").
   */
  TargetExited: "TARGET_EXITED",
  /** The component cannot serve now (its worker thread is being restarted and could not start yet); try again later. */
  ComponentUnavailable: "COMPONENT_UNAVAILABLE",
  /**
   * JetStream (lattice data: links, config, apps) did not answer in time or said it is unavailable (no quorum, a
   * leader election in progress). The operation may or may not have been applied; retrying is safe
   * (docs/nats-cluster.md, ADR 0015).
   */
  JetStreamUnavailable: "JETSTREAM_UNAVAILABLE",
  /**
   * The host refuses to load a component or provider from where the request points (a file path or an http(s) URL)
   * because it was not started with `--allow-file-load` and the path is not under an `--allowed-path` (docs/security.md).
   */
  LoadNotAllowed: "LOAD_NOT_ALLOWED",
  /** The policy service denied the action, or did not answer in time (reference §6.4; docs/security.md). */
  PolicyDenied: "POLICY_DENIED",
  /** The NATS server refused a publish or subscribe: the connection's user lacks the subject permission (docs/security.md). */
  NatsPermissionDenied: "NATS_PERMISSION_DENIED",
  /** Embedded claims are invalid, tampered with, expired, missing where required, or from an issuer not allowed. */
  ClaimsInvalid: "CLAIMS_INVALID",
  /** A secret could not be fetched, sealed or opened (the message never holds the secret). */
  Secrets: "SECRETS_ERROR",
} as const;
/** One of {@link ErrorCode}'s values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The one shape of an error on the wire (docs/protocol.md, "Errors"). */
export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** Base class of every Trellis error. `details` carries context fields (e.g. `field`, `componentId`). */
export class TrellisError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options?: { details?: Record<string, unknown>; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TrellisError";
    this.code = code;
    this.details = options?.details;
  }

  /** The wire form `{ code, message, details? }`. */
  toWire(): WireError {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }

  /**
   * Rebuilds an error from its wire form; an unknown or malformed value becomes an `INTERNAL` error
   * whose message says what was received.
   */
  static fromWire(value: unknown): TrellisError {
    if (typeof value === "object" && value !== null) {
      const v = value as Record<string, unknown>;
      if (typeof v.code === "string" && typeof v.message === "string") {
        const details =
          typeof v.details === "object" && v.details !== null ? (v.details as Record<string, unknown>) : undefined;
        return new TrellisError(v.code, v.message, details ? { details } : undefined);
      }
    }
    return new TrellisError(ErrorCode.Internal, `malformed error from the wire: ${safeJson(value)}`);
  }

  /** Any thrown value as a TrellisError (an existing one is returned unchanged). */
  static from(err: unknown, code: string = ErrorCode.Internal): TrellisError {
    if (err instanceof TrellisError) return err;
    if (err instanceof Error) return new TrellisError(code, err.message, { cause: err });
    return new TrellisError(code, String(err));
  }
}

/** A request or option field is missing, mistyped or invalid. `field` names it. */
export class InvalidArgumentError extends TrellisError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.InvalidArgument, message, { details: { field }, cause: options?.cause });
    this.name = "InvalidArgumentError";
    this.field = field;
  }
}

/** A named entity does not exist. */
export class NotFoundError extends TrellisError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCode.NotFound, message, details ? { details } : undefined);
    this.name = "NotFoundError";
  }
}

/** A link put conflicts with an existing link (reference §2.3 conflict rule). */
export class LinkConflictError extends TrellisError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCode.LinkConflict, message, details ? { details } : undefined);
    this.name = "LinkConflictError";
  }
}

/** A link put would change an existing link: links are immutable (seed link-definitions.md, "Immutable Links"). */
export class LinkImmutableError extends TrellisError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCode.LinkImmutable, message, details ? { details } : undefined);
    this.name = "LinkImmutableError";
  }
}

/** An operation did not complete within `timeoutMs`. */
export class TimeoutError extends TrellisError {
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number, details?: Record<string, unknown>) {
    super(ErrorCode.Timeout, message, { details: { ...details, timeoutMs } });
    this.name = "TimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/** The object is not in a state that allows the operation (e.g. a stopped host). */
export class IllegalStateError extends TrellisError {
  constructor(message: string) {
    super(ErrorCode.IllegalState, message);
    this.name = "IllegalStateError";
  }
}

/** JetStream did not answer in time or is unavailable; see {@link ErrorCode.JetStreamUnavailable}. */
export class JetStreamUnavailableError extends TrellisError {
  constructor(message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(ErrorCode.JetStreamUnavailable, message, { ...(details ? { details } : {}), cause: options?.cause });
    this.name = "JetStreamUnavailableError";
  }
}

/**
 * A component or provider reference the host may not load: a file path outside every `--allowed-path` directory
 * (after resolving `..` and symlinks), or a file path or http(s) URL on a host started without `--allow-file-load`.
 * `details`: `{ ref, flag }` where `flag` names what would allow it (`--allow-file-load` or `--allowed-path`).
 */
export class LoadNotAllowedError extends TrellisError {
  readonly ref: string;
  readonly flag: string;
  constructor(message: string, details: { ref: string; flag: string }) {
    super(ErrorCode.LoadNotAllowed, message, { details: { ...details } });
    this.name = "LoadNotAllowedError";
    this.ref = details.ref;
    this.flag = details.flag;
  }
}

/**
 * The policy service denied an action (`permitted: false`), did not answer within its timeout, or answered something
 * that is not a decision (reference §6.4). `details`: `{ kind, requestId? }` with `kind` one of `startComponent`,
 * `startProvider`, `performInvocation`.
 */
export class PolicyDeniedError extends TrellisError {
  readonly kind: string;
  constructor(message: string, details: { kind: string; requestId?: string }, options?: { cause?: unknown }) {
    super(ErrorCode.PolicyDenied, message, { details: { ...details }, cause: options?.cause });
    this.name = "PolicyDeniedError";
    this.kind = details.kind;
  }
}

function safeJson(value: unknown): string {
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 200 ? `${s.slice(0, 200)}…` : s;
  } catch {
    return String(value);
  }
}
