// The child side of startSpawner (processes.ts): spawns commands and times them, so that the
// bench process itself never forks. Messages: { id, command, args } in, { id, ms } or
// { id, error } out, one answer per request.
import { spawn } from 'node:child_process';

interface Request {
  id: number;
  command: string;
  args: string[];
}

process.on('message', ({ id, command, args }: Request) => {
  const start = performance.now();
  let answered = false;
  const answer = (outcome: { ms: number } | { error: string }) => {
    if (answered) return;
    answered = true;
    process.send!({ id, ...outcome });
  };
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  // After a failed spawn 'exit' may or may not follow 'error'.
  child.once('error', (error) => answer({ error: error.message }));
  child.once('exit', (code) =>
    answer(
      code === 0
        ? { ms: performance.now() - start }
        : { error: `${command} ${args.join(' ')} exited with ${code}` },
    ),
  );
});
