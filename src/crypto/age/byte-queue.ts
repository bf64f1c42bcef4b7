// A FIFO of incoming Buffers that hands out exact byte counts as views, so 64 KiB chunks are
// encrypted straight from the caller's buffers without being copied together first.

export class ByteQueue {
  readonly #pieces: Buffer[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(piece: Buffer): void {
    if (piece.length === 0) return;
    this.#pieces.push(piece);
    this.#length += piece.length;
  }

  /** Removes and returns the first `n` bytes (n ≤ length) as views of the queued buffers. */
  take(n: number): Buffer[] {
    const out: Buffer[] = [];
    let remaining = n;
    while (remaining > 0) {
      const first = this.#pieces[0]!;
      if (first.length <= remaining) {
        out.push(first);
        this.#pieces.shift();
        remaining -= first.length;
      } else {
        out.push(first.subarray(0, remaining));
        this.#pieces[0] = first.subarray(remaining);
        remaining = 0;
      }
    }
    this.#length -= n;
    return out;
  }
}
