// Turns one configured dataset entry into the concrete source→target pairs a job replicates.

import { isWithin } from '../zfs/names.js';
import type { Inventory } from '../zfs/types.js';
import type { DatasetPair, DatasetSpec } from './types.js';

/**
 * Where one dataset entry puts `dataset`: the entry's source itself, or (recursive) a dataset below it that no exclude
 * covers, at the same place below the entry's target; undefined when the entry does not cover it. The one mapping
 * replication (expandDatasets) and restore (remote name of a local dataset) share.
 */
export function targetFor(spec: DatasetSpec, dataset: string): string | undefined {
  if (dataset === spec.source) return spec.target;
  if (spec.recursive && isWithin(dataset, spec.source) && !spec.exclude.some((e) => isWithin(dataset, e)))
    return spec.target + dataset.slice(spec.source.length);
  return undefined;
}

export function expandDatasets(spec: DatasetSpec, sourceInventory: Inventory): DatasetPair[] {
  const excluded = (name: string): boolean => spec.exclude.some((e) => isWithin(name, e));
  if (excluded(spec.source)) return [];
  // The root is kept even when the listing lacks it, so the plan can say it is missing instead of silently skipping it.
  const names = new Set([spec.source]);
  if (spec.recursive) {
    for (const name of sourceInventory.keys()) {
      if (isWithin(name, spec.source) && !excluded(name)) names.add(name);
    }
  }
  // Parents first, so a parent's full send creates the dataset its children are received under.
  return [...names].sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : a > b ? 1 : 0)).map((source) => ({ source, target: targetFor(spec, source)! }));
}

function depth(name: string): number {
  return name.split('/').length;
}
