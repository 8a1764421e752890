// What the dashboard knows about install phases (provision/events/event.go).

// PHASES in the order a node normally passes through them.
export const PHASES = ['planned', 'bmc-checked', 'bios-ok', 'powering-on', 'dhcp', 'ipxe', 'kernel',
  'installing', 'installed', 'rebooting', 'first-boot', 'ready'];

// GROUPS join phases for icons, colours and the cluster's time split.
export const GROUPS = {
  planned: ['planned'],
  bmc: ['bmc-checked', 'bios-ok', 'powering-on'],
  boot: ['dhcp', 'ipxe', 'kernel'],
  install: ['installing', 'installed'],
  firstboot: ['rebooting', 'first-boot'],
  ready: ['ready'],
  failed: ['failed'],
};

// TIME_GROUPS are the groups the time split shows.
export const TIME_GROUPS = ['bmc', 'boot', 'install', 'firstboot'];

const groupOfPhase = new Map(Object.entries(GROUPS).flatMap(([g, ps]) => ps.map((p) => [p, g])));

export function groupOf(phase) { return groupOfPhase.get(phase) || 'planned'; }

// rank orders phases for sorting: failed first (it needs attention), then
// the normal order.
export function rank(phase) {
  if (phase === 'failed') return -1;
  const i = PHASES.indexOf(phase);
  return i < 0 ? 0 : i;
}

// Where each phase starts on a node's 0..100 overall progress. Installing
// is by far the longest part, so it gets the widest span; the installer's
// own percent moves the bar within a phase.
const START = {
  planned: 0, 'bmc-checked': 4, 'bios-ok': 8, 'powering-on': 12, dhcp: 18, ipxe: 22, kernel: 26,
  installing: 30, installed: 85, rebooting: 88, 'first-boot': 92, ready: 100,
};

// progress is a node's overall progress 0..100 (a failed node counts 0:
// it has to be installed again).
export function progress(phase, percent) {
  if (phase === 'failed' || !(phase in START)) return 0;
  const i = PHASES.indexOf(phase);
  const from = START[phase];
  const to = i + 1 < PHASES.length ? START[PHASES[i + 1]] : 100;
  const p = percent >= 0 ? Math.min(percent, 100) : 0;
  return Math.round(from + ((to - from) * p) / 100);
}
