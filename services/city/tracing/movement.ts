/**
 * Phones follow their planned stays (plan.ts), moved at each stay's start,
 * with two departures from the plan that the ground truth must see:
 *   - a positive isolates at home after its diagnosis (venue stays become home);
 *   - venues may check the health code at entry (actors/tracing/health-code.ts
 *     venueAdmits): a phone turned away spends that stay at home.
 * The stays as they actually happened (`realized`) are what close contacts
 * are computed from.
 */
import type { Scheduler } from '../../../actors/ports.ts';
import { venueAdmits, type HealthColor, type VenuePolicy } from '../../../actors/tracing/health-code.ts';
import type { Position } from '../../../hardware/sim/propagation.ts';
import type { Stay, TracingCityPlan } from './plan.ts';

export interface MovementOptions {
  /** Positives stay home from their diagnosis on (default true). */
  readonly isolatePositives: boolean;
  /** Venues check the health code at entry with this policy; undefined: no checks. */
  readonly venueCheck: VenuePolicy | undefined;
}

export interface MovementStats {
  venueChecks: number;
  deniedEntries: number;
  isolatedStays: number;
}

export class CityMovement {
  /** Stays as they happened, by phone index (filled in as the run goes). */
  readonly realized: Stay[][];
  readonly stats: MovementStats = { venueChecks: 0, deniedEntries: 0, isolatedStays: 0 };
  private readonly diagnosedAt = new Map<string, number>();

  constructor(
    private readonly plan: TracingCityPlan,
    private readonly positions: Map<string, Position>,
    private readonly moved: () => void,
    private readonly healthOf: (phoneId: string) => HealthColor | undefined,
    private readonly options: MovementOptions,
  ) {
    this.realized = plan.stays.map((stays) => [...stays]);
    for (const p of plan.positives) this.diagnosedAt.set(p.phoneId, p.diagnosedAt);
  }

  /** Place every phone at its first stay and arm one timer per distinct later stay start. */
  start(scheduler: Scheduler): void {
    const byTime = new Map<number, { phone: number; stay: number }[]>();
    this.plan.stays.forEach((stays, phone) => {
      stays.forEach((s, stay) => {
        if (s.from <= this.plan.t0) return this.enter(phone, stay, s.from);
        const list = byTime.get(s.from) ?? [];
        list.push({ phone, stay });
        byTime.set(s.from, list);
      });
    });
    for (const [at, list] of byTime) {
      scheduler.at(at, () => {
        for (const { phone, stay } of list) this.enter(phone, stay, at);
        this.moved();
      });
    }
  }

  private enter(phoneIndex: number, stayIndex: number, at: number): void {
    const phone = this.plan.phones[phoneIndex];
    const planned = this.plan.stays[phoneIndex]?.[stayIndex];
    if (phone === undefined || planned === undefined) return;
    let stay = planned;
    if (planned.place.kind === 'venue') {
      const diagnosed = this.diagnosedAt.get(phone.id);
      if (this.options.isolatePositives && diagnosed !== undefined && at >= diagnosed) {
        this.stats.isolatedStays++;
        stay = this.atHome(phoneIndex, planned);
      } else if (this.options.venueCheck !== undefined) {
        this.stats.venueChecks++;
        const color = this.healthOf(phone.id);
        if (color !== undefined && !venueAdmits({ color }, this.options.venueCheck)) {
          this.stats.deniedEntries++;
          stay = this.atHome(phoneIndex, planned);
        }
      }
    }
    const realized = this.realized[phoneIndex];
    if (realized !== undefined) realized[stayIndex] = stay;
    this.positions.set(phone.id, stay.position);
  }

  /** The planned stay spent at home instead (the phone's own spot). */
  private atHome(phoneIndex: number, planned: Stay): Stay {
    const home = (this.plan.stays[phoneIndex] ?? []).find((s) => s.place.kind === 'home');
    if (home === undefined) return planned;
    return { from: planned.from, to: planned.to, place: home.place, position: home.position };
  }

  /** Realized stays keyed by phone id (closeContacts' input). */
  staysByPhoneId(): Map<string, readonly Stay[]> {
    return new Map(this.plan.phones.map((p) => [p.id, this.realized[p.index] ?? []]));
  }
}
