/**
 * The part of the WebAssembly JS API the component runtime uses. The project's `lib` is `es2023` without DOM,
 * and @types/node does not declare `WebAssembly`; Node 24 provides all of it at run time (JSPI included).
 */
declare global {
  namespace WebAssembly {
    class Module {
      constructor(bytes: BufferSource);
    }
    class Instance {
      constructor(module: Module, imports?: Imports);
      readonly exports: Record<string, unknown>;
    }
    class Memory {
      constructor(descriptor: { initial: number; maximum?: number });
      readonly buffer: ArrayBuffer;
      grow(delta: number): number;
    }
    class RuntimeError extends Error {}
    class CompileError extends Error {}
    class LinkError extends Error {}
    class Suspending {
      constructor(fn: (...args: any[]) => unknown);
    }
    type Imports = Record<string, Record<string, unknown>>;
    function compile(bytes: BufferSource): Promise<Module>;
    function instantiate(module: Module, imports?: Imports): Promise<Instance>;
    function instantiate(bytes: BufferSource, imports?: Imports): Promise<{ module: Module; instance: Instance }>;
    function validate(bytes: BufferSource): boolean;
    function promising<T extends (...args: any[]) => unknown>(fn: T): (...args: Parameters<T>) => Promise<unknown>;
  }
  type BufferSource = ArrayBufferView | ArrayBuffer;
}
export {};
