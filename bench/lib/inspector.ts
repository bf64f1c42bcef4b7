// Memory a server holds, read through its inspector (the process runs with
// `--inspect=127.0.0.1:PORT`): a full garbage collection first, then `process.memoryUsage()`. RSS
// alone cannot tell live objects from garbage the collector has not returned yet.
//
// The DevTools protocol is spoken over a WebSocket; Node 20 has a client only behind
// `--experimental-websocket`, so a short-lived child process does the talking.
import { execFile } from 'node:child_process';

export interface HeldMemory {
  /** Live JavaScript heap after a full collection. */
  heapUsed: number;
  /** Memory of Buffers and other objects outside the heap, after the same collection. */
  external: number;
  rss: number;
}

const CLIENT = `
const ws = new WebSocket(process.argv[1]);
let id = 0;
const pending = new Map();
const send = (method, params = {}) => new Promise((resolve, reject) => {
  pending.set(++id, { resolve, reject });
  ws.send(JSON.stringify({ id, method, params }));
});
ws.onmessage = (event) => {
  const message = JSON.parse(event.data);
  const waiter = pending.get(message.id);
  if (!waiter) return;
  pending.delete(message.id);
  message.error ? waiter.reject(new Error(message.error.message)) : waiter.resolve(message.result);
};
ws.onerror = () => { console.error('inspector connection failed'); process.exit(1); };
ws.onopen = async () => {
  await send('HeapProfiler.collectGarbage');
  await send('HeapProfiler.collectGarbage');
  const { result } = await send('Runtime.evaluate', {
    expression: 'JSON.stringify(process.memoryUsage())',
    returnByValue: true,
  });
  console.log(result.value);
  ws.close();
};
`;

/** Collects garbage in the process inspected on `port` and reads what it still holds. */
export async function heldMemory(port: number): Promise<HeldMemory> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${port}`);
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      ['--experimental-websocket', '--no-warnings', '-e', CLIENT, url],
      (error, out) => (error ? reject(error) : resolve(out)),
    ),
  );
  const usage = JSON.parse(stdout) as HeldMemory;
  return { heapUsed: usage.heapUsed, external: usage.external, rss: usage.rss };
}
