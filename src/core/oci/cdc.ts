/**
 * Content-defined chunking: FastCDC with a gear rolling hash and normalized chunking, after
 * W. Xia et al., "FastCDC: a Fast and Efficient Content-Defined Chunking Approach for Data
 * Deduplication", USENIX ATC 2016 (Algorithm 1; normalization level 2).
 *
 * A cut point depends only on the bytes just before it (the gear hash of the last 32 bytes) and on
 * the distance from the previous cut, so an insertion, deletion or change in a stream moves only
 * the chunks around it: the chunks before and after keep their bytes and digests. That is what
 * lets a second push of a volume with 1 % changed send about 1 % (plus one or two chunks).
 *
 * The hash is 32-bit (JavaScript integers): `fp = (fp << 1) + GEAR[byte]`, so bit i of `fp`
 * depends on the last i+1 bytes; the masks take their bits from the top so every cut depends on
 * a 32-byte window. The gear table is fixed (derived from SHA-256 of `dockpack-fastcdc-gear-<i>`)
 * and must never change: the same bytes must always give the same chunks, or dedup between
 * pushes by different versions is lost (correctness never depends on it).
 */
import { createHash } from "node:crypto";

/** Chunk size bounds in bytes. */
export interface CdcParams {
  /** No cut before this many bytes (default 256 KiB). */
  min: number;
  /** Normal (expected) chunk size, a power of two (default 1 MiB). */
  avg: number;
  /** Forced cut at this many bytes (default 4 MiB). */
  max: number;
}

/** Default bounds: 256 KiB / 1 MiB / 4 MiB. */
export const DEFAULT_CDC: CdcParams = { min: 256 * 1024, avg: 1024 * 1024, max: 4 * 1024 * 1024 };

/** Name recorded with chunk lists so a reader knows how they were cut (informational). */
export const CDC_ALGORITHM = "fastcdc-gear32-v1";

const GEAR = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++)
    t[i] = createHash("sha256").update(`dockpack-fastcdc-gear-${i}`).digest().readInt32BE(0);
  return t;
})();

/** A mask with `bits` ones in the top bits of a 32-bit word. */
function topMask(bits: number): number {
  return bits >= 32 ? 0xffffffff : ((0xffffffff << (32 - bits)) >>> 0) | 0;
}

/**
 * Streaming FastCDC chunker. Feed bytes with {@link push}; it returns the lengths of the chunks
 * completed so far (in order); {@link end} returns the length of the last chunk (0 when none).
 * The concatenation of all lengths equals the bytes pushed.
 */
export class FastCdc {
  private readonly min: number;
  private readonly avg: number;
  private readonly max: number;
  private readonly maskS: number;
  private readonly maskL: number;
  private fp = 0;
  private len = 0;

  /** @throws RangeError when the bounds are not `0 < min <= avg <= max` with `avg` a power of two. */
  constructor(params: CdcParams = DEFAULT_CDC) {
    const { min, avg, max } = params;
    const bits = Math.log2(avg);
    if (!(min > 0 && min <= avg && avg <= max) || !Number.isInteger(bits))
      throw new RangeError(`bad chunk bounds ${min}/${avg}/${max}`);
    this.min = min;
    this.avg = avg;
    this.max = max;
    // normalization level 2: harder to cut before avg, easier after
    this.maskS = topMask(Math.min(32, bits + 2));
    this.maskL = topMask(Math.max(1, bits - 2));
  }

  /** Consumes `buf`; returns the lengths of chunks that ended inside it. */
  push(buf: Uint8Array): number[] {
    const cuts: number[] = [];
    const gear = GEAR;
    const { min, avg, max, maskS, maskL } = this;
    let fp = this.fp;
    let len = this.len;
    let i = 0;
    const n = buf.length;
    while (i < n) {
      if (len < min - 32) {
        // cut-point skipping below the minimum; the last 32 bytes before it warm the hash up
        const skip = Math.min(n - i, min - 32 - len);
        i += skip;
        len += skip;
        continue;
      }
      // one tight loop per phase: warm-up to min, small mask to avg, large mask to max
      let stop: number;
      let mask: number;
      if (len < min) {
        stop = Math.min(n, i + (min - len));
        mask = 0;
      } else if (len < avg) {
        stop = Math.min(n, i + (avg - len));
        mask = maskS;
      } else {
        stop = Math.min(n, i + (max - len));
        mask = maskL;
      }
      const from = i;
      let cut = false;
      if (mask === 0) {
        for (; i < stop; i++) fp = ((fp << 1) + gear[buf[i]]) | 0;
      } else {
        for (; i < stop; i++) {
          fp = ((fp << 1) + gear[buf[i]]) | 0;
          if ((fp & mask) === 0) {
            i++;
            cut = true;
            break;
          }
        }
      }
      len += i - from;
      if (cut || len >= max) {
        cuts.push(len);
        len = 0;
        fp = 0;
      }
    }
    this.fp = fp;
    this.len = len;
    return cuts;
  }

  /** Ends the stream; returns the length of the last (partial) chunk, 0 when nothing is pending. */
  end(): number {
    const l = this.len;
    this.len = 0;
    this.fp = 0;
    return l;
  }
}
