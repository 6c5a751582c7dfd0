/**
 * Defaults of the dashboard that the CLI needs without loading the dashboard itself (hono, the view model).
 * @module
 */

/** Default address of the dashboard: loopback only, port 8088. */
export const DEFAULT_UI_LISTEN = "127.0.0.1:8088";
