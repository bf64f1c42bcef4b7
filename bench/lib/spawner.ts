// A child process that spawns commands for a bench and times them, so that the bench process
// itself never forks. After a fork, every page the forking process writes faults once (they
// are copy-on-write until then): a 256 MiB stream right after spawning a CLI paid ~15 000 page
// faults and ran at half speed here, which the product, forking pg_dump once before a dump,
// does not pay per run. Messages: { id, command, args } in, { id, ms } or { id, error } out.
import { spawn } from 'node:child_process';

interface Request {
  id: number;
  command: string;
  args: string[];
}

process.on('message', ({ id, command, args }: Request) => {
  const start = performance.now();
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  child.once('error', (error) => process.send!({ id, error: error.message }));
  child.once('exit', (code) =>
    process.send!(
      code === 0
        ? { id, ms: performance.now() - start }
        : { id, error: `${command} ${args.join(' ')} exited with ${code}` },
    ),
  );
});
