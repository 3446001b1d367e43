/** Shepherd exit codes: a contract with the daemon and with users (docs/shepherd.md). */
export const ShepherdExit = {
  success: 0,
  unexpected: 1,
  usage: 2,
  builderFailed: 3,
  testsFailed: 4,
  needsHuman: 5,
  shutdown: 6,
  skipped: 7,
  noChanges: 8,
  withdrawn: 9,
} as const;
