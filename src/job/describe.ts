import type { Base, DatasetPlan, Step } from '../planner/types.js';

/** `@snap`, or `#mark` for a bookmark. */
export const pointName = (b: Base): string => `${b.bookmark ? '#' : '@'}${b.name}`;

export function describeStep(s: Step): string {
  if (s.kind === 'resume') return 'resume the interrupted receive (send -t)';
  return s.kind === 'full' ? `full @${s.snapshot.name}` : `${s.intermediates ? '-I' : '-i'} ${pointName(s.from)} → @${s.to.name}`;
}

/** One line a user can read: "full @a, then -I @a → @c", "up to date at @c", "conflict: …". */
export function describePlan(p: DatasetPlan): string {
  switch (p.action) {
    case 'send': {
      const parts: string[] = [];
      if (p.createParent !== undefined) parts.push(`create parent ${p.createParent}`);
      if (p.rollbackTo !== undefined) parts.push(`roll target back to @${p.rollbackTo.name}`);
      parts.push(...p.steps.map(describeStep));
      return parts.join(', then ');
    }
    case 'up-to-date':
      return `up to date at ${pointName(p.base)}`;
    case 'conflict':
      return `conflict (${p.conflict.kind}): ${p.conflict.message}`;
  }
}

/** Snapshots (short names) a plan's steps put on the target. */
export function snapshotsOf(p: DatasetPlan, sourceSnapshots: readonly { name: string; createtxg: number }[]): string[] {
  if (p.action !== 'send') return [];
  const out: string[] = [];
  for (const s of p.steps) {
    if (s.kind === 'resume') continue; // which snapshot it carries is inside the token
    if (s.kind === 'full') out.push(s.snapshot.name);
    else if (!s.intermediates) out.push(s.to.name);
    else {
      for (const snap of sourceSnapshots) {
        if (snap.createtxg > s.from.createtxg && snap.createtxg <= s.to.createtxg) out.push(snap.name);
      }
    }
  }
  return out;
}
