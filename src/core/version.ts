/** Trellis version, semver (wadm parses heartbeat versions as semver, reference §5). Keep in step with package.json. */
export const TRELLIS_VERSION = "0.1.0";
