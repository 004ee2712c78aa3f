import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { chainIds, decompressed, detectCompression } from '../../engine/images/layer.js';

function sha(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

async function collect(chunks: Uint8Array[]): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of decompressed(Readable.from(chunks))) out.push(chunk);
  return Buffer.concat(out);
}

describe('image layers', () => {
  test('ChainID follows the OCI image spec', () => {
    const a = sha('a');
    const b = sha('b');
    const c = sha('c');
    const ab = sha(`${a} ${b}`);
    assert.deepEqual(chainIds([a]), [a]);
    assert.deepEqual(chainIds([a, b, c]), [a, ab, sha(`${ab} ${c}`)]);
    assert.deepEqual(chainIds([]), []);
  });

  test('compression is detected by magic bytes', () => {
    assert.equal(detectCompression(gzipSync(Buffer.from('x'))), 'gzip');
    assert.equal(detectCompression(Buffer.from('BZh91AY')), 'bzip2');
    assert.equal(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
    assert.equal(detectCompression(Buffer.from('./etc/passwd\0')), 'none');
    assert.equal(detectCompression(Buffer.alloc(0)), 'none');
  });

  test('a gzip stream is gunzipped and a plain one passed through, even in tiny chunks', async () => {
    const data = Buffer.from('hello tar '.repeat(1000));
    const gz = gzipSync(data);
    const tiny = [...gz].map((byte) => Uint8Array.of(byte));
    assert.deepEqual(await collect(tiny), data);
    assert.deepEqual(await collect([data.subarray(0, 2), data.subarray(2)]), data);
    assert.deepEqual(await collect([]), Buffer.alloc(0));
  });

  test('a corrupt or truncated gzip stream is an invalid-layer error', async () => {
    const gz = gzipSync(Buffer.from('hello '.repeat(5000)));
    await assert.rejects(collect([gz.subarray(0, gz.length - 20)]), /not a valid gzip stream/);
    const corrupt = Buffer.from(gz);
    corrupt[20] = (corrupt[20] ?? 0) ^ 0xff;
    corrupt[21] = (corrupt[21] ?? 0) ^ 0xff;
    await assert.rejects(collect([corrupt]), /not a valid gzip stream/);
  });

  test('other compressions are refused with a hint', async () => {
    await assert.rejects(collect([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0])]), /zstd-compressed/);
  });
});
