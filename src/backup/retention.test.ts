import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyRetention, DEFAULT_RETENTION, type RetentionSet, weekStart } from './retention.js';

// "Now" is Wednesday 2026-06-24 03:00 UTC; nightly dumps ran at 02:00.
const NOW = new Date('2026-06-24T03:00:00Z');
const DAY = 86_400_000;

function nightly(daysAgo: number, extra: Partial<RetentionSet> = {}): RetentionSet {
  const time = new Date(Date.UTC(2026, 5, 24, 2) - daysAgo * DAY);
  return { id: `set-${daysAgo}d`, time, status: 'complete', ...extra };
}

function decide(sets: RetentionSet[], policy = DEFAULT_RETENTION, now = NOW) {
  return Object.fromEntries(
    applyRetention(sets, policy, now).map((d) => [
      d.id,
      d.keep ? `keep:${d.reasons.join('+')}` : `delete:${d.reasons[0]}`,
    ]),
  );
}

describe('the retention policy (nightly for 30 days, one weekly set for a year)', () => {
  test('weeks start on Monday, UTC', () => {
    assert.equal(
      new Date(weekStart(new Date('2026-06-24T03:00:00Z'))).toISOString(),
      '2026-06-22T00:00:00.000Z',
    );
    assert.equal(
      new Date(weekStart(new Date('2026-06-22T00:00:00Z'))).toISOString(),
      '2026-06-22T00:00:00.000Z',
    );
    assert.equal(
      new Date(weekStart(new Date('2026-06-21T23:59:59Z'))).toISOString(),
      '2026-06-15T00:00:00.000Z',
    );
  });

  const cases: {
    name: string;
    sets: RetentionSet[];
    policy?: typeof DEFAULT_RETENTION;
    expect: Record<string, string>;
  }[] = [
    {
      name: 'keeps every nightly set younger than 30 days',
      sets: [nightly(0), nightly(1), nightly(29)],
      // 2026-05-26 is alone in its week, so it is that week's copy too.
      expect: {
        'set-0d': 'keep:daily+newest-complete+weekly',
        'set-1d': 'keep:daily',
        'set-29d': 'keep:daily+weekly',
      },
    },
    {
      name: 'past 30 days keeps only the newest set of each week',
      // 2026-05-24 (Sun, 31 days ago) is the newest of its week; 2026-05-22 (Fri) is not.
      sets: [nightly(0), nightly(31), nightly(33)],
      expect: {
        'set-0d': 'keep:daily+newest-complete+weekly',
        'set-31d': 'keep:weekly',
        'set-33d': 'delete:expired',
      },
    },
    {
      name: 'drops weekly copies older than 52 weeks',
      sets: [nightly(0), nightly(7 * 51), nightly(7 * 53)],
      expect: {
        'set-0d': 'keep:daily+newest-complete+weekly',
        'set-357d': 'keep:weekly',
        'set-371d': 'delete:expired',
      },
    },
    {
      name: 'never deletes the newest complete set, however old',
      sets: [nightly(400), nightly(401)],
      expect: { 'set-400d': 'keep:newest-complete', 'set-401d': 'delete:expired' },
    },
    {
      name: 'never deletes the newest set whose restore drill passed',
      sets: [nightly(0), nightly(200, { drillPassed: true }), nightly(100, { drillPassed: false })],
      expect: {
        'set-0d': 'keep:daily+newest-complete+weekly',
        'set-200d': 'keep:newest-drilled+weekly',
        'set-100d': 'keep:weekly',
      },
    },
    {
      name: 'an old drilled set goes once a newer one has passed its drill',
      sets: [nightly(0), nightly(400, { drillPassed: true }), nightly(10, { drillPassed: true })],
      expect: {
        'set-0d': 'keep:daily+newest-complete+weekly',
        'set-400d': 'delete:expired',
        'set-10d': 'keep:daily+newest-drilled+weekly',
      },
    },
    {
      name: 'never deletes the newest verified set',
      sets: [nightly(0), nightly(500, { verified: true })],
      expect: { 'set-0d': 'keep:daily+newest-complete+weekly', 'set-500d': 'keep:newest-verified' },
    },
    {
      name: 'removes incomplete sets older than a day and keeps younger ones (they may still be running)',
      sets: [
        nightly(0),
        nightly(0.5, { id: 'running', status: 'incomplete' }),
        nightly(2, { id: 'dead', status: 'incomplete' }),
      ],
      expect: {
        'set-0d': 'keep:daily+newest-complete+weekly',
        running: 'keep:in-progress',
        dead: 'delete:incomplete',
      },
    },
    {
      name: 'an incomplete set never counts as the newest or the weekly copy',
      sets: [nightly(40), nightly(0, { id: 'killed', status: 'incomplete' })],
      expect: { 'set-40d': 'keep:newest-complete+weekly', killed: 'keep:in-progress' },
    },
    {
      name: 'a damaged set ages out like a nightly one but is never the newest',
      sets: [
        nightly(40),
        nightly(3, { id: 'damaged-new', status: 'damaged' }),
        nightly(45, { id: 'damaged-old', status: 'damaged' }),
      ],
      expect: {
        'set-40d': 'keep:newest-complete+weekly',
        'damaged-new': 'keep:daily',
        'damaged-old': 'delete:damaged',
      },
    },
    {
      name: '--keep-daily 0 --keep-weekly 0 keeps only what must never go',
      sets: [nightly(0), nightly(1), nightly(2, { drillPassed: true })],
      policy: { keepDaily: 0, keepWeekly: 0 },
      expect: {
        'set-0d': 'keep:newest-complete',
        'set-1d': 'delete:expired',
        'set-2d': 'keep:newest-drilled',
      },
    },
    {
      name: 'keeps a set stamped in the future (a skewed clock) rather than guess',
      sets: [nightly(-2, { id: 'future' }), nightly(400)],
      policy: { keepDaily: 0, keepWeekly: 0 },
      expect: { future: 'keep:newest-complete+future', 'set-400d': 'delete:expired' },
    },
    { name: 'an empty destination needs nothing', sets: [], expect: {} },
  ];

  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(decide(c.sets, c.policy), c.expect);
    });
  }

  test('a year of nightly sets keeps 30 dailies plus one per older week', () => {
    const sets = Array.from({ length: 365 }, (_, i) => nightly(i));
    const kept = applyRetention(sets, DEFAULT_RETENTION, NOW).filter((d) => d.keep);
    const dailies = kept.filter((d) => d.reasons.includes('daily')).length;
    const weekliesOnly = kept.filter((d) => !d.reasons.includes('daily')).length;
    assert.equal(dailies, 30);
    // 52 weeks back from this week, minus the weeks the dailies already cover.
    assert.ok(weekliesOnly >= 46 && weekliesOnly <= 48, `weekly-only sets: ${weekliesOnly}`);
    assert.equal(kept.length, dailies + weekliesOnly);
  });
});
