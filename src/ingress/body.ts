// Reads an HTTP request body into one buffer without ever holding more than the size limit.
// Runtime-neutral (Fetch API only) so the edge entry reads bodies exactly as the Node door does.
import { FilterError } from '../core/errors.ts';

export function tooLarge(size: number | null, max: number): FilterError {
  const what = size === null ? 'the message is' : `the message is ${size} bytes,`;
  return new FilterError('ETOOLARGE', `${what} over the limit of ${max} bytes`, { limit: max });
}

export function lengthRequired(): FilterError {
  return new FilterError('EPROTOCOL', 'the request has no body: send the message with a Content-Length (or chunked)', {
    status: 411,
  });
}

/**
 * The message bytes of a request.
 * - With Content-Length: refused before reading when over `max`; the HTTP parser then stops at that
 *   length, so the buffer is bounded by it. This is the fast path every known client takes.
 * - Without (chunked): read chunk by chunk and cut off as soon as the total passes `max`.
 * - No length and no body at all: 411.
 */
export async function readMessage(req: Request, max: number): Promise<Uint8Array> {
  const n = declaredLength(req.headers.get('content-length'), max);
  if (n !== null) {
    const raw = new Uint8Array(await req.arrayBuffer());
    if (raw.length > max) throw tooLarge(raw.length, max);
    return raw;
  }
  if (!req.body) throw lengthRequired();
  const raw = await readBounded(req.body, max);
  if (raw.length === 0) throw lengthRequired();
  return raw;
}

/**
 * The declared Content-Length, checked before any of the body is read (also by the Node fast path in
 * http-node.ts): over `max` is 413, zero is an empty message; null when the request declares none.
 */
export function declaredLength(declared: string | null, max: number): number | null {
  if (declared === null) return null;
  if (!/^\s*\d+\s*$/.test(declared)) throw new FilterError('EPROTOCOL', `Content-Length "${declared}" is not a number`);
  const n = Number(declared);
  if (n > max) throw tooLarge(n, max);
  if (n === 0) throw new FilterError('EMALFORMED', 'the message is empty');
  return n;
}

async function readBounded(body: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge(null, max);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
