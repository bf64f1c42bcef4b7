// The argon2id limit of the machine: `node --import tsx bench/lib/argon2-rate.ts SECONDS
// CONCURRENCY` hashes with OrthID's parameters (createPasswordHasher, OWASP: 19 MiB, t = 2, p = 1)
// on its hashing threads (one per core), CONCURRENCY at a time, and prints {hashes, seconds, rate}.
import { createPasswordHasher } from '../../src/identity/passwords.js';

const seconds = Number(process.argv[2] ?? 5);
const concurrency = Number(process.argv[3] ?? 2);
const hasher = createPasswordHasher();
await hasher.hash('warm-up password for the bench');
let hashes = 0;
const started = performance.now();
const deadline = started + seconds * 1000;
await Promise.all(
  Array.from({ length: concurrency }, async (_, i) => {
    while (performance.now() < deadline) {
      await hasher.hash(`bench password ${i} ${hashes}`);
      hashes++;
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
console.log(JSON.stringify({ hashes, seconds: elapsed, rate: hashes / elapsed }));
