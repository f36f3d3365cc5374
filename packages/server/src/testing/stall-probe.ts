/**
 * Runs one request and measures it the way other agents feel it: its own duration, its CPU time, and the longest
 * time the event loop was blocked meanwhile (a synchronous decode blocks it: while it runs, nobody else is
 * answered). Prints `# dos-timing <label>: [<detail>, ]<wall> ms wall, <cpu> ms CPU, event loop blocked up to <stall> ms`;
 * `detail` describes the result (sizes, the answer's status). CPU time as well as wall time: on a loaded machine
 * the wall time overstates the cost.
 */
export async function timed<T>(label: string, run: () => Promise<T>, detail?: (result: T) => string): Promise<{ ms: number; stallMs: number; result: T }> {
  let last = performance.now();
  let stallMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 5);
  const start = performance.now();
  const cpu = process.cpuUsage();
  try {
    const result = await run();
    const ms = performance.now() - start;
    const used = process.cpuUsage(cpu);
    stallMs = Math.max(stallMs, performance.now() - last);
    console.log(`# dos-timing ${label}: ${detail ? `${detail(result)}, ` : ''}${ms.toFixed(0)} ms wall, ${((used.user + used.system) / 1000).toFixed(0)} ms CPU, event loop blocked up to ${stallMs.toFixed(0)} ms`);
    return { ms, stallMs, result };
  } finally {
    clearInterval(ticker);
  }
}
