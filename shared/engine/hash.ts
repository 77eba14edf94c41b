/**
 * A deterministic 64-bit hash (two FNV-1a 32-bit lanes with different offsets) as 16 hex characters. Used for
 * idempotency keys and incident ids: pure, fast, stable across processes and runtimes. Not for security.
 */
export const stableHash = (...parts: readonly (string | number)[]): string => {
  let a = 0x811c9dc5
  let b = 0x01000193 ^ 0x5bd1e995
  for (const part of parts) {
    const s = `${part}\u001f`
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      a = Math.imul(a ^ c, 0x01000193)
      b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15)
    }
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0')
}
