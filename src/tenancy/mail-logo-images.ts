// The images a tenant's mail may carry inline, found by content hash: its logo's PNG rendition.
// The wiring hands this to the mail queue (src/mail/mail.ts), which asks when it queues a mail.
import type { BrandLogos } from './branding.js';

export interface InlineImage {
  content: Buffer;
  contentType: string;
}

/** Renditions kept in memory at most; each is a few KiB to ~50 KiB (384×128, palette PNG). */
const CACHED = 64;

/**
 * `find(tenantId, sha256)`: the tenant's stored image whose bytes hash to `sha256`, or undefined
 * when it holds none (no logo, one stored before renditions, or one replaced since the mail's
 * brand was read). Found images are cached by tenant and hash: content so named never changes,
 * so a burst of mails reads the object store once.
 */
export function createMailLogoImages(logos: Pick<BrandLogos, 'readMail'>) {
  const cache = new Map<string, InlineImage>();
  return {
    async find(tenantId: string, sha256: string): Promise<InlineImage | undefined> {
      const key = `${tenantId}/${sha256}`;
      const cached = cache.get(key);
      if (cached) {
        // Refreshed as the most recently used: a Map iterates in insertion order.
        cache.delete(key);
        cache.set(key, cached);
        return cached;
      }
      const stored = await logos.readMail(tenantId);
      if (!stored || stored.sha256 !== sha256) return undefined;
      const image = { content: stored.bytes, contentType: stored.contentType };
      cache.set(key, image);
      if (cache.size > CACHED) cache.delete(cache.keys().next().value!);
      return image;
    },
  };
}

export type MailLogoImages = ReturnType<typeof createMailLogoImages>;
