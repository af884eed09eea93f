/**
 * chDB runs each query on a libuv pool thread for as long as it takes, and a streaming load (an INSERT fed
 * through a pipe) takes as long as its source: with the default 4 threads, four loads would leave nothing for
 * other queries or file writes. Set before anything uses the pool (imported first by main.ts); the warehouse
 * engine's process, where chDB runs, inherits it with the environment.
 */
process.env.UV_THREADPOOL_SIZE ??= '16';
