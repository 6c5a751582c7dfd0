// ESLint flat config: typescript-eslint with type information, so that floating promises are errors.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", ".cache/**", "**/*.mjs", "**/*.js", "**/generated/**", "examples/**/build/**", "packages/*/dist/**"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "describe", "it", "suite", "before", "after", "beforeEach", "afterEach"] },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "off",
      eqeqeq: ["error", "smart"],
    },
  },
  {
    // Library code logs through the injected Logger, never the console.
    files: ["src/**/*.ts", "packages/*/src/**/*.ts"],
    ignores: ["src/cli/**"],
    rules: { "no-console": "error" },
  },
  {
    // The packages depend on nothing in the host's src/ (ADR 0020): the SDK ships on its own, with packages/wire.
    files: ["packages/*/src/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ regex: "^(\\.\\./){3,}src/", message: "packages/* must not import the host's src/ (ADR 0020); shared wire code lives in packages/wire" }] },
      ],
    },
  },
  {
    // A first-party provider imports only the provider SDK, never the host's src/ nor another provider.
    files: ["providers/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { regex: "^(\\.\\./)+src/", message: "a first-party provider imports only trellis/provider-sdk, not the host's src/" },
            { regex: "^\\.\\./[^./][^/]*/", message: "a first-party provider never imports another provider; shared code belongs in the provider SDK" },
          ],
        },
      ],
    },
  },
);
