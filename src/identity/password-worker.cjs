// The task of a password hashing thread (src/identity/password-pool.ts): one argon2 hash or
// verify. Plain CommonJS, so it is the same file in the build and when running from the
// TypeScript sources (a worker does not inherit the loader that reads .ts). argon2's own
// failures (a stored value that is not a hash) are answered, not thrown: a rejected task means
// the thread itself failed.
const { hashSync, verifySync } = require('@node-rs/argon2');

module.exports = (job) => {
  try {
    const value =
      job.op === 'hash' ? hashSync(job.password, job.options) : verifySync(job.stored, job.password);
    return { ok: true, value };
  } catch (error) {
    return { ok: false, message: String(error?.message ?? error) };
  }
};
