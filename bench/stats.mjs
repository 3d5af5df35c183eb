// Shared by the benchmarks (bench/run.mjs, bench/openzfs.mjs): knobs from the environment and the figures' arithmetic.

/** An integer knob from the environment, `dflt` when unset; anything else outside min..max is an error. */
export function intEnv(name, dflt, min, max) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${v}: expected an integer ${min}..${max}`);
  return n;
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Rounded to two decimals; null for a missing figure. */
export const r2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? null : Math.round(x * 100) / 100);
