// The public surface of OrthID's age implementation (age v1, X25519 recipients only): streaming
// encryption and decryption that interoperate with the stock `age` CLI, and key helpers.
export { decryptStream } from './decrypt-stream.js';
export { encryptStream } from './encrypt-stream.js';
export { generateIdentity, recipientOf } from './identity.js';
export { parseIdentityFile, readIdentityFile } from './identity-file.js';
export type { X25519Recipient } from './recipient.js';
export { parseRecipient, recipientFingerprint } from './recipient.js';
