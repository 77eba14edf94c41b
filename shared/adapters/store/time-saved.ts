/**
 * Estimated time saved by a verified fix, for `ansai status` and the fleet's daily digest.
 *
 * Each figure is the typical hands-on time, in minutes, an on-call engineer spends on the same problem by hand:
 * notice the alert, log in, find the cause, apply the fix, confirm it held, write a note. They are ANSAI's own
 * conservative assumptions, not measurements: the low end of what runbooks and incident reviews commonly budget
 * for each task, and they leave out waiting time (being woken, getting to a laptop), which is often longer.
 * Only verified fixes count (the problem went away after the fix), so a fix that did nothing saves nothing.
 */
export const MANUAL_MINUTES: Readonly<Record<string, number>> = {
  /** A failed unit: read the journal, restart, watch it stay up. */
  'service-restart': 10,
  /** A full disk: find what grew (du), check what is safe to delete, remove old logs and temp files, re-check. */
  'disk-cleanup': 20,
  /** A leaking service: spot the trend, pick a quiet moment, reload or restart, watch memory fall. */
  'memory-relief': 15,
  /** An expiring certificate: run certbot by hand, reload the server, check what it serves now. */
  'certificate-renew': 20,
  /** A stale database: vacuum/analyze or repair, check the result. */
  'db-maintenance': 20,
  /** A missed backup: find why, re-run it, check the artifact. */
  'backup-retry': 20,
  /** Only tells people: it fixes nothing by itself. */
  'notify-only': 0,
  /** A user's own script: unknown work, counted at the low end. */
  'custom-script': 5,
}

/** Minutes for a remediation the table does not know (a newer agent, a renamed type): the low end. */
export const DEFAULT_MANUAL_MINUTES = 5

/** Estimated minutes saved by the given numbers of verified fixes per remediation. */
export const estimateMinutesSaved = (verified: readonly { remediation: string; count: number }[]): number =>
  verified.reduce(
    (sum, v) =>
      sum +
      v.count *
        (Object.hasOwn(MANUAL_MINUTES, v.remediation) ? MANUAL_MINUTES[v.remediation]! : DEFAULT_MANUAL_MINUTES),
    0,
  )
