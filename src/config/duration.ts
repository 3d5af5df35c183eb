// Durations in config: a number of seconds, or a string like "90", "30s", "5m", "1h30m", "2d".

const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds, or undefined if the text is not a duration. */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)([smhd])/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * UNIT[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched > 0 && matched === text.length ? total : undefined;
}
