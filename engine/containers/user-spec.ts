/**
 * Docker's `user[:group]` as given on the command line, in a project file, in a Dockerfile's USER or an image's config:
 * numeric ids must be in 0..2147483647. Larger values are not ids: 4294967295 is `(uid_t)-1`, which setresuid reads as
 * "unchanged" (so the process would stay root), and the native helper would wrap the others.
 */
export const MAX_ID = 2_147_483_647;

/** Why spec is not a valid user[:group], or undefined when it is (names are resolved later, in the container). */
export function userSpecProblem(spec: string): string | undefined {
  const colon = spec.indexOf(':');
  const parts =
    colon === -1
      ? [['user', spec]]
      : [
          ['user', spec.slice(0, colon)],
          ['group', spec.slice(colon + 1)],
        ];
  for (const [kind, value] of parts as [string, string][]) {
    if (/^-?[0-9]+$/.test(value) && !(/^[0-9]+$/.test(value) && value.length <= 10 && Number(value) <= MAX_ID)) {
      return `${kind} id ${value} is out of range (0 to ${MAX_ID})`;
    }
    if (value.includes('\0') || value.includes('\n')) return `${kind} "${value}" contains a control character`;
  }
  return undefined;
}
