/**
 * A host's admission control (docs/security.md, "What a host may run"): the one object the component runtime and the
 * provider supervisor ask before they load or start anything — the file-load rule ({@link checkLoad}) and the policy
 * service ({@link PolicyClient}).
 * @module
 */
import { checkLoad, compileLoadPermissions, type LoadPermissionOptions, type LoadPermissions, type LoadTarget } from "./allow.ts";
import type { PolicyClient, PolicyConfig } from "./service.ts";
import type { PolicyClaims, PolicyHostInfo } from "./wire.ts";

/** What a component worker thread needs to check invocations itself (plain data, sent with the component). */
export interface InvocationPolicySpec {
  config: PolicyConfig;
  host: PolicyHostInfo;
  target: { componentId: string; imageRef: string; annotations: Record<string, string> };
}

/** Decides what this host may load and start. */
export class Admission {
  readonly load: LoadPermissions;
  readonly policy: PolicyClient | undefined;

  /**
   * @param load the file-load permissions (options, or already compiled ones: compiling is idempotent).
   *   @default nothing but first-party providers by name
   * @param policy the policy service client; none means every start and invocation is permitted.
   * @throws InvalidArgumentError for bad `load` options.
   */
  constructor(load: LoadPermissions | LoadPermissionOptions = {}, policy?: PolicyClient) {
    this.load = compileLoadPermissions(load);
    this.policy = policy;
  }

  /**
   * May component `ref` (resolved lexically by the loader to `target`) be loaded? Runs before anything is read.
   * @returns the path or URL to load from (a file's real path when checked under an allowed directory).
   * @throws LoadNotAllowedError naming the flag that would allow it; NotFoundError (file missing under an allowed dir).
   */
  checkComponentRef(ref: string, target: LoadTarget): string {
    return checkLoad(this.load, "component", ref, target);
  }

  /**
   * May provider `ref`, resolved lexically to the file `file`, be spawned? (First-party providers by name are not
   * checked: they are always allowed.) Runs before the file is stat'ed.
   * @returns the path to spawn (its real path when checked under an allowed directory).
   * @throws LoadNotAllowedError naming the flag that would allow it; NotFoundError (file missing under an allowed dir).
   */
  checkProviderFile(ref: string, file: string): string {
    return checkLoad(this.load, "provider", ref, { kind: "file", path: file });
  }

  /**
   * Asks the policy service whether a component may start (no-op without one).
   * @throws PolicyDeniedError when denied or unanswered within the policy timeout.
   */
  async startComponent(info: { componentId: string; imageRef: string; maxInstances: number; annotations?: Record<string, string>; claims?: PolicyClaims | null }): Promise<void> {
    await this.policy?.startComponent(info);
  }

  /**
   * Asks the policy service whether a provider may start (no-op without one).
   * @throws PolicyDeniedError when denied or unanswered within the policy timeout.
   */
  async startProvider(info: { providerId: string; imageRef: string; annotations?: Record<string, string>; claims?: PolicyClaims | null }): Promise<void> {
    await this.policy?.startProvider(info);
  }

  /** What a worker thread needs to check invocations of `target`; undefined when invocations are not checked. */
  invocationSpec(target: InvocationPolicySpec["target"]): InvocationPolicySpec | undefined {
    const p = this.policy;
    if (!p?.checksInvocations) return undefined;
    return { config: p.config, host: p.host, target: { ...target, annotations: { ...target.annotations } } };
  }
}
