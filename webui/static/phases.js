// What the dashboard knows about install phases. The order, which phases
// mean installed or final, and each phase's span of a node's 0..100 bar
// come from the server's one phase table (GET /api/v1/phases, from
// provision/events/phase.go), the same `racklift status` and the metrics
// use; only the grouping into icons and colours is the dashboard's own.

// PHASES in the order a node normally passes through them (failed last).
export const PHASES = [];
const table = new Map();

// setPhases loads the server's table; call it before anything renders.
export function setPhases(list) {
  PHASES.length = 0;
  table.clear();
  for (const p of list) {
    PHASES.push(p.phase);
    table.set(p.phase, p);
  }
}

// GROUPS join phases for icons, colours and the cluster's time split.
export const GROUPS = {
  planned: ['planned'],
  bmc: ['bmc-checked', 'bios-ok', 'powering-on'],
  boot: ['dhcp', 'ipxe', 'kernel'],
  install: ['installing', 'installed'],
  firstboot: ['rebooting', 'first-boot', 'ready'],
  ready: ['verified'],
  failed: ['failed', 'mismatch'],
};

// TIME_GROUPS are the groups the time split shows.
export const TIME_GROUPS = ['bmc', 'boot', 'install', 'firstboot'];

const groupOfPhase = new Map(Object.entries(GROUPS).flatMap(([g, ps]) => ps.map((p) => [p, g])));

export function groupOf(phase) { return groupOfPhase.get(phase) || 'planned'; }

// rank orders phases for sorting: failed and mismatch first (they need
// attention), then the normal order.
export function rank(phase) {
  if (phase === 'failed' || phase === 'mismatch') return -1;
  const i = PHASES.indexOf(phase);
  return i < 0 ? 0 : i;
}

// isFinal: the node's install attempt is over (verified, mismatch, failed).
export function isFinal(phase) { return Boolean(table.get(phase)?.final); }

// needsAttention: failed, or installed but different from the plan.
export function needsAttention(phase) { return phase === 'failed' || phase === 'mismatch'; }

// progress is a node's overall progress 0..100 from the phase table; the
// installer's own percent moves the bar within the installing span.
export function progress(phase, percent) {
  const p = table.get(phase);
  if (!p) return 0;
  if (phase === 'installing' && percent >= 0 && percent <= 100) {
    return p.from + Math.floor(((p.to - p.from) * percent) / 100);
  }
  return p.from;
}
