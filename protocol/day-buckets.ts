/**
 * Observations kept per UTC day (DP-3T EphIDs, TCNs): adding copies only the
 * days touched, retention drops whole days. Plain data, so a phone's
 * snapshot holds it.
 */

export interface DayBucket<O> {
  readonly day: number;
  readonly observations: readonly O[];
}

export interface DayBuckets<O> {
  readonly days: readonly DayBucket<O>[];
}

/** A new store with `observations` added to their days (`dayOf`), days in order. */
export function addToDays<O>(store: DayBuckets<O>, observations: readonly O[], dayOf: (o: O) => number): DayBuckets<O> {
  const byDay = new Map<number, O[]>();
  for (const o of observations) {
    const day = dayOf(o);
    const list = byDay.get(day);
    if (list === undefined) byDay.set(day, [o]);
    else list.push(o);
  }
  if (byDay.size === 0) return store;
  const days = store.days.map((d) => {
    const added = byDay.get(d.day);
    byDay.delete(d.day);
    return added === undefined ? d : { day: d.day, observations: [...d.observations, ...added] };
  });
  for (const [day, list] of byDay) days.push({ day, observations: list });
  return { days: days.sort((a, b) => a.day - b.day) };
}

/** The store without days before `oldestDay` (the same object when nothing is dropped). */
export function keepDaysFrom<B extends { readonly day: number }, S extends { readonly days: readonly B[] }>(store: S, oldestDay: number): S | { readonly days: readonly B[] } {
  const days = store.days.filter((d) => d.day >= oldestDay);
  return days.length === store.days.length ? store : { days };
}
