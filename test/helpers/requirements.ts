// Tests that need something outside the test itself (a package .ci/run installs, a file the tree ships): outside CI
// a missing one skips the test with the reason; under CI (CI=true, as .ci/run runs) it is a failure, so a suite that
// quietly stopped running a test can never pass there. Not a *.test.ts file, so the runner does not run it alone.
import assert from 'node:assert/strict';

/** CI is set and not "false"/"0" (.ci/run and CI services set CI=true). */
export const IN_CI = !!process.env.CI && !/^(false|0)$/i.test(process.env.CI);

export interface Requirement {
  /** For the test's options: the reason outside CI when something is missing, else false (so under CI it runs). */
  skip: string | false;
  /** First line of the test body: under CI, fails with the reason when something is missing; else does nothing. */
  check(): void;
}

/** `missing`: why the test cannot run here (a sentence naming what is missing), or false when all is there. */
export function requirement(missing: string | false): Requirement {
  return {
    skip: missing && !IN_CI ? missing : false,
    check() {
      if (missing)
        assert.fail(
          `${missing} (CI=${process.env.CI}: a missing requirement fails under CI instead of skipping the test)`,
        );
    },
  };
}
